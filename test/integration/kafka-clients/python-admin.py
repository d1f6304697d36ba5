# confluent-kafka-python's AdminClient (librdkafka) run as its own process by the Kafka admin
# integration tests. argv: CONF_JSON ACTIONS_JSON; prints {"results": [...], "errors": [...]}.
# Actions: create {topics, partitions, config}, partitions {topic, count}, describe {topic, keys},
# delete {topics}, list {timeout}. Errors are Kafka error names (TOPIC_ALREADY_EXISTS, ...).
import sys, json
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource
from confluent_kafka import KafkaException

conf = json.loads(sys.argv[1])
actions = json.loads(sys.argv[2])
errors = []
conf["error_cb"] = lambda e: errors.append(e.name())
a = AdminClient(conf)

def err(e):
    k = e.args[0] if e.args else None
    return k.name() if hasattr(k, "name") else str(e)

out = []
for act in actions:
    kind = act["do"]
    try:
        if kind == "create":
            fs = a.create_topics([NewTopic(t, num_partitions=act.get("partitions", 1), replication_factor=1, config=act.get("config", {})) for t in act["topics"]], operation_timeout=10)
            res = {}
            for t, f in fs.items():
                try:
                    f.result(); res[t] = None
                except KafkaException as e:
                    res[t] = err(e)
            out.append(res)
        elif kind == "partitions":
            fs = a.create_partitions([NewPartitions(act["topic"], act["count"])], operation_timeout=10)
            out.append({t: (f.result() is None and None) for t, f in fs.items()})
        elif kind == "describe":
            fs = a.describe_configs([ConfigResource("topic", act["topic"])])
            entries = list(fs.values())[0].result()
            out.append({k: entries[k].value for k in act["keys"]})
        elif kind == "delete":
            fs = a.delete_topics(act["topics"], operation_timeout=10)
            res = {}
            for t, f in fs.items():
                try:
                    f.result(); res[t] = None
                except KafkaException as e:
                    res[t] = err(e)
            out.append(res)
        elif kind == "list":
            md = a.list_topics(timeout=act.get("timeout", 10))
            out.append(sorted(t for t in md.topics if not t.startswith("__")))
    except KafkaException as e:
        out.append({"error": err(e)})
a.poll(1)
print(json.dumps({"results": out, "errors": sorted(set(errors))}))
