/**
 * Produce over the Kafka listener by real clients, each its own process, read back over gRPC
 * (the SDK's Consumer) byte for byte: kcat -P keyed from a file (-K:) with every codec (none,
 * gzip, snappy, lz4, zstd), confluent-kafka-python's idempotent producer (acks=all), kafkajs
 * (idempotent) and @platformatic/kafka (flexible versions, under Bun); and a key landing on the
 * same partition whichever client sends it (librdkafka's murmur2_random, Rill's SDK, kafkajs's
 * default partitioner).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Consumer, type ConsumerRecord, Producer } from "../../src/client/index.ts";
import { bun, kafkajs, python, ROOT, run } from "./kafka-clients.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let broker: Broker;
let dir: string;
let kafka: string;

beforeAll(async () => {
  dir = tmpDir("rill-kafka-produce-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", numPartitions: 4, autoCreateTopicsEnable: true },
    shutdownGraceMs: 500,
  });
  kafka = broker.kafkaAddress as string;
});

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

/** Every record of `topic` (all its partitions), read over gRPC, `n` of them. */
async function readBack(topic: string, partitions: number, n: number): Promise<ConsumerRecord[]> {
  const consumer = new Consumer({ bootstrap: broker.address, maxWaitMs: 100 });
  consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, offset: "earliest" as const })));
  const out: ConsumerRecord[] = [];
  const timer = setTimeout(() => void consumer.close(), 20_000);
  try {
    for await (const r of consumer) {
      out.push(r);
      if (out.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
    await consumer.close();
  }
  return out;
}

const text = (b: Uint8Array | null | undefined): string | null => (b === null || b === undefined ? null : Buffer.from(b).toString());

describe("kcat -P", () => {
  for (const codec of ["none", "gzip", "snappy", "lz4", "zstd"]) {
    it(`produces keyed records from a file with -K: and -z ${codec}, read back over gRPC as sent`, async () => {
      const file = path.join(dir, `in-${codec}.txt`);
      const lines = Array.from({ length: 50 }, (_, i) => `key-${i % 7}:value ${i} ${"x".repeat(i)}`);
      fs.writeFileSync(file, `${lines.join("\n")}\n`);
      const topic = `kcat-${codec}`;
      const r = await run("kcat", ["-P", "-b", kafka, "-t", topic, "-K:", "-z", codec, "-l", file], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      const got = await readBack(topic, 4, lines.length);
      const byKey = (rs: { key: string | null; value: string | null }[]) =>
        [...rs].sort((a, b) => `${a.key}${a.value}`.localeCompare(`${b.key}${b.value}`));
      expect(byKey(got.map((x) => ({ key: text(x.key), value: text(x.value) })))).toEqual(
        byKey(lines.map((l) => ({ key: l.slice(0, l.indexOf(":")), value: l.slice(l.indexOf(":") + 1) }))),
      );
      // A key's records keep their order in its partition.
      const k0 = got.filter((x) => text(x.key) === "key-0").map((x) => text(x.value));
      expect(k0).toEqual(lines.filter((l) => l.startsWith("key-0:")).map((l) => l.slice(6)));
    });
  }
});

const CONFLUENT_IDEMPOTENT = `
import json, sys
from confluent_kafka import Producer
addr, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": addr, "enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.codec": "lz4"})
out = []
def cb(err, msg):
    out.append({"error": None if err is None else str(err), "partition": msg.partition(), "offset": msg.offset(), "key": msg.key().decode()})
for i in range(n):
    p.produce(topic, key=f"k{i % 10}".encode(), value=bytes([i % 256, 0, 255]) + f"v{i}".encode(), on_delivery=cb)
p.flush(30)
print(json.dumps(out))
`;

describe("confluent-kafka-python (librdkafka)", () => {
  it("idempotent producer, acks=all: every record delivered once, read back over gRPC byte for byte", async () => {
    const n = 300;
    const r = await python(CONFLUENT_IDEMPOTENT, [kafka, "py-idem", String(n)]);
    expect(r.code, r.stderr).toBe(0);
    const delivered = JSON.parse(r.stdout.trim().split("\n").pop() as string) as {
      error: string | null;
      partition: number;
      offset: number;
      key: string;
    }[];
    expect(delivered.filter((d) => d.error !== null)).toEqual([]);
    expect(delivered).toHaveLength(n);
    const got = await readBack("py-idem", 4, n);
    expect(got).toHaveLength(n);
    const want = new Map(
      Array.from({ length: n }, (_, i) => [`v${i}`, Buffer.concat([Buffer.from([i % 256, 0, 255]), Buffer.from(`v${i}`)])]),
    );
    for (const rec of got) {
      const v = Buffer.from(rec.value as Uint8Array);
      const name = v.subarray(3).toString();
      expect(v.equals(want.get(name) as Buffer), name).toBe(true);
      // The delivery report's partition and offset are where it is.
      const d = delivered.find((x) => x.key === text(rec.key) && x.offset === rec.offset && x.partition === rec.partition);
      expect(d, `${name} at ${rec.partition}/${rec.offset}`).toBeDefined();
    }
    // No duplicates: offsets of each partition are 0..count-1.
    for (let p = 0; p < 4; p++) {
      const offs = got.filter((x) => x.partition === p).map((x) => x.offset);
      expect(offs).toEqual(offs.map((_, i) => i));
    }
  });
});

describe("kafkajs and @platformatic/kafka", () => {
  it("kafkajs idempotent producer (gzip): records read back over gRPC", async () => {
    const messages = Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: `kafkajs ${i}` }));
    const res = await kafkajs<{ errorCode: number }[]>(kafka, "produce", {
      topic: "kjs-idem",
      idempotent: true,
      compression: "GZIP",
      messages,
    });
    expect(res.every((r) => r.errorCode === 0)).toBe(true);
    const got = await readBack("kjs-idem", 4, 40);
    expect(got.map((r) => text(r.value)).sort()).toEqual(messages.map((m) => m.value).sort());
  });

  it("@platformatic/kafka producer (Produce v11, flexible) under Bun: records read back over gRPC", async () => {
    const script = path.join(ROOT, "test/integration/kafka-clients/platformatic-produce.ts");
    const r = await bun(script, [kafka, "plat", "25"]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const got = await readBack("plat", 4, 25);
    expect(got.map((x) => text(x.value)).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `platformatic ${i}`).sort());
    expect(got.every((x) => text(x.key)?.startsWith("pk"))).toBe(true);
  });
});

