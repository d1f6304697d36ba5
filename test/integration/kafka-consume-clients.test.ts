/**
 * Real Kafka consumers, each its own process, read over the Kafka listener what Rill's SDK
 * produced over gRPC — uncompressed and gzip batches, and LZ4, zstd and snappy in a second topic
 * (kafkajs reads none of those without codec plugins): kcat -C -e (librdkafka), a
 * confluent-kafka-python Consumer with assign(), a kafkajs group consumer, and an
 * @platformatic/kafka consumer (flexible Fetch v12+ with topic ids, under Bun). Each must print
 * exactly the records produced — partition, offset, key and value. And the other way: records a
 * Kafka client produced (kcat -P) are read back over gRPC by the SDK's Consumer.
 */
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { bun, python, run } from "./kafka-clients.ts";
import { call, clients, rmTmp, tmpDir } from "./rpc-helpers.ts";

const TOPIC = "consumed";
const CODECS = "codecs";
type Row = [partition: number, offset: number, key: string | null, value: string | null];

let broker: Broker;
let dir: string;
let address: string;
/** What the SDK produced, in partition then offset order. */
const produced: Row[] = [];
const codecs: Row[] = [];

/** Sends 30 records of growing size to each partition, with its codec; adds them to `rows`. */
async function produceRows(
  topic: string,
  parts: readonly (readonly [number, "none" | "gzip" | "lz4" | "zstd" | "snappy"])[],
  rows: Row[],
): Promise<void> {
  for (const [partition, compression] of parts) {
    const p = new Producer({ bootstrap: broker.address, compression, lingerMs: 20 });
    const sent = [];
    for (let i = 0; i < 30; i++) {
      const key = `k${partition}-${i}`;
      const value = `${topic}-${partition}-${i}-${"x".repeat(i * 37)}`;
      sent.push(p.send({ topic, partition, key, value }).then((md) => rows.push([partition, md.offset, key, value])));
    }
    await Promise.all(sent);
    await p.close();
  }
}

const sorted = (rows: Row[]): Row[] => [...rows].sort((a, b) => a[0] - b[0] || a[1] - b[1]);

beforeAll(async () => {
  dir = tmpDir("rill-kconsume-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", autoCreateTopicsEnable: false },
    shutdownGraceMs: 500,
  });
  address = broker.kafkaAddress as string;
  const c = clients(broker.address);
  await call(
    c.admin,
    "createTopics",
    create(CreateTopicsRequestSchema, {
      topics: [
        { name: TOPIC, partitions: 2 },
        { name: CODECS, partitions: 3 },
        { name: "from-kafka", partitions: 1 },
      ],
    }),
  );
  c.close();
  // Partition 0 in uncompressed batches, partition 1 in gzip batches (kafkajs reads only these
  // without codec plugins); the other codecs in "codecs", one partition each.
  await produceRows(
    TOPIC,
    [
      [0, "none"],
      [1, "gzip"],
    ],
    produced,
  );
  await produceRows(
    CODECS,
    [
      [0, "lz4"],
      [1, "zstd"],
      [2, "snappy"],
    ],
    codecs,
  );
  produced.splice(0, produced.length, ...sorted(produced));
  codecs.splice(0, codecs.length, ...sorted(codecs));
}, 60_000);

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

describe("real Kafka consumers over the Kafka listener", () => {
  it("kcat -C -e prints what the SDK produced, byte for byte, in every codec", async () => {
    for (const [topic, expected] of [
      [TOPIC, produced],
      [CODECS, codecs],
    ] as const) {
      const rows: Row[] = [];
      for (const partition of new Set(expected.map((r) => r[0]))) {
        const r = await run(
          "kcat",
          ["-C", "-b", address, "-t", topic, "-p", String(partition), "-o", "0", "-e", "-q", "-f", "%p|%o|%k|%s\\n"],
          { timeoutMs: 30_000 },
        );
        expect(r.code, r.stderr).toBe(0);
        for (const line of r.stdout.split("\n").filter((l) => l !== "")) {
          const [p, o, k, ...v] = line.split("|");
          rows.push([Number(p), Number(o), k!, v.join("|")]);
        }
      }
      expect(rows).toEqual(expected);
    }
  }, 60_000);

  it("a confluent-kafka-python Consumer with assign() reads every record", async () => {
    const script = `
import json, sys, time
from confluent_kafka import Consumer, TopicPartition
addr, topic, parts, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = Consumer({"bootstrap.servers": addr, "group.id": "py-assign", "enable.auto.commit": False, "fetch.wait.max.ms": 100})
c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
out, deadline = [], time.time() + 30
while len(out) < want and time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        print(json.dumps({"error": str(m.error())}))
        sys.exit(2)
    out.append([m.partition(), m.offset(), m.key().decode(), m.value().decode()])
c.close()
print(json.dumps(out))
`;
    for (const [topic, expected, parts] of [
      [TOPIC, produced, 2],
      [CODECS, codecs, 3],
    ] as const) {
      const r = await python(script, [address, topic, String(parts), String(expected.length)], 45_000);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(sorted(JSON.parse(r.stdout.trim().split("\n").pop()!) as Row[])).toEqual(expected);
    }
  }, 60_000);

  it("a kafkajs group consumer reads every record", async () => {
    const r = await run(
      "node",
      [path.join(import.meta.dirname, "kafka-clients", "kafkajs-consume.mjs"), address, TOPIC, String(produced.length), "kjs-group"],
      {
        timeoutMs: 50_000,
      },
    );
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as Row[] | { error: string };
    expect(r.code, JSON.stringify(out) + r.stderr).toBe(0);
    expect(sorted(out as Row[])).toEqual(produced);
  }, 60_000);

  it("an @platformatic/kafka consumer (Fetch v12+, topic ids) reads every record", async () => {
    // Not the snappy partition: @platformatic/kafka decodes raw snappy blocks only, not the xerial
    // framing Kafka's Java client (and Rill's SDK) write.
    for (const [topic, expected, parts] of [
      [TOPIC, produced, 2],
      [CODECS, codecs.filter((r) => r[0] < 2), 2],
    ] as const) {
      const r = await bun(
        path.join(import.meta.dirname, "kafka-clients", "platformatic-consume.ts"),
        [address, topic, String(expected.length), `plt-${topic}`, String(parts)],
        50_000,
      );
      const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Row[] | { error: string };
      expect(r.code, JSON.stringify(out) + r.stderr).toBe(0);
      expect(sorted(out as Row[])).toEqual(expected);
    }
  }, 60_000);

  it("records kcat -P produced are read back over gRPC by the SDK Consumer", async () => {
    const lines = Array.from({ length: 20 }, (_, i) => `key-${i}:kafka-value-${i}`);
    const p = await run("kcat", ["-P", "-b", address, "-t", "from-kafka", "-p", "0", "-K", ":", "-z", "lz4"], {
      input: `${lines.join("\n")}\n`,
      timeoutMs: 30_000,
    });
    expect(p.code, p.stderr).toBe(0);
    const consumer = new Consumer({ bootstrap: broker.address, maxWaitMs: 100 });
    consumer.assign([{ topic: "from-kafka", partition: 0, offset: "earliest" }]);
    const got: string[] = [];
    for await (const r of consumer) {
      got.push(`${r.key!.toString()}:${r.value!.toString()}`);
      if (got.length === lines.length) break;
    }
    await consumer.close();
    expect(got).toEqual(lines);
  }, 60_000);
});
