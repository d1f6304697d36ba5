/**
 * The SDK's kafkajs-level features against one broker in this process: `GroupConsumer.run`
 * (eachMessage / eachBatch, partitionsConsumedConcurrently, commit policies), pause/resume and
 * seek in a group, regex subscriptions that pick up later topics, a rebalance under load with
 * per-message commits, `Producer.sendBatch`, serializer hooks (JSON, protobuf-es) and the logger
 * and instrumentation events.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Errors, RillError } from "../../src/base/errors.ts";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { GroupConsumer, type GroupRecord } from "../../src/client/group-consumer.ts";
import type { ClientEvent } from "../../src/client/instrumentation.ts";
import { Producer } from "../../src/client/producer.ts";
import { json, protobuf, text } from "../../src/client/serde.ts";
import { type TopicPartition, TopicPartitionSchema } from "../../src/gen/rill/v1/common_pb.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let broker: Broker;
let bootstrap: string;
let admin: Admin;
let groupAdmin: GroupAdmin;

async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`not reached in ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends `n` records "v0".."v{n-1}" to each of `partitions` of `topic`, in one call. */
async function produce(topic: string, partitions: readonly number[], n: number, from = 0): Promise<void> {
  const p = new Producer({ bootstrap });
  await p.sendBatch(partitions.flatMap((partition) => Array.from({ length: n }, (_, i) => ({ topic, partition, value: `v${from + i}` }))));
  await p.close();
}

const key = (r: { topic: string; partition: number; offset: number }) => `${r.topic}/${r.partition}/${r.offset}`;