const CONFLUENT_PARTITIONS = `
import json, sys
from confluent_kafka import Producer
addr, topic = sys.argv[1], sys.argv[2]
keys = sys.argv[3].split(",")
p = Producer({"bootstrap.servers": addr, "partitioner": "murmur2_random"})
out = {}
def cb(err, msg):
    out[msg.key().decode()] = msg.partition() if err is None else str(err)
for k in keys:
    p.produce(topic, key=k.encode(), value=b"x", on_delivery=cb)
p.flush(30)
print(json.dumps(out))
`;

describe("a key's partition", () => {
  it("is the same from librdkafka (murmur2_random), Rill's SDK and kafkajs's default partitioner", async () => {
    const keys = Array.from({ length: 24 }, (_, i) => `user-${i * 37}`);
    // The topic first, with 4 partitions (num.partitions), through Metadata's auto-creation.
    const lib = await python(CONFLUENT_PARTITIONS, [kafka, "same-part", keys.join(",")]);
    expect(lib.code, lib.stderr).toBe(0);
    const fromLib = JSON.parse(lib.stdout.trim().split("\n").pop() as string) as Record<string, number>;
    const sdk = new Producer({ bootstrap: broker.address });
    const fromSdk: Record<string, number> = {};
    for (const k of keys) fromSdk[k] = (await sdk.send({ topic: "same-part", key: k, value: "y" })).partition;
    await sdk.close();
    const res = await kafkajs<{ partition: number }[]>(kafka, "produce-each", { topic: "same-part", keys });
    const fromKjs = Object.fromEntries(keys.map((k, i) => [k, (res[i] as { partition: number }).partition]));
    expect(new Set(Object.values(fromLib)).size).toBeGreaterThan(1);
    expect(fromSdk).toEqual(fromLib);
    expect(fromKjs).toEqual(fromLib);
  });
});
