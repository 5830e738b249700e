#!/usr/bin/env bash
# End-to-end check of the IoT proxy's MQTT side with Debian's mosquitto clients, against a
# running devnet: an unauthenticated publish is refused; with MQTT 3.1, 3.1.1 and 5.0 at QoS 2,
# a registry message is recorded and acked and an action message yields the danger index of the
# first shared vector on its Publish_Topic; an action naming an actuator the sensor may not
# command, or a contract that is not the network's DangerIndex, is rejected with its reason; a
# publish under another device's prefix is cut off (MQTT 3) or refused with reason 0x87 (MQTT 5).
# Usage: scripts/mqtt-e2e.sh DEVNET_DIR/network.json
set -euo pipefail
network=${1:?usage: scripts/mqtt-e2e.sh DEVNET_DIR/network.json}
for tool in mosquitto_pub mosquitto_sub python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install -y mosquitto-clients)" >&2; exit 2; }
done
field() { python3 -c "import json,sys; v=json.load(open(sys.argv[1])); exec('print('+sys.argv[2]+')')" "$network" "$1"; }
url=$(field 'v["proxy"]["mqtt"]'); hp=${url#mqtt://}; host=${hp%:*}; port=${hp##*:}
sensor=$(field 'v["proxy"]["devices"][0]["id"]'); sensor_pw=$(field 'v["proxy"]["devices"][0]["password"]')
other=$(field 'v["proxy"]["devices"][1]["id"]'); other_pw=$(field 'v["proxy"]["devices"][1]["password"]')
actuator=$(field 'v["proxy"]["devices"][2]["id"]'); actuator_pw=$(field 'v["proxy"]["devices"][2]["password"]')
locker=$(field 'v["proxy"]["locker"]["id"]')
danger=$(field 'v["contracts"]["DangerIndex"]')
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pub() { mosquitto_pub -h "$host" -p "$port" -q 1 "$@"; }

# 1. No credentials: refused.
if pub -i anon -t "devices/$sensor/messages" -m '{}' 2>"$work/anon.err"; then fail "anonymous publish accepted"; fi
grep -qi "not authori" "$work/anon.err" || fail "unexpected refusal: $(cat "$work/anon.err")"
echo "ok: anonymous publish refused ($(tr -d '\n' <"$work/anon.err"))"

# 2. Each protocol version at QoS 2: a registry message is accepted, then recorded with its
# transaction; an action message's decision arrives on its Publish_Topic (vector 0: DI 37.25, low).
seq=0
for version in mqttv31 mqttv311 mqttv5; do
  seq=$((seq + 1))
  mosquitto_sub -V "$version" -h "$host" -p "$port" -q 2 -i "$sensor-sub" -u "$sensor" -P "$sensor_pw" \
    -t "devices/$sensor/acks" -C 2 -W 120 >"$work/acks" &
  subscriber=$!
  sleep 1 # mosquitto_sub has no "subscribed" signal; a late subscription only makes the wait below fail
  mosquitto_pub -V "$version" -h "$host" -p "$port" -q 2 -i "$sensor-pub" -u "$sensor" -P "$sensor_pw" \
    -t "devices/$sensor/messages" \
    -m "{\"Payload\": {\"CS\": 640}, \"Topic\": \"sensors/solar\", \"MessageContent\": \"$version\", \"Seq\": $seq}"
  wait $subscriber || fail "$version: no acks: $(cat "$work/acks")"
  grep -q '"status":"accepted"' "$work/acks" || fail "$version: no accepted ack: $(cat "$work/acks")"
  grep -q '"status":"recorded"' "$work/acks" || fail "$version: no recorded ack: $(cat "$work/acks")"
  echo "ok: $version QoS 2 registry message recorded: $(tail -n1 "$work/acks")"

  seq=$((seq + 1))
  mosquitto_sub -V "$version" -h "$host" -p "$port" -q 2 -i "$actuator-sub" -u "$actuator" -P "$actuator_pw" \
    -t "devices/$actuator/commands" -C 1 -W 120 >"$work/decision" &
  subscriber=$!
  sleep 1
  mosquitto_pub -V "$version" -h "$host" -p "$port" -q 2 -i "$sensor-pub" -u "$sensor" -P "$sensor_pw" \
    -t "devices/$sensor/messages" -m "{\"Payload\": \"\", \"Topic\": \"fire\",
    \"MessageContent\": {\"Address\": \"$danger\", \"Values\": {\"CS\": 10000, \"P\": 1000, \"H\": [5000, 5000, 5000, 5000, 5000]},
    \"Publish_Topic\": \"devices/$actuator/commands\"}, \"Seq\": $seq}"
  wait $subscriber || fail "$version: no decision"
  grep -q '"diX100":3725' "$work/decision" && grep -q '"risk":"low"' "$work/decision" || fail "$version: wrong decision: $(cat "$work/decision")"
  echo "ok: $version decision on devices/$actuator/commands: $(cat "$work/decision")"
done

# 3. Actions the sensor may not send: to an actuator it may not command, naming a contract that
# is not the network's DangerIndex. Both are rejected with the reason.
action() { # ADDRESS PUBLISH_TOPIC SEQ
  echo "{\"Payload\": \"\", \"Topic\": \"fire\", \"MessageContent\": {\"Address\": \"$1\",
    \"Values\": {\"CS\": 1, \"P\": 1, \"H\": [1, 1, 1, 1, 1]}, \"Publish_Topic\": \"$2\"}, \"Seq\": $3}"
}
mosquitto_sub -h "$host" -p "$port" -q 1 -i "$sensor-sub" -u "$sensor" -P "$sensor_pw" \
  -t "devices/$sensor/acks" -C 2 -W 120 >"$work/refused" &
subscriber=$!
sleep 1
pub -i "$sensor-pub" -u "$sensor" -P "$sensor_pw" -t "devices/$sensor/messages" -m "$(action "$danger" "devices/$locker/commands" 100)"
pub -i "$sensor-pub" -u "$sensor" -P "$sensor_pw" -t "devices/$sensor/messages" \
  -m "$(action 0x000000000000000000000000000000000000dEaD "devices/$actuator/commands" 101)"
wait $subscriber || fail "no rejections: $(cat "$work/refused")"
grep -q "may not command $locker" "$work/refused" || fail "foreign actuator not refused: $(cat "$work/refused")"
grep -q "is not a DangerIndex of this network" "$work/refused" || fail "unlisted contract not refused: $(cat "$work/refused")"
echo "ok: foreign actuator and unlisted contract rejected: $(tr '\n' ' ' <"$work/refused")"

# 4. Publishing under another device's prefix: MQTT 3.1.1 is cut off (no PUBACK), MQTT 5 gets
# PUBACK 0x87 "not authorized".
if pub -i "$other-pub" -u "$other" -P "$other_pw" -t "devices/$sensor/messages" -m '{"Payload": "forged", "Topic": "t"}' 2>"$work/foreign.err"; then
  fail "publish to another device's topic was acknowledged"
fi
echo "ok: foreign-topic publish refused ($(tr -d '\n' <"$work/foreign.err"))"
pub -V mqttv5 -i "$other-pub" -u "$other" -P "$other_pw" -t "devices/$sensor/messages" -m '{"Payload": "forged", "Topic": "t"}' \
  >"$work/foreign5.out" 2>&1 || true
grep -qi "not authori" "$work/foreign5.out" || fail "MQTT 5 foreign publish: $(cat "$work/foreign5.out")"
echo "ok: MQTT 5 foreign-topic publish refused ($(tr -d '\n' <"$work/foreign5.out"))"
echo "mqtt-e2e: all checks passed"
