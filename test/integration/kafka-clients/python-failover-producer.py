# confluent-kafka-python (librdkafka) idempotent acks=all producer run as its own process by
# kafka-failover.test.ts. argv: BOOTSTRAP TOPIC RECORDS RATE_PER_S KEYS [DEBUG] (librdkafka's
# `debug` contexts, logged to stderr). Produces value
# "v%08d" % i with key "k%d" % (i % KEYS), i = 0..RECORDS-1, at about RATE_PER_S, and prints one
# line per event, flushed at once:
#   A i partition offset    delivery report without error (acknowledged)
#   N i error_name          delivery report with an error (not acknowledged)
#   F error_name fatal=0|1  an error callback (fatal=1: the idempotent producer gave up)
#   D left fatal=0|1        the end: messages still queued after flush, whether a fatal error came
import sys, time
from confluent_kafka import Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
records, rate, keys = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
fatal = [0]


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def on_error(err):
    if err.fatal():
        fatal[0] = 1
    out("F %s fatal=%d" % (err.name(), 1 if err.fatal() else 0))


def report(i):
    def cb(err, msg):
        if err is None:
            out("A %d %d %d" % (i, msg.partition(), msg.offset()))
        else:
            out("N %d %s" % (i, err.name()))

    return cb


debug = {"debug": sys.argv[6]} if len(sys.argv) > 6 and sys.argv[6] else {}
p = Producer(
    {
        **debug,
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "message.timeout.ms": 40000,
        "retry.backoff.ms": 100,
        "topic.metadata.refresh.interval.ms": 1000,
        "socket.connection.setup.timeout.ms": 3000,
        "error_cb": on_error,
    }
)
start = time.monotonic()
for i in range(records):
    while True:
        try:
            p.produce(topic, key=b"k%d" % (i % keys), value=b"v%08d" % i, on_delivery=report(i))
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)
    ahead = start + (i + 1) / rate - time.monotonic()
    if ahead > 0:
        p.poll(ahead)
left = p.flush(45)
out("D %d fatal=%d" % (left, fatal[0]))