beforeAll(async () => {
  dir = tmpDir("rill-client-run-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  bootstrap = broker.address;
  admin = new Admin({ bootstrap });
  await admin.createTopics([
    { name: "pause", partitions: 2 },
    { name: "conc", partitions: 4 },
    { name: "load", partitions: 6 },
    { name: "seek", partitions: 1 },
    { name: "bad-opts", partitions: 1 },
    { name: "batch-a", partitions: 2 },
    { name: "batch-b", partitions: 1 },
    { name: "serde", partitions: 1 },
    { name: "serde-pb", partitions: 1 },
    { name: "events", partitions: 1 },
    { name: "rx-one", partitions: 1 },
    { name: "signals", partitions: 2 },
    { name: "signals-out", partitions: 1 },
    { name: "not-rx", partitions: 1 },
  ]);
  groupAdmin = new GroupAdmin({ bootstrap });
});

afterAll(async () => {
  await groupAdmin?.close();
  await admin?.close();
  await broker?.close();
  rmTmp(dir);
});

describe("GroupConsumer.run", () => {
  it("pause stops a partition's delivery at once (the others go on); resume goes on from the next record, none lost or repeated", async () => {
    await produce("pause", [0, 1], 300);
    const c = new GroupConsumer({ bootstrap, groupId: "g-pause", autoOffsetReset: "earliest", maxOutstandingRecords: 100 });
    c.subscribe(["pause"]);
    const seen: Record<number, number[]> = { 0: [], 1: [] };
    let pausedAt = -1;
    let afterPause = 0;
    let resume: (() => void) | null = null;
    const running = c.run({
      partitionsConsumedConcurrently: 2,
      eachMessage: ({ partition, message, pause }) => {
        if (partition === 0 && pausedAt >= 0 && resume !== null) afterPause++;
        seen[partition]!.push(message.offset);
        if (partition === 0 && message.offset === 50) {
          pausedAt = message.offset;
          resume = pause();
          expect(c.paused()).toEqual([{ topic: "pause", partition: 0 }]);
        }
      },
    });
    await until(() => seen[1]!.length === 300, "partition 1 consumed while 0 is paused");
    // Not one record of partition 0 was handed over after the pause, although 250 wait.
    expect(afterPause).toBe(0);
    expect(seen[0]!.at(-1)).toBe(50);
    (resume as unknown as () => void)();
    resume = null;
    await until(() => seen[0]!.length === 300, "partition 0 consumed after resume");
    expect(seen[0]).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(seen[1]).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(c.paused()).toEqual([]);
    await c.close();
    await running;
  });

  it("partitionsConsumedConcurrently: 3 handles three partitions at once (never four) and keeps each partition's order", async () => {
    await produce("conc", [0, 1, 2, 3], 50);
    const c = new GroupConsumer({ bootstrap, groupId: "g-conc", autoOffsetReset: "earliest" });
    c.subscribe(["conc"]);
    const active = new Set<number>();
    let most = 0;
    const order: Record<number, number[]> = { 0: [], 1: [], 2: [], 3: [] };
    // The first record of each partition waits until three partitions are in their handlers:
    // with fewer lanes than three this never happens and the test fails (bounded).
    let releaseThree: () => void = () => undefined;
    const three = new Promise<void>((r) => {
      releaseThree = r;
    });
    const running = c.run({
      partitionsConsumedConcurrently: 3,
      commit: "batch",
      eachMessage: async ({ partition, message }) => {
        active.add(partition);
        most = Math.max(most, active.size);
        if (active.size === 3) releaseThree();
        if (message.offset === 0) await Promise.race([three, new Promise((r) => setTimeout(r, 10_000))]);
        order[partition]!.push(message.offset);
        await new Promise((r) => setImmediate(r));
        active.delete(partition);
      },
    });
    await until(() => Object.values(order).every((o) => o.length === 50), "all four partitions consumed");
    expect(most).toBe(3);
    for (const p of [0, 1, 2, 3]) expect(order[p]).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await c.close();
    await running;
    const committed = await groupAdmin.fetchOffsets("g-conc");
    expect(committed.map((o) => o.offset)).toEqual([50, 50, 50, 50]);
  });

  it("a regex subscription matches existing topics and picks up a topic created later", async () => {
    await produce("rx-one", [0], 3);
    await produce("not-rx", [0], 3);
    const c = new GroupConsumer({ bootstrap, groupId: "g-rx", autoOffsetReset: "earliest" });
    c.subscribe(/rx-.*/);
    const got: string[] = [];
    const running = c.run({ eachMessage: ({ topic, message }) => void got.push(`${topic}:${message.value!.toString()}`) });
    await until(() => got.length === 3, "records of rx-one");
    await admin.createTopics([{ name: "rx-two", partitions: 2 }]);
    await produce("rx-two", [0, 1], 2);
    await until(() => got.length === 7, "records of rx-two, created after the subscription");
    expect(got.sort()).toEqual(["rx-one:v0", "rx-one:v1", "rx-one:v2", "rx-two:v0", "rx-two:v0", "rx-two:v1", "rx-two:v1"]);
    expect(c.assignment().map((tp) => tp.topic)).not.toContain("not-rx");
    await c.close();
    await running;
    expect(() => new GroupConsumer({ bootstrap, groupId: "g-rx2" }).subscribe(/rx/i)).toThrow(/flags "i" are not supported/);
  });

  it("a rebalance under load with per-message commits hands no record to two members", async () => {
    const total = 6 * 400;
    const producer = new Producer({ bootstrap });
    const load = (async () => {
      for (let i = 0; i < total; i += 60) {
        await producer.sendBatch(Array.from({ length: 60 }, (_, j) => ({ topic: "load", key: `k${i + j}`, value: `v${i + j}` })));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const handled: string[] = [];
    const revokedEvents: number[] = [];
    const member = (name: string) => {
      const c = new GroupConsumer({
        bootstrap,
        groupId: "g-load",
        autoOffsetReset: "earliest",
        onRevoked: (ps) => void revokedEvents.push(ps.length),
        clientId: name,
      });
      c.subscribe(["load"]);
      const running = c.run({
        commit: "message",
        partitionsConsumedConcurrently: 3,
        eachMessage: ({ topic, partition, message }) => void handled.push(key({ topic, partition, offset: message.offset })),
      });
      return { c, running };
    };
    const a = member("a");
    await until(() => handled.length >= 300, "a started");
    const b = member("b");
    await until(() => handled.length >= 900, "b joined under load");
    const c = member("c");
    await load;
    await until(() => new Set(handled).size === total, "every record handled", 40_000);
    expect(revokedEvents.length).toBeGreaterThan(0); // partitions moved while records flowed
    const dupes = handled.filter((k, i) => handled.indexOf(k) !== i);
    expect(dupes).toEqual([]);
    expect(handled).toHaveLength(total);
    for (const m of [a, b, c]) await m.c.close();
    await Promise.all([a.running, b.running, c.running]);
    await producer.close();
  }, 60_000);

  it("seek in a group: the next record is at the offset sought (backwards too), and the commit follows it", async () => {
    await produce("seek", [0], 10);
    const c = new GroupConsumer({ bootstrap, groupId: "g-seek", autoOffsetReset: "earliest" });
    c.subscribe(["seek"]);
    const seen: number[] = [];
    let sought = false;
    const running = c.run({
      commit: "message",
      eachMessage: ({ message }) => {
        seen.push(message.offset);
        if (message.offset === 5 && !sought) {
          sought = true;
          c.seek({ topic: "seek", partition: 0 }, 2);
        }
      },
    });
    await until(() => seen.at(-1) === 9, "read to the end after the seek");
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(() => c.seek({ topic: "seek", partition: 7 }, 0)).toThrow(/seek-7 is not assigned/);
    // Seek to "earliest" then back to the committed end through a commit().
    c.seek({ topic: "seek", partition: 0 }, "earliest");
    await until(() => seen.length === 24, "read again from earliest");
    expect(seen.slice(14)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await c.close();
    await running;
    expect((await groupAdmin.fetchOffsets("g-seek"))[0]!.offset).toBe(10);
  });
});

describe("run: bad options", () => {
  it("are refused with INVALID_ARGUMENT naming the option, and the consumer stays usable", async () => {
    const c = new GroupConsumer({ bootstrap, groupId: "g-bad", autoOffsetReset: "earliest" });
    await expect(c.run({ eachMessage: () => undefined })).rejects.toThrow(/run: subscribe\(topics\) first/);
    await produce("bad-opts", [0], 10);
    c.subscribe(["bad-opts"]);
    const refused = async (o: Parameters<typeof c.run>[0], what: RegExp) => {
      const e = await c.run(o).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RillError);
      expect((e as RillError).kind).toBe(Errors.INVALID_ARGUMENT);
      expect((e as Error).message).toMatch(what);
    };
    await refused({}, /exactly one of eachMessage and eachBatch/);
    await refused({ eachMessage: () => undefined, eachBatch: () => undefined }, /exactly one of eachMessage and eachBatch/);
    await refused({ eachMessage: () => undefined, partitionsConsumedConcurrently: 0 }, /partitionsConsumedConcurrently/);
    await refused({ eachMessage: () => undefined, commit: "sometimes" as "batch" }, /commit/);
    const seen: number[] = [];
    const running = c.run({ eachMessage: ({ message }) => void seen.push(message.offset) });
    await expect(c.run({ eachMessage: () => undefined })).rejects.toThrow(/already being iterated or run/);
    await until(() => seen.length >= 10, "the good run after the refused ones");
    await c.close();
    await running;
  });
});

describe("Producer.sendBatch", () => {
  it("sends many records of many topics in one call, answering in input order; a bad record sends nothing", async () => {
    const p = new Producer({ bootstrap });
    const res = await p.sendBatch({
      topicMessages: [
        {
          topic: "batch-a",
          messages: [
            { value: "a0", partition: 0 },
            { value: "a1", partition: 1 },
            { value: "a2", partition: 0 },
          ],
        },
        { topic: "batch-b", messages: [{ key: "k", value: "b0" }] },
      ],
    });
    expect(res.map((r) => `${r.topic}-${r.partition}@${r.offset}`)).toEqual(["batch-a-0@0", "batch-a-1@0", "batch-a-0@1", "batch-b-0@0"]);
    const e = await p
      .sendBatch([
        { topic: "batch-b", value: "fine" },
        { topic: "batch-b", value: "bad", partition: -1 },
      ])
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind).toBe(Errors.INVALID_ARGUMENT);
    expect((e as Error).message).toMatch(/^records\[1\]: partition/);
    await p.flush();
    const [end] = await admin.listOffsets([{ topic: "batch-b", partition: 0, query: "latest" }]);
    expect(end!.offset).toBe(1); // "fine" was not sent either
    await p.close();
  });
});

describe("serializers, eachBatch, logger and events", () => {
  it("JSON and protobuf-es serializers round-trip through eachBatch; a deserializer failure stops run with INVALID_RECORD", async () => {
    type Order = { id: number; item: string };
    const orders = new Producer({ bootstrap, serializers: { key: text(), value: json<Order>() } });
    await orders.sendBatch([1, 2, 3].map((id) => ({ topic: "serde", key: `o${id}`, value: { id, item: `i${id}` } })));
    await orders.close();
    const raw = new Producer({ bootstrap });
    await raw.send({ topic: "serde", value: "not json" });
    await raw.close();
    const pb = new Producer({ bootstrap, serializers: { value: protobuf(TopicPartitionSchema) } });
    await pb.send({ topic: "serde-pb", value: create(TopicPartitionSchema, { topic: "t", partition: 7 }) });
    await pb.close();

    const c = new GroupConsumer({
      bootstrap,
      groupId: "g-serde",
      autoOffsetReset: "earliest",
      deserializers: { key: text(), value: json<Order>() },
    });
    c.subscribe(["serde"]);
    const values: (Order | null)[] = [];
    const batches: number[][] = [];
    const e = await c
      .run({
        commit: "batch",
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, isRunning, isStale }) => {
          expect(isRunning()).toBe(true);
          expect(isStale()).toBe(false);
          batches.push(batch.messages.map((m) => m.offset));
          for (const m of batch.messages) {
            values.push(m.value);
            expect(m.key).toBe(`o${m.value!.id}`);
            resolveOffset(m.offset);
          }
          await commitOffsetsIfNecessary();
        },
      })
      .catch((x: unknown) => x);
    // The last record is not JSON: run stops with the deserializer's failure, naming it.
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind).toBe(Errors.INVALID_RECORD);
    expect((e as Error).message).toMatch(/value deserializer failed for serde-0 at offset 3/);
    expect(values).toEqual([1, 2, 3].map((id) => ({ id, item: `i${id}` })));
    expect((await groupAdmin.fetchOffsets("g-serde"))[0]!.offset).toBe(3);

    const p = new GroupConsumer({
      bootstrap,
      groupId: "g-serde-pb",
      autoOffsetReset: "earliest",
      deserializers: { value: protobuf(TopicPartitionSchema) },
    });
    p.subscribe(["serde-pb"]);
    let last: GroupRecord<Buffer, TopicPartition> | null = null;
    for await (const r of p) {
      last = r;
      break;
    }
    expect(last!.value!.topic).toBe("t");
    expect(last!.value!.partition).toBe(7);
    await p.close();
  });

  it("reports connect, request, rebalance and commit events, and logs through the logger hook", async () => {
    const events: ClientEvent[] = [];
    const lines: string[] = [];
    const logger = { info: (m: string) => void lines.push(`info ${m}`), warn: (m: string) => void lines.push(`warn ${m}`) };
    const p = new Producer({ bootstrap, onEvent: (e) => void events.push(e), logger });
    await p.send({ topic: "events", value: "x" });
    await p.close();
    const c = new GroupConsumer({
      bootstrap,
      groupId: "g-events",
      autoOffsetReset: "earliest",
      onEvent: (e) => void events.push(e),
      logger,
    });
    c.subscribe(["events"]);
    const running = c.run({ commit: "message", eachMessage: () => undefined });
    await until(() => events.some((e) => e.type === "commit"), "a commit event");
    await c.close();
    await running;
    expect(events).toContainEqual({ type: "connect", address: bootstrap });
    const requests = events.filter((e) => e.type === "request");
    expect(requests.map((r) => r.method)).toContain("/rill.v1.AdminService/DescribeTopics");
    expect(requests.map((r) => r.method)).toContain("/rill.v1.GroupService/Consume");
    expect(requests.every((r) => r.address === bootstrap && r.durationMs >= 0)).toBe(true);
    expect(events).toContainEqual(
      expect.objectContaining({ type: "rebalance", groupId: "g-events", assigned: [{ topic: "events", partition: 0 }], revoked: [] }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "commit",
        groupId: "g-events",
        offsets: [{ topic: "events", partition: 0, offset: 1 }],
        error: null,
      }),
    );
    expect(lines).toContain(`info connecting to broker ${bootstrap}`);
    expect(lines).toContain(`info group "g-events": 1 partition(s) assigned, 0 revoked`);
  });
});

