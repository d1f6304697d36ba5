/**
 * Real Kafka clients in group mode against Rill, each in its own process: kcat -G (librdkafka),
 * confluent-kafka-python (librdkafka) with manual commits, kafka-python, kafkajs (all classic
 * JoinGroup/SyncGroup), and @platformatic/kafka as a KIP-848 member (ConsumerGroupHeartbeat). Records are produced over
 * gRPC; each group's starting offsets are committed over gRPC (read back by the clients with
 * OffsetFetch), and what the clients commit over Kafka is read back over gRPC.
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import {
  CommitOffsetsRequestSchema,
  FetchOffsetsRequestSchema,
  type FetchOffsetsResponse,
  GroupService,
} from "../../src/gen/rill/v1/group_service_pb.ts";
import { Acks, ProduceRequestSchema } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { PYTHON, ROOT, pythonEnv, run } from "../interop/python-env.ts";
import { call, clients, rmTmp, tmpDir } from "./rpc-helpers.ts";

const TOPIC = "kgc";
const PARTITIONS = 3;
const PER_PARTITION = 10;
const ALL = Array.from({ length: PARTITIONS }, (_, p) => Array.from({ length: PER_PARTITION }, (_, i) => `p${p}-${i}`)).flat();

let broker: Broker;
let dir: string;
let address: string;
let c: ReturnType<typeof clients>;
let groups: grpc.Client;

beforeAll(async () => {
  dir = tmpDir("rill-kgc-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", groupInitialRebalanceDelayMs: 200 },
    shutdownGraceMs: 500,
  });
  address = broker.kafkaAddress as string;
  c = clients(broker.address);
  groups = new (clientConstructor(GroupService))(broker.address, grpc.credentials.createInsecure());
  await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: TOPIC, partitions: PARTITIONS }] }));
  for (let p = 0; p < PARTITIONS; p++) {
    const values = ALL.filter((v) => v.startsWith(`p${p}-`));
    await call(
      c.produce,
      "produce",
      create(ProduceRequestSchema, { topic: TOPIC, partition: p, acks: Acks.ALL, records: values.map((v) => ({ value: Buffer.from(v) })) }),
    );
  }
}, 60_000);

afterAll(async () => {
  groups?.close();
  c?.close();
  await broker?.close();
  rmTmp(dir);
});

/** Commits offset 0 of every partition for `group` over gRPC (the group starts from there). */
async function startAtZero(group: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await call(
        groups,
        "commitOffsets",
        create(CommitOffsetsRequestSchema, {
          groupId: group,
          memberId: "",
          memberEpoch: -1,
          offsets: Array.from({ length: PARTITIONS }, (_, p) => ({ topic: TOPIC, partition: p, offset: 0n, leaderEpoch: -1 })),
        }),
      );
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100)); // __consumer_offsets not there yet
    }
  }
  throw new Error("could not commit the starting offsets within 10 s");
}

/** The group's committed offsets over gRPC, by partition. */
async function committed(group: string): Promise<number[]> {
  const r: FetchOffsetsResponse = await call(groups, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: group }));
  const out = Array.from({ length: PARTITIONS }, () => -1);
  for (const o of r.offsets) if (o.topic === TOPIC) out[o.partition] = Number(o.offset);
  return out;
}

