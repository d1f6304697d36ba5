# confluent-kafka-python (librdkafka) transactional programs run as their own process by the
# Kafka transaction tests (test/integration/kafka-txn-clients.test.ts). argv: BROKER COMMAND ...;
# prints one JSON line (a line {"ready": true} first for "hang").
#   txn TXID TOPIC N commit|abort PREFIX   one transaction of N records PREFIX-i (keys k-i), committed or aborted
#   hang TXID TOPIC N PREFIX               N records in a transaction left open: prints {"ready": true}, then waits to be killed
#   read TOPIC read_committed|read_uncommitted
#                                          every partition from the beginning to its end (EOF): [[partition, offset, value]]
#   fence TXID TOPIC                       a zombie: instance 1 writes z-0..2 in a transaction, instance 2 (same id) starts,
#                                          writes w-0..2 and commits; instance 1's commit then fails: {"zombie": error name}
#   cpp IN OUT GROUP TXID N ABORT_FIRST    consume-process-produce: a group consumer (read_committed) on IN; each poll's
#                                          records go to OUT as "<value>:done" in one transaction with the consumer's
#                                          offsets; the first transaction is aborted when ABORT_FIRST is 1 (and the
#                                          consumer rewound to the committed offsets, as an exactly-once loop does);
#                                          stops once N input records are committed
import json, sys, time
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

broker, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]


def producer(txid):
    p = Producer({"bootstrap.servers": broker, "transactional.id": txid, "transaction.timeout.ms": 60000, "linger.ms": 5})
    p.init_transactions(30)
    return p


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def txn(txid, topic, n, outcome, prefix):
    p = producer(txid)
    errors = []
    p.begin_transaction()
    for i in range(int(n)):
        p.produce(topic, key=f"k-{i}".encode(), value=f"{prefix}-{i}".encode(),
                  on_delivery=lambda err, msg: errors.append(err.name()) if err else None)
    p.flush(30)
    if outcome == "commit":
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
    return {"outcome": outcome, "errors": errors}


def hang(txid, topic, n, prefix):
    p = producer(txid)
    p.begin_transaction()
    for i in range(int(n)):
        p.produce(topic, key=f"k-{i}".encode(), value=f"{prefix}-{i}".encode())
    p.flush(30)
    emit({"ready": True})
    time.sleep(600)


def read(topic, isolation):
    c = Consumer({"bootstrap.servers": broker, "group.id": "py-txn-reader", "isolation.level": isolation,
                  "enable.partition.eof": True, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, -2) for p in parts])
    ended, out = set(), []
    deadline = time.time() + 20
    while len(ended) < len(parts) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                ended.add(m.partition())
                continue
            raise KafkaException(m.error())
        out.append([m.partition(), m.offset(), m.value().decode()])
    c.close()
    if len(ended) < len(parts):
        raise RuntimeError(f"read: only partitions {sorted(ended)} of {parts} reached their end")
    return out


def fence(txid, topic):
    zombie = producer(txid)
    zombie.begin_transaction()
    for i in range(3):
        zombie.produce(topic, key=f"k-{i}".encode(), value=f"z-{i}".encode())
    zombie.flush(30)
    fresh = producer(txid)
    fresh.begin_transaction()
    for i in range(3):
        fresh.produce(topic, key=f"k-{i}".encode(), value=f"w-{i}".encode())
    fresh.commit_transaction(30)
    try:
        zombie.commit_transaction(30)
        return {"zombie": None}
    except KafkaException as e:
        err = e.args[0]
        return {"zombie": err.name(), "fatal": err.fatal()}


def cpp(src, dst, group, txid, n, abort_first):
    c = Consumer({"bootstrap.servers": broker, "group.id": group, "isolation.level": "read_committed",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
    p = producer(txid)
    c.subscribe([src])
    done, committed, aborted = 0, 0, 0
    abort_next = abort_first == "1"
    deadline = time.time() + 60
    while done < int(n) and time.time() < deadline:
        msgs = c.consume(num_messages=10, timeout=1)
        msgs = [m for m in msgs if not m.error()]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, key=m.key(), value=m.value() + b":done")
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        if abort_next:
            p.abort_transaction(30)
            aborted += 1
            abort_next = False
            # Back to the offsets committed with the last committed transaction.
            for tp in c.committed(c.assignment(), timeout=10):
                c.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else -2))
            continue
        p.commit_transaction(30)
        committed += 1
        done += len(msgs)
    c.close()
    return {"processed": done, "committedTxns": committed, "abortedTxns": aborted}


try:
    if command == "txn":
        emit(txn(*args))
    elif command == "hang":
        hang(*args)
    elif command == "read":
        emit(read(*args))
    elif command == "fence":
        emit(fence(*args))
    elif command == "cpp":
        emit(cpp(*args))
    else:
        raise RuntimeError(f"unknown command {command}")
except KafkaException as e:
    err = e.args[0]
    emit({"error": err.name() if hasattr(err, "name") else str(err), "message": str(err)})
    sys.exit(1)
