"""paho-mqtt (PyPI) as an MQTT 5 device against a devnet's proxy: request/response and QoS 2.

A sensor publishes a registry message at QoS 2 with a response topic and correlation data and
gets its ack there (MQTT 5 request/response); the same message again is a duplicate; an action
message's decision reaches the actuator (also MQTT 5); a publish outside the sensor's topics
gets PUBACK reason 0x87. Prints {"ok": true, ...} on success.
Usage: python3 tests/py/paho_mqtt5.py DEVNET_DIR/network.json
"""

import json
import queue
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

network = json.load(open(sys.argv[1]))
host, port = network["proxy"]["mqtt"].removeprefix("mqtt://").rsplit(":", 1)
sensor, actuator = network["proxy"]["devices"][0], network["proxy"]["devices"][2]
danger = network["contracts"]["DangerIndex"]
WAIT = 120


def device(entry, client_id):
    inbox = queue.Queue()
    acks = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(entry["username"], entry["password"])
    c.on_message = lambda _c, _u, msg: inbox.put(msg)
    c.on_publish = lambda _c, _u, mid, reason, _p: acks.put((mid, reason))
    connected = queue.Queue()
    c.on_connect = lambda _c, _u, _f, reason, props: connected.put((reason, props))
    c.connect(host, int(port), keepalive=0)
    c.loop_start()
    reason, props = connected.get(timeout=WAIT)
    assert not reason.is_failure, f"CONNACK {reason}"
    return c, inbox, acks, props


def subscribe(c, topic):
    done = queue.Queue()
    c.on_subscribe = lambda _c, _u, _mid, codes, _p: done.put(codes)
    c.subscribe(topic, qos=1)
    codes = done.get(timeout=WAIT)
    assert not codes[0].is_failure, f"SUBACK {codes}"


def wait(inbox, pred, what):
    deadline = time.time() + WAIT
    while time.time() < deadline:
        try:
            msg = inbox.get(timeout=1)
        except queue.Empty:
            continue
        if pred(msg):
            return msg
    raise AssertionError(f"timed out waiting for {what}")


s, s_inbox, s_acks, connack = device(sensor, "paho-sensor")
# keepalive=0 asks for none: the server names its keep-alive in CONNACK
server_keep_alive = getattr(connack, "ServerKeepAlive", None)
assert server_keep_alive, f"no server keep-alive in CONNACK: {connack}"
responses = f"devices/{sensor['id']}/responses"
subscribe(s, responses)

message = json.dumps({"Payload": {"CS": 777}, "Topic": "sensors/solar", "MessageContent": "paho", "Seq": 1000})
answers = []
for attempt in ("first", "again"):
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = responses
    props.CorrelationData = f"req-{attempt}".encode()
    info = s.publish(f"devices/{sensor['id']}/messages", message, qos=2, properties=props)
    info.wait_for_publish(timeout=WAIT)
    assert info.is_published(), "QoS 2 publish not completed"
    reply = wait(s_inbox, lambda m: m.topic == responses and m.properties.CorrelationData == f"req-{attempt}".encode(),
                 f"the {attempt} response")
    answers.append(json.loads(reply.payload))
assert answers[0]["status"] == "accepted", answers
assert answers[1]["status"] == "duplicate", answers

a, a_inbox, _, _ = device(actuator, "paho-actuator")
subscribe(a, f"devices/{actuator['id']}/commands")
action = json.dumps({"Payload": "", "Topic": "fire", "Seq": 1001, "MessageContent": {
    "Address": danger, "Values": {"CS": 10000, "P": 1000, "H": [5000] * 5},
    "Publish_Topic": f"devices/{actuator['id']}/commands"}})
s.publish(f"devices/{sensor['id']}/messages", action, qos=2).wait_for_publish(timeout=WAIT)
decision = json.loads(wait(a_inbox, lambda m: True, "the decision").payload)
assert decision["diX100"] == 3725 and decision["risk"] == "low", decision

# outside the sensor's topics: PUBACK 0x87 (not authorized), the connection stays
info = s.publish(f"devices/{actuator['id']}/messages", "{}", qos=1)
mid, reason = s_acks.get(timeout=WAIT)
while mid != info.mid:
    mid, reason = s_acks.get(timeout=WAIT)
assert reason.value == 0x87, f"PUBACK reason {reason}"
assert s.is_connected()

print(json.dumps({"ok": True, "responses": answers, "decision": decision, "serverKeepAlive": server_keep_alive,
                  "foreignPuback": str(reason)}))
s.disconnect()
a.disconnect()
