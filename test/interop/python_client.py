"""Rill interop client: Python stubs generated from proto/ talk to a running broker.

Usage: /usr/bin/python3 python_client.py ADDRESS GENERATED_DIR [--read TOPIC] [--tls-ca FILE
       [--tls-cert FILE --tls-key FILE] [--server-name NAME] [--basic USER:PASSWORD]]

  ADDRESS        the broker's gRPC address, HOST:PORT
  GENERATED_DIR  where `protoc --python_out --grpc_python_out` wrote rill/v1/*_pb2*.py
  --read TOPIC   also read every record of TOPIC (written by someone else) and report them
  --tls-ca FILE  connect with TLS (grpc.ssl_channel_credentials), trusting this PEM CA bundle
  --tls-cert FILE, --tls-key FILE  present this client certificate (mutual TLS)
  --server-name NAME  the name the broker's certificate carries (grpc.ssl_target_name_override)
  --basic USER:PASSWORD  send `authorization: Basic ...` on every call (call credentials; TLS only)

Every call goes through the generated stubs (rill.v1.*_pb2_grpc) and messages (*_pb2); there is
no hand-written protocol code here. The one piece of non-generated logic is Kafka's murmur2
partitioner, used only to *check* where the broker routed each keyed record.

Steps, each checked here (the vitest side checks the report again, from TypeScript):
  1. AdminService.CreateTopics: `orders` with 6 partitions, `ticks` with 2; DescribeTopics.
  2. ProduceService.Produce with `records` (keyed JSON orders, headers, an empty key, a null
     value): every answered {partition, offset} is the murmur2 partition and the next offset.
  3. FetchService.Fetch (RECORD_FORMAT_RECORDS) of every partition from 0, and from the middle of
     a batch: per-partition order and content equal what was produced.
  4. FetchService.ListOffsets: EARLIEST, LATEST (and UNSPECIFIED = LATEST) on `orders`; on `ticks`
     records with timestamp_ms 1000, 2000, 3000 (one batch per record on partition 0, one batch
     of three on partition 1) looked up by OFFSET_SPEC_TIMESTAMP.
  5. Bad input: Produce to an unknown topic fails with NOT_FOUND and trailing metadata
     rill-error-name = UNKNOWN_TOPIC_OR_PARTITION.

On success prints one JSON line (the report) and exits 0. On failure prints
`python_client: FAILED: <what>` to stderr and exits 1 (2 for bad usage or missing modules).
"""

import json
import sys
import time

CALL_TIMEOUT_S = 10.0
ORDERS = "orders"
ORDERS_PARTITIONS = 6
TICKS = "ticks"
TICKS_PARTITIONS = 2
UNKNOWN_TOPIC = "no-such-topic-from-python"


class CheckFailed(Exception):
    """A check on the broker's answer did not hold."""


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


# --- Kafka's default partitioner (for checking the broker's routing only) ---------------------

def murmur2(data):
    """Kafka's Utils.murmur2 as a signed 32-bit int (Java's value)."""
    m = 0x5BD1E995
    mask = 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = length & ~3
    rem = length & 3
    if rem == 3:
        h ^= data[tail + 2] << 16
    if rem >= 2:
        h ^= data[tail + 1] << 8
    if rem >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key, n):
    return (murmur2(key) & 0x7FFFFFFF) % n


def self_test_murmur2():
    # Kafka's UtilsTest.testMurmur2 vectors.
    vectors = [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ]
    for key, want in vectors:
        got = murmur2(key)
        check(got == want, "murmur2 self-test: murmur2(%r) = %d, want %d" % (key, got, want))


# --- helpers ----------------------------------------------------------------------------------

def text(b):
    """bytes -> str for the report (every key and value here is UTF-8)."""
    return None if b is None else b.decode("utf-8")


def opt_bytes(msg, field):
    """An optional bytes field: None when absent (null), else its bytes."""
    return getattr(msg, field) if msg.HasField(field) else None


def header_list(headers):
    return [[h.key, text(h.value) if h.HasField("value") else None] for h in headers]


def describe_error(err):
    """Text of an ErrorDetail, for messages."""
    return "%s (%d): %s" % (err.name, err.code, err.message)


OPTIONS = ("--read", "--tls-ca", "--tls-cert", "--tls-key", "--server-name", "--basic")
USAGE = ("usage: python_client.py ADDRESS GENERATED_DIR [--read TOPIC] [--tls-ca FILE [--tls-cert FILE "
         "--tls-key FILE] [--server-name NAME] [--basic USER:PASSWORD]]")