describe("real Kafka clients in consumer groups", () => {
  it("kcat -G reads every record of the topic as a group member", async () => {
    await startAtZero("kcat-group");
    const r = await run(
      "kcat",
      ["-b", address, "-G", "kcat-group", "-e", "-f", "%s\\n", "-X", "topic.metadata.refresh.interval.ms=1000", TOPIC],
      { timeoutMs: 60_000 },
    );
    const got = r.stdout.split("\n").filter((l) => l !== "");
    expect(got.sort(), r.stderr.slice(-2000)).toEqual([...ALL].sort());
  }, 90_000);

  it("confluent-kafka-python commits by hand; the commits are read back over gRPC", async () => {
    await startAtZero("py-group");
    const script = `
import json, sys
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "py-group", "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
c.subscribe([sys.argv[2]])
seen = []
while len(seen) < int(sys.argv[3]):
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        print(json.dumps({"error": str(m.error())}), file=sys.stderr)
        continue
    seen.append(m.value().decode())
    c.commit(message=m, asynchronous=False)
c.close()
print(json.dumps(seen))
`;
    const r = await run(PYTHON, ["-c", script, address, TOPIC, String(ALL.length)], { timeoutMs: 60_000, env: pythonEnv() });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split("\n").pop()!) as string[];
    expect(seen.sort()).toEqual([...ALL].sort());
    expect(await committed("py-group")).toEqual([PER_PARTITION, PER_PARTITION, PER_PARTITION]);
  }, 90_000);

  it("kafka-python (its own protocol code, older versions) consumes in a group and commits", async () => {
    await startAtZero("kp-group");
    const script = `
import json, sys, time
from kafka import KafkaConsumer
c = KafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], group_id="kp-group", enable_auto_commit=False,
                  auto_offset_reset="earliest", session_timeout_ms=10000, consumer_timeout_ms=30000)
seen = []
for m in c:
    seen.append(m.value.decode())
    if len(seen) >= int(sys.argv[3]):
        break
c.commit()
c.close()
print(json.dumps(seen))
`;
    const r = await run(PYTHON, ["-c", script, address, TOPIC, String(ALL.length)], { timeoutMs: 60_000, env: pythonEnv() });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split("\n").pop()!) as string[];
    expect(seen.sort()).toEqual([...ALL].sort());
    expect(await committed("kp-group")).toEqual([PER_PARTITION, PER_PARTITION, PER_PARTITION]);
  }, 90_000);

  it("kafkajs consumes as a group member and commits what it read", async () => {
    await startAtZero("js-group");
    const scriptDir = tmpDir("rill-kafkajs-");
    const script = path.join(scriptDir, "consume.cjs");
    fs.writeFileSync(
      script,
      `
const { Kafka, logLevel } = require(${JSON.stringify(path.join(ROOT, "node_modules/kafkajs"))});
const [address, topic, want] = process.argv.slice(2);
(async () => {
  const kafka = new Kafka({ clientId: "kafkajs-test", brokers: [address], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: "js-group", sessionTimeout: 10000, rebalanceTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value.toString());
        if (seen.length >= Number(want)) resolve();
      },
    });
  });
  await consumer.commitOffsets([]).catch(() => {});
  await consumer.disconnect();
  console.log(JSON.stringify(seen));
})().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    try {
      const r = await run(process.execPath, [script, address, TOPIC, String(ALL.length)], { timeoutMs: 60_000 });
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      const seen = JSON.parse(r.stdout.trim().split("\n").pop()!) as string[];
      expect(seen.sort()).toEqual([...ALL].sort());
      // kafkajs commits what it processed when it disconnects.
      expect(await committed("js-group")).toEqual([PER_PARTITION, PER_PARTITION, PER_PARTITION]);
    } finally {
      rmTmp(scriptDir);
    }
  }, 90_000);

  it("@platformatic/kafka with groupProtocol consumer (KIP-848, ConsumerGroupHeartbeat) reads and commits", async () => {
    await startAtZero("kip848-group");
    const file = path.join(ROOT, "test/integration/kafka-group-clients/platformatic-848.ts");
    const r = await run(path.join(ROOT, "node_modules/.bin/bun"), [file, address, TOPIC, "kip848-group", String(ALL.length)], {
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split("\n").pop()!) as string[];
    expect(seen.sort()).toEqual([...ALL].sort());
    expect(await committed("kip848-group")).toEqual([PER_PARTITION, PER_PARTITION, PER_PARTITION]);
  }, 90_000);
});
