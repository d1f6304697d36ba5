# confluent-kafka-python (librdkafka) producer and group consumer run as their own process by the
# Kafka SASL integration tests. argv: CONF_JSON TOPIC GROUP; prints {"produce": [error names or
# null], "consume": value or error name}.
import json, sys, time
from confluent_kafka import Consumer, Producer

conf = json.loads(sys.argv[1])
topic, group = sys.argv[2], sys.argv[3]
out = {}
errs = []
p = Producer(conf)
p.produce(topic, b"hello", callback=lambda err, msg: errs.append(err.name() if err else None))
p.flush(15)
out["produce"] = errs
c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
got = None
deadline = time.time() + 15
while time.time() < deadline and got is None:
    m = c.poll(1)
    if m is None:
        continue
    got = m.error().name() if m.error() else m.value().decode()
c.close()
out["consume"] = got
print(json.dumps(out))