def parse_options(rest):
    """The OPTIONS given after the two positional arguments, as a dict; None on bad usage."""
    opts = {}
    i = 0
    while i < len(rest):
        if rest[i] not in OPTIONS or i + 1 >= len(rest):
            return None
        opts[rest[i]] = rest[i + 1]
        i += 2
    if ("--tls-cert" in opts) != ("--tls-key" in opts):
        return None
    if "--tls-ca" not in opts and any(k in opts for k in ("--tls-cert", "--tls-key", "--server-name", "--basic")):
        return None
    return opts


def open_channel(grpc, address, opts):
    """A plaintext channel, or a TLS one (with Basic call credentials) as the options say."""
    # No proxy for 127.0.0.1, whatever the environment says.
    options = [("grpc.enable_http_proxy", 0)]
    if "--tls-ca" not in opts:
        return grpc.insecure_channel(address, options=options)

    def read(name):
        with open(opts[name], "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(
        root_certificates=read("--tls-ca"),
        private_key=read("--tls-key") if "--tls-key" in opts else None,
        certificate_chain=read("--tls-cert") if "--tls-cert" in opts else None)
    if "--basic" in opts:
        import base64
        header = "Basic " + base64.b64encode(opts["--basic"].encode("utf-8")).decode("ascii")

        def basic(context, callback):
            callback((("authorization", header),), None)

        creds = grpc.composite_channel_credentials(creds, grpc.metadata_call_credentials(basic))
    if "--server-name" in opts:
        options.append(("grpc.ssl_target_name_override", opts["--server-name"]))
    return grpc.secure_channel(address, creds, options=options)