describe("closeOnSignals", () => {
  it("SIGTERM closes the clients gracefully (the producer flushes, the consumer commits and leaves its group), then ends the process by the signal", async () => {
    await produce("signals", [0, 1], 25);
    const root = path.resolve(import.meta.dirname, "../..");
    const proc = spawn(path.join(root, "node_modules/.bin/bun"), ["test/integration/client-signals-proc.ts"], {
      cwd: root,
      env: { ...process.env, RILL_BOOTSTRAP: bootstrap, TOPIC: "signals", TOPIC_OUT: "signals-out", GROUP: "g-signals", COUNT: "50" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once("exit", (code, signal) => resolve({ code, signal })),
    );
    const outEnd = async () => (await admin.listOffsets([{ topic: "signals-out", partition: 0, query: "latest" }]))[0]!.offset;
    try {
      await until(() => out.includes("ready"), "the child handled every record");
      // The producer lingers for a minute: nothing of it is written yet; the member is in the group.
      expect(await outEnd()).toBe(0);
      expect((await groupAdmin.describeGroups(["g-signals"]))[0]!.members).toHaveLength(1);
      proc.kill("SIGTERM");
      expect(await exited).toEqual({ code: null, signal: "SIGTERM" });
    } finally {
      proc.kill("SIGKILL");
    }
    expect(await outEnd()).toBe(50); // flushed on the signal
    const committed = await groupAdmin.fetchOffsets("g-signals");
    expect(committed.reduce((n, o) => n + o.offset, 0)).toBe(50);
    // Left the group at once (not after a session timeout).
    expect((await groupAdmin.describeGroups(["g-signals"]))[0]!.members).toHaveLength(0);
  });
});
