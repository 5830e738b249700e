#!/usr/bin/env bash
# End-to-end check of the IoT proxy's MQTT side with Debian's mosquitto clients, against a
# running devnet: an unauthenticated publish is refused, a registry message is recorded and
# acked, an action message yields the danger index of the first shared vector on its
# Publish_Topic, a publish under another device's prefix is cut off, and an MQTT 5 client is told
# the protocol version is unsupported.
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
danger=$(field 'v["contracts"]["DangerIndex"]')
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pub() { mosquitto_pub -h "$host" -p "$port" -q 1 "$@"; }

# 1. No credentials: refused.
if pub -i anon -t "devices/$sensor/messages" -m '{}' 2>"$work/anon.err"; then fail "anonymous publish accepted"; fi
grep -qi "not authori" "$work/anon.err" || fail "unexpected refusal: $(cat "$work/anon.err")"
echo "ok: anonymous publish refused ($(tr -d '\n' <"$work/anon.err"))"

# 2. A registry message is accepted, then recorded with its transaction.
mosquitto_sub -h "$host" -p "$port" -q 1 -i "$sensor-sub" -u "$sensor" -P "$sensor_pw" \
  -t "devices/$sensor/acks" -C 2 -W 120 >"$work/acks" &
subscriber=$!
sleep 1 # mosquitto_sub has no "subscribed" signal; a late subscription only makes the wait below fail
pub -i "$sensor-pub" -u "$sensor" -P "$sensor_pw" -t "devices/$sensor/messages" \
  -m '{"Payload": {"CS": 640}, "Topic": "sensors/solar", "MessageContent": "mosquitto", "Seq": 1}'
wait $subscriber || fail "no acks: $(cat "$work/acks")"
grep -q '"status":"accepted"' "$work/acks" || fail "no accepted ack: $(cat "$work/acks")"
grep -q '"status":"recorded"' "$work/acks" || fail "no recorded ack: $(cat "$work/acks")"
echo "ok: registry message recorded: $(tail -n1 "$work/acks")"

# 3. An action message: the decision arrives on Publish_Topic (vector 0: DI 37.25, low).
mosquitto_sub -h "$host" -p "$port" -q 1 -i "$actuator-sub" -u "$actuator" -P "$actuator_pw" \
  -t "devices/$actuator/commands" -C 1 -W 120 >"$work/decision" &
subscriber=$!
sleep 1
pub -i "$sensor-pub" -u "$sensor" -P "$sensor_pw" -t "devices/$sensor/messages" -m "{\"Payload\": \"\", \"Topic\": \"fire\",
  \"MessageContent\": {\"Address\": \"$danger\", \"Values\": {\"CS\": 10000, \"P\": 1000, \"H\": [5000, 5000, 5000, 5000, 5000]},
  \"Publish_Topic\": \"devices/$actuator/commands\"}, \"Seq\": 2}"
wait $subscriber || fail "no decision"
grep -q '"diX100":3725' "$work/decision" && grep -q '"risk":"low"' "$work/decision" || fail "wrong decision: $(cat "$work/decision")"
echo "ok: decision on devices/$actuator/commands: $(cat "$work/decision")"

# 4. Publishing under another device's prefix: the proxy closes the connection, no PUBACK.
if pub -i "$other-pub" -u "$other" -P "$other_pw" -t "devices/$sensor/messages" -m '{"Payload": "forged", "Topic": "t"}' 2>"$work/foreign.err"; then
  fail "publish to another device's topic was acknowledged"
fi
echo "ok: foreign-topic publish refused ($(tr -d '\n' <"$work/foreign.err"))"
# 5. MQTT 5 is refused with CONNACK 0x01 (the proxy speaks MQTT 3.1.1).
if pub -V 5 -i "$sensor-v5" -u "$sensor" -P "$sensor_pw" -t "devices/$sensor/messages" -m '{}' 2>"$work/v5.err"; then
  fail "an MQTT 5 client was accepted"
fi
grep -qi "protocol version" "$work/v5.err" || fail "unexpected MQTT 5 refusal: $(cat "$work/v5.err")"
echo "ok: MQTT 5 refused ($(tr -d '\n' <"$work/v5.err"))"
echo "mqtt-e2e: all checks passed"