def main():
    args = sys.argv[1:]
    opts = parse_options(args[2:]) if len(args) >= 2 else None
    if opts is None:
        print(USAGE, file=sys.stderr)
        return 2
    read_topic = opts.get("--read")
    address, gen_dir = args[0], args[1]
    sys.path.insert(0, gen_dir)

    try:
        import grpc
        import google.protobuf
    except ImportError as e:
        print("python_client: FAILED: cannot import grpc/google.protobuf (%s) with %s; "
              "run scripts/install-test-deps.sh (Debian python3-grpcio python3-protobuf)"
              % (e, sys.executable), file=sys.stderr)
        return 2
    try:
        from rill.v1 import admin_service_pb2 as admin_pb
        from rill.v1 import admin_service_pb2_grpc as admin_grpc
        from rill.v1 import common_pb2 as common_pb
        from rill.v1 import fetch_service_pb2 as fetch_pb
        from rill.v1 import fetch_service_pb2_grpc as fetch_grpc
        from rill.v1 import produce_service_pb2 as produce_pb
        from rill.v1 import produce_service_pb2_grpc as produce_grpc
    except ImportError as e:
        print("python_client: FAILED: cannot import the generated stubs from %s (%s); generate "
              "them with protoc --python_out --grpc_python_out" % (gen_dir, e), file=sys.stderr)
        return 2

    started = time.monotonic()
    step = ["start"]
    report = {
        "ok": False,
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "tls": "--tls-ca" in opts,
        "client_cert": "--tls-cert" in opts,
    }

    try:
        self_test_murmur2()
        channel = open_channel(grpc, address, opts)
        step[0] = "connect"
        grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT_S)
        admin = admin_grpc.AdminServiceStub(channel)
        producer = produce_grpc.ProduceServiceStub(channel)
        fetcher = fetch_grpc.FetchServiceStub(channel)

        # 1. topics --------------------------------------------------------------------------
        step[0] = "CreateTopics"
        created = admin.CreateTopics(
            admin_pb.CreateTopicsRequest(topics=[
                admin_pb.CreateTopicsRequest.Topic(name=ORDERS, partitions=ORDERS_PARTITIONS),
                admin_pb.CreateTopicsRequest.Topic(name=TICKS, partitions=TICKS_PARTITIONS),
            ]),
            timeout=CALL_TIMEOUT_S)
        check(len(created.topics) == 2, "CreateTopics answered %d topics, want 2" % len(created.topics))
        for t, (name, n) in zip(created.topics, [(ORDERS, ORDERS_PARTITIONS), (TICKS, TICKS_PARTITIONS)]):
            check(t.name == name, "CreateTopics answered topic %r in place of %r" % (t.name, name))
            check(not t.HasField("error"), "CreateTopics %s failed: %s" % (name, describe_error(t.error)))
            check(t.partitions == n, "CreateTopics %s: partitions = %d, want %d" % (name, t.partitions, n))

        step[0] = "DescribeTopics"
        described = admin.DescribeTopics(admin_pb.DescribeTopicsRequest(topics=[ORDERS], exclude_configs=True),
                                         timeout=CALL_TIMEOUT_S)
        check(len(described.topics) == 1 and not described.topics[0].HasField("error"),
              "DescribeTopics %s: %s" % (ORDERS, described))
        check([p.partition for p in described.topics[0].partitions] == list(range(ORDERS_PARTITIONS)),
              "DescribeTopics %s: partitions %s" % (ORDERS, [p.partition for p in described.topics[0].partitions]))
        report["topic"] = ORDERS
        report["partitions"] = ORDERS_PARTITIONS

        # 2. produce keyed JSON orders through `records` -------------------------------------
        step[0] = "Produce records"
        customers = ["customer-%d" % i for i in range(1, 9)]
        next_offset = {p: 0 for p in range(ORDERS_PARTITIONS)}
        produced = []  # what we sent and where the broker says it went, in send order
        order_id = 0
        rounds = []
        for r in range(3):
            batch = []
            for c in customers:
                order_id += 1
                value = {"order_id": order_id, "customer": c, "amount_cents": 1000 + 7 * order_id,
                         "items": ["sku-%d" % (order_id % 5)], "note": "caf\u00e9 \u2615"}
                batch.append({"key": c.encode(), "value": json.dumps(value, sort_keys=True).encode(),
                              "headers": [["source", "python"], ["round", str(r)]], "timestamp_ms": None})
            rounds.append(batch)
        # Edge cases in one more request: an empty key is a key (routed by murmur2 of b""),
        # a null value, a header with a null value, an explicit timestamp.
        order_id += 1
        rounds.append([
            {"key": b"", "value": json.dumps({"order_id": order_id, "customer": ""}).encode(),
             "headers": [], "timestamp_ms": None},
            {"key": b"customer-1", "value": None, "headers": [["deleted", None], ["empty", ""]],
             "timestamp_ms": 1700000000123},
        ])

        before_ms = int(time.time() * 1000)
        for batch in rounds:
            records = []
            for rec in batch:
                kwargs = {"key": rec["key"]}
                if rec["value"] is not None:
                    kwargs["value"] = rec["value"]
                if rec["timestamp_ms"] is not None:
                    kwargs["timestamp_ms"] = rec["timestamp_ms"]
                hdrs = [common_pb.Header(key=k) if v is None else common_pb.Header(key=k, value=v.encode())
                        for k, v in rec["headers"]]
                records.append(common_pb.Record(headers=hdrs, **kwargs))
            resp = producer.Produce(
                produce_pb.ProduceRequest(topic=ORDERS, records=records, acks=produce_pb.ACKS_ALL),
                timeout=CALL_TIMEOUT_S)
            check(resp.topic == ORDERS, "Produce answered topic %r" % resp.topic)
            check(len(resp.records) == len(records),
                  "Produce answered %d record results for %d records" % (len(resp.records), len(records)))
            first_in_request = {}
            for rec, res in zip(batch, resp.records):
                want_p = partition_for_key(rec["key"], ORDERS_PARTITIONS)
                check(res.partition == want_p,
                      "Produce: key %r went to partition %d, Kafka's murmur2 partitioner says %d"
                      % (rec["key"], res.partition, want_p))
                check(res.offset == next_offset[want_p],
                      "Produce: key %r got offset %d on partition %d, want %d (the next offset)"
                      % (rec["key"], res.offset, want_p, next_offset[want_p]))
                first_in_request.setdefault(want_p, res.offset)
                next_offset[want_p] += 1
                produced.append(dict(rec, partition=res.partition, offset=res.offset))
            got_parts = [p.partition for p in resp.partitions]
            check(got_parts == sorted(first_in_request),
                  "Produce: partition results %s, want %s (sorted, one per partition written)"
                  % (got_parts, sorted(first_in_request)))
            for p in resp.partitions:
                check(not p.HasField("error"), "Produce: partition %d failed: %s" % (p.partition, describe_error(p.error)))
                check(p.base_offset == first_in_request[p.partition],
                      "Produce: partition %d base_offset %d, want %d"
                      % (p.partition, p.base_offset, first_in_request[p.partition]))
        after_ms = int(time.time() * 1000)
        report["produced"] = [{"key": text(r["key"]), "value": text(r["value"]), "headers": r["headers"],
                               "timestamp_ms": r["timestamp_ms"], "partition": r["partition"],
                               "offset": r["offset"]} for r in produced]
        report["end_offsets"] = [next_offset[p] for p in range(ORDERS_PARTITIONS)]

        # 3. fetch everything back, RECORDS format ------------------------------------------
        step[0] = "Fetch"
        expected = {p: [r for r in produced if r["partition"] == p] for p in range(ORDERS_PARTITIONS)}
        positions = {p: 0 for p in range(ORDERS_PARTITIONS)}
        fetched = {p: [] for p in range(ORDERS_PARTITIONS)}
        timestamp_types = set()
        for _ in range(100):
            todo = [p for p in range(ORDERS_PARTITIONS) if positions[p] < next_offset[p]]
            if not todo:
                break
            req = fetch_pb.FetchRequest(
                partitions=[fetch_pb.FetchPartition(topic=ORDERS, partition=p, offset=positions[p]) for p in todo],
                max_wait_ms=0, format=common_pb.RECORD_FORMAT_RECORDS)
            resp = fetcher.Fetch(req, timeout=CALL_TIMEOUT_S)
            check([(fp.topic, fp.partition) for fp in resp.partitions] == [(ORDERS, p) for p in todo],
                  "Fetch answered partitions %s, want %s in request order"
                  % ([(fp.topic, fp.partition) for fp in resp.partitions], [(ORDERS, p) for p in todo]))
            for fp in resp.partitions:
                p = fp.partition
                check(not fp.HasField("error"), "Fetch %s-%d: %s" % (ORDERS, p, describe_error(fp.error)))
                check(fp.high_watermark == next_offset[p],
                      "Fetch %s-%d: high_watermark %d, want %d" % (ORDERS, p, fp.high_watermark, next_offset[p]))
                check(fp.log_start_offset == 0, "Fetch %s-%d: log_start_offset %d, want 0" % (ORDERS, p, fp.log_start_offset))
                for cr in fp.records:
                    fetched[p].append(cr)
                    timestamp_types.add(common_pb.TimestampType.Name(cr.timestamp_type))
                want_next = positions[p] + len(fp.records)
                check(fp.next_offset == want_next,
                      "Fetch %s-%d from %d: next_offset %d after %d records, want %d"
                      % (ORDERS, p, positions[p], fp.next_offset, len(fp.records), want_next))
                positions[p] = fp.next_offset
        else:
            raise CheckFailed("Fetch made no progress to the end of %s after 100 requests: at %s, end %s"
                              % (ORDERS, positions, next_offset))

        for p in range(ORDERS_PARTITIONS):
            got, want = fetched[p], expected[p]
            check(len(got) == len(want), "Fetch %s-%d: %d records, want %d" % (ORDERS, p, len(got), len(want)))
            for i, (cr, w) in enumerate(zip(got, want)):
                where = "Fetch %s-%d record %d" % (ORDERS, p, i)
                check(cr.topic == ORDERS and cr.partition == p, "%s: labelled %s-%d" % (where, cr.topic, cr.partition))
                check(cr.offset == w["offset"], "%s: offset %d, want %d (per-partition order)" % (where, cr.offset, w["offset"]))
                check(opt_bytes(cr, "key") == w["key"], "%s: key %r, want %r" % (where, opt_bytes(cr, "key"), w["key"]))
                check(opt_bytes(cr, "value") == w["value"],
                      "%s: value %r, want %r" % (where, opt_bytes(cr, "value"), w["value"]))
                check(header_list(cr.headers) == w["headers"],
                      "%s: headers %s, want %s" % (where, header_list(cr.headers), w["headers"]))
                if w["timestamp_ms"] is not None:
                    check(cr.timestamp_ms == w["timestamp_ms"],
                          "%s: timestamp_ms %d, want %d" % (where, cr.timestamp_ms, w["timestamp_ms"]))
                else:
                    check(before_ms - 60000 <= cr.timestamp_ms <= after_ms + 60000,
                          "%s: broker-assigned timestamp_ms %d is not near the produce time [%d, %d]"
                          % (where, cr.timestamp_ms, before_ms, after_ms))
                if w["value"] is not None:
                    json.loads(cr.value.decode("utf-8"))  # still valid JSON
        check(timestamp_types <= {"TIMESTAMP_TYPE_CREATE_TIME", "TIMESTAMP_TYPE_UNSPECIFIED"},
              "Fetch: timestamp types %s on a CreateTime topic" % sorted(timestamp_types))
        report["fetched"] = {str(p): [{"offset": cr.offset, "key": text(opt_bytes(cr, "key")),
                                       "value": text(opt_bytes(cr, "value")), "timestamp_ms": cr.timestamp_ms}
                                      for cr in fetched[p]] for p in range(ORDERS_PARTITIONS)}
        report["timestamp_types"] = sorted(timestamp_types)

        # From the middle of a batch: the records below the requested offset are skipped.
        step[0] = "Fetch from mid-batch offset"
        mid = [p for p in range(ORDERS_PARTITIONS) if next_offset[p] >= 2]
        check(mid, "no partition of %s got two records; the test keys are badly chosen" % ORDERS)
        resp = fetcher.Fetch(fetch_pb.FetchRequest(
            partitions=[fetch_pb.FetchPartition(topic=ORDERS, partition=p, offset=1) for p in mid],
            format=common_pb.RECORD_FORMAT_RECORDS), timeout=CALL_TIMEOUT_S)
        for fp in resp.partitions:
            check(not fp.HasField("error"), "Fetch %s-%d from 1: %s" % (ORDERS, fp.partition, describe_error(fp.error)))
            offs = [cr.offset for cr in fp.records]
            check(offs and offs == list(range(1, 1 + len(offs))),
                  "Fetch %s-%d from offset 1: offsets %s, want 1, 2, ..." % (ORDERS, fp.partition, offs))
        report["mid_batch_partitions"] = mid

        # 4. ListOffsets ---------------------------------------------------------------------
        step[0] = "ListOffsets EARLIEST/LATEST"
        lo = fetch_pb.ListOffsetsRequest.Partition
        specs = [("earliest", common_pb.OFFSET_SPEC_EARLIEST), ("latest", common_pb.OFFSET_SPEC_LATEST),
                 ("unspecified", common_pb.OFFSET_SPEC_UNSPECIFIED)]
        orders_offsets = {}
        for name, spec in specs:
            resp = fetcher.ListOffsets(fetch_pb.ListOffsetsRequest(
                partitions=[lo(topic=ORDERS, partition=p, spec=spec) for p in range(ORDERS_PARTITIONS)]),
                timeout=CALL_TIMEOUT_S)
            check([(x.topic, x.partition) for x in resp.partitions] == [(ORDERS, p) for p in range(ORDERS_PARTITIONS)],
                  "ListOffsets %s: partitions out of request order" % name)
            for x in resp.partitions:
                check(not x.HasField("error"), "ListOffsets %s %s-%d: %s" % (name, ORDERS, x.partition, describe_error(x.error)))
            orders_offsets[name] = [x.offset for x in resp.partitions]
        check(orders_offsets["earliest"] == [0] * ORDERS_PARTITIONS,
              "ListOffsets EARLIEST on %s: %s, want all 0" % (ORDERS, orders_offsets["earliest"]))
        check(orders_offsets["latest"] == report["end_offsets"],
              "ListOffsets LATEST on %s: %s, want %s" % (ORDERS, orders_offsets["latest"], report["end_offsets"]))
        check(orders_offsets["unspecified"] == report["end_offsets"],
              "ListOffsets UNSPECIFIED (= LATEST) on %s: %s, want %s"
              % (ORDERS, orders_offsets["unspecified"], report["end_offsets"]))
        report["list_offsets"] = orders_offsets

        step[0] = "Produce with timestamps"
        tick_ts = [1000, 2000, 3000]
        # Keys whose murmur2 partition is *not* the one we name: an explicit partition wins.
        tick_keys = {}
        for p in range(TICKS_PARTITIONS):
            k = next("tick-%d" % i for i in range(1000) if partition_for_key(b"tick-%d" % i, TICKS_PARTITIONS) != p)
            tick_keys[p] = k.encode()
        tick_values = {p: [json.dumps({"tick": i, "ts": ts}).encode() for i, ts in enumerate(tick_ts)]
                       for p in range(TICKS_PARTITIONS)}
        # Partition 0: one request (one batch) per record. Partition 1: one batch of three.
        for i, ts in enumerate(tick_ts):
            resp = producer.Produce(produce_pb.ProduceRequest(
                topic=TICKS, partition=0,
                records=[common_pb.Record(key=tick_keys[0], value=tick_values[0][i], timestamp_ms=ts)]),
                timeout=CALL_TIMEOUT_S)
            check([(r.partition, r.offset) for r in resp.records] == [(0, i)],
                  "Produce %s partition=0 ts=%d: answered %s, want [(0, %d)]"
                  % (TICKS, ts, [(r.partition, r.offset) for r in resp.records], i))
        resp = producer.Produce(produce_pb.ProduceRequest(
            topic=TICKS, partition=1,
            records=[common_pb.Record(key=tick_keys[1], value=v, timestamp_ms=ts) for v, ts in zip(tick_values[1], tick_ts)]),
            timeout=CALL_TIMEOUT_S)
        check([(r.partition, r.offset) for r in resp.records] == [(1, 0), (1, 1), (1, 2)],
              "Produce %s partition=1 (one batch): answered %s, want [(1, 0), (1, 1), (1, 2)]"
              % (TICKS, [(r.partition, r.offset) for r in resp.records]))

        step[0] = "Fetch timestamps"
        resp = fetcher.Fetch(fetch_pb.FetchRequest(
            partitions=[fetch_pb.FetchPartition(topic=TICKS, partition=p, offset=0) for p in range(TICKS_PARTITIONS)],
            format=common_pb.RECORD_FORMAT_RECORDS), timeout=CALL_TIMEOUT_S)
        for fp in resp.partitions:
            got = [(cr.offset, cr.timestamp_ms, cr.key, cr.value) for cr in fp.records]
            want = [(i, ts, tick_keys[fp.partition], tick_values[fp.partition][i]) for i, ts in enumerate(tick_ts)]
            check(got == want, "Fetch %s-%d: %s, want %s" % (TICKS, fp.partition, got, want))

        step[0] = "ListOffsets TIMESTAMP"
        # (lookup timestamp, wanted offset, wanted record timestamp); -1/-1 when none is that recent.
        cases = [(0, 0, 1000), (1000, 0, 1000), (1500, 1, 2000), (2000, 1, 2000), (2001, 2, 3000),
                 (3000, 2, 3000), (3001, -1, -1)]
        lookups = []
        for p in range(TICKS_PARTITIONS):
            req = fetch_pb.ListOffsetsRequest(partitions=[
                lo(topic=TICKS, partition=p, spec=common_pb.OFFSET_SPEC_TIMESTAMP, timestamp_ms=ts) for ts, _, _ in cases
            ] + [lo(topic=TICKS, partition=p, spec=common_pb.OFFSET_SPEC_EARLIEST),
                 lo(topic=TICKS, partition=p, spec=common_pb.OFFSET_SPEC_LATEST)])
            resp = fetcher.ListOffsets(req, timeout=CALL_TIMEOUT_S)
            check(len(resp.partitions) == len(cases) + 2,
                  "ListOffsets %s-%d: %d answers for %d lookups" % (TICKS, p, len(resp.partitions), len(cases) + 2))
            for (ts, want_off, want_ts), x in zip(cases, resp.partitions):
                check(not x.HasField("error"), "ListOffsets TIMESTAMP %d on %s-%d: %s" % (ts, TICKS, p, describe_error(x.error)))
                check(x.offset == want_off,
                      "ListOffsets TIMESTAMP %d on %s-%d (records at 1000, 2000, 3000%s): offset %d, want %d"
                      % (ts, TICKS, p, ", one batch" if p == 1 else ", one batch each", x.offset, want_off))
                check(x.timestamp_ms == want_ts,
                      "ListOffsets TIMESTAMP %d on %s-%d: timestamp_ms %d, want %d" % (ts, TICKS, p, x.timestamp_ms, want_ts))
                lookups.append({"partition": p, "timestamp_ms": ts, "offset": x.offset, "record_timestamp_ms": x.timestamp_ms})
            earliest, latest = resp.partitions[-2], resp.partitions[-1]
            check(earliest.offset == 0 and not earliest.HasField("error"),
                  "ListOffsets EARLIEST on %s-%d: %d, want 0" % (TICKS, p, earliest.offset))
            check(latest.offset == len(tick_ts) and not latest.HasField("error"),
                  "ListOffsets LATEST on %s-%d: %d, want %d" % (TICKS, p, latest.offset, len(tick_ts)))
            lookups.append({"partition": p, "spec": "EARLIEST", "offset": earliest.offset})
            lookups.append({"partition": p, "spec": "LATEST", "offset": latest.offset})
        report["timestamps"] = {"topic": TICKS, "lookups": lookups}

        # 5. bad input -----------------------------------------------------------------------
        step[0] = "Produce to an unknown topic"
        try:
            producer.Produce(produce_pb.ProduceRequest(
                topic=UNKNOWN_TOPIC, records=[common_pb.Record(key=b"k", value=b"{}")]), timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            trailers = {k: v for k, v in (e.trailing_metadata() or ())}
            bad = {"topic": UNKNOWN_TOPIC, "code": e.code().name, "details": e.details(),
                   "rill_error_name": trailers.get("rill-error-name"),
                   "rill_error_code": trailers.get("rill-error-code"),
                   "rill_error_retriable": trailers.get("rill-error-retriable")}
        else:
            raise CheckFailed("Produce to unknown topic %r succeeded; want NOT_FOUND" % UNKNOWN_TOPIC)
        check(bad["code"] == grpc.StatusCode.NOT_FOUND.name,
              "Produce to unknown topic: status %s (%s), want NOT_FOUND" % (bad["code"], bad["details"]))
        check(bad["rill_error_name"] == "UNKNOWN_TOPIC_OR_PARTITION",
              "Produce to unknown topic: trailer rill-error-name %r, want UNKNOWN_TOPIC_OR_PARTITION (trailers %s)"
              % (bad["rill_error_name"], trailers))
        check(bad["rill_error_code"] == "3", "Produce to unknown topic: trailer rill-error-code %r, want '3'"
              % bad["rill_error_code"])
        check(UNKNOWN_TOPIC in (bad["details"] or "") or "topic" in (bad["details"] or ""),
              "Produce to unknown topic: details %r name neither the field nor the topic" % bad["details"])
        report["bad_input"] = bad

        # optional: read a topic someone else wrote ---------------------------------------
        if read_topic is not None:
            step[0] = "read %s" % read_topic
            d = admin.DescribeTopics(admin_pb.DescribeTopicsRequest(topics=[read_topic], exclude_configs=True),
                                     timeout=CALL_TIMEOUT_S)
            check(len(d.topics) == 1 and not d.topics[0].HasField("error"), "DescribeTopics %s: %s" % (read_topic, d))
            out = []
            for part in d.topics[0].partitions:
                pos = part.log_start_offset
                for _ in range(100):
                    if pos >= part.high_watermark:
                        break
                    r = fetcher.Fetch(fetch_pb.FetchRequest(
                        partitions=[fetch_pb.FetchPartition(topic=read_topic, partition=part.partition, offset=pos)],
                        format=common_pb.RECORD_FORMAT_RECORDS), timeout=CALL_TIMEOUT_S)
                    fp = r.partitions[0]
                    check(not fp.HasField("error"), "Fetch %s-%d: %s" % (read_topic, part.partition, describe_error(fp.error)))
                    check(fp.next_offset > pos, "Fetch %s-%d from %d made no progress" % (read_topic, part.partition, pos))
                    for cr in fp.records:
                        out.append({"partition": cr.partition, "offset": cr.offset, "timestamp_ms": cr.timestamp_ms,
                                    "key": text(opt_bytes(cr, "key")), "value": text(opt_bytes(cr, "value")),
                                    "headers": header_list(cr.headers)})
                    pos = fp.next_offset
                else:
                    raise CheckFailed("Fetch %s-%d: no end after 100 requests" % (read_topic, part.partition))
            report["read"] = {"topic": read_topic, "records": out}

        channel.close()
    except CheckFailed as e:
        print("python_client: FAILED at %s: %s" % (step[0], e), file=sys.stderr)
        return 1
    except grpc.FutureTimeoutError:
        print("python_client: FAILED at %s: could not connect to %s within %.0f s"
              % (step[0], address, CALL_TIMEOUT_S), file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print("python_client: FAILED at %s: RPC error %s: %s (trailers %s)"
              % (step[0], e.code().name, e.details(), list(e.trailing_metadata() or ())), file=sys.stderr)
        return 1

    report["ok"] = True
    report["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
