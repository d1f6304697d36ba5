/**
 * Client quotas end to end (issue 13): a producer (unary Produce and ProduceStream) and a
 * Subscribe limited to 1 MiB/s, each as fast as it can with messages of at most 64 KiB, move at
 * most 1.1 MiB/s over the 10 s after a 2 s warm-up and see `throttle_time_ms`; removing the quota
 * restores full speed; bad AlterClientQuotas/DescribeClientQuotas input is refused with a
 * specific error and stores nothing; quotas survive a restart from a metadata snapshot.
 *
 * The bound is what the broker enforces, not a timing the test hopes for: a slow machine only
 * moves fewer bytes. The three workloads run at once, each under its own client id.
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import {
  AlterClientQuotasRequestSchema,
  type AlterClientQuotasResponse,
  CreateTopicsRequestSchema,
  DescribeClientQuotasRequestSchema,
  type DescribeClientQuotasResponse,
  QuotaEntityType,
  QuotaMatchType,
} from "../../src/gen/rill/v1/admin_service_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import {
  FetchRequestSchema,
  type FetchResponse,
  type SubscribeResponse,
  SubscribeRequestSchema,
} from "../../src/gen/rill/v1/fetch_service_pb.ts";
import {
  AutoOffsetReset,
  type ConsumeRequest,
  ConsumeRequestSchema,
  type ConsumeResponse,
  GroupService,
} from "../../src/gen/rill/v1/group_service_pb.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import {
  Acks,
  ProduceRequestSchema,
  type ProduceResponse,
  type ProduceStreamRequest,
  type ProduceStreamResponse,
} from "../../src/gen/rill/v1/produce_service_pb.ts";
import { call, clients, errorName, rmTmp, tmpDir } from "./rpc-helpers.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const QUOTA = MiB;
const WARMUP_MS = 2000;
const MEASURE_MS = 10_000;
/** A record's value: with the broker's per-record overhead, one request is at most 64 KiB. */
const VALUE = new Uint8Array(64 * KiB - 64).fill(7);

type Clients = ReturnType<typeof clients>;

function withClientId(clientId: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("rill-client-id", clientId);
  return md;
}

/** A unary call with the client id header. */
function callAs<Res>(client: grpc.Client, method: string, req: unknown, clientId: string, deadlineMs = 30_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
    fn.call(client, req, withClientId(clientId), { deadline: Date.now() + deadlineMs }, (e: grpc.ServiceError | null, r: Res) =>
      e ? reject(e) : resolve(r),
    );
  });
}

/** Bytes moved between warm-up and the end of the measurement, and the throttles seen. */
class Meter {
  readonly start = Date.now();
  bytes = 0;
  throttles = 0;
  maxThrottleMs = 0;

  get done(): boolean {
    return Date.now() - this.start >= WARMUP_MS + MEASURE_MS;
  }

  add(bytes: number, throttleTimeMs: number): void {
    const at = Date.now() - this.start;
    if (at >= WARMUP_MS && at < WARMUP_MS + MEASURE_MS) this.bytes += bytes;
    if (throttleTimeMs > 0) this.throttles++;
    this.maxThrottleMs = Math.max(this.maxThrottleMs, throttleTimeMs);
  }

  /** Bytes per second over the measured 10 s. */
  get rate(): number {
    return this.bytes / (MEASURE_MS / 1000);
  }
}

function produceRequest(topic: string) {
  return create(ProduceRequestSchema, { topic, partition: 0, acks: Acks.LEADER, records: [{ value: VALUE }] });
}

/** Unary Produce from `loops` concurrent loops, until the meter is done. */
async function unaryProducer(c: Clients, topic: string, clientId: string, loops: number): Promise<Meter> {
  const meter = new Meter();
  const loop = async (): Promise<void> => {
    while (!meter.done) {
      const res = await callAs<ProduceResponse>(c.produce, "produce", produceRequest(topic), clientId);
      expect(res.partitions[0]?.error).toBeUndefined();
      meter.add(VALUE.length, res.throttleTimeMs);
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  return meter;
}

/** ProduceStream with up to `window` requests outstanding, until the meter is done. */
function streamProducer(c: Clients, topic: string, clientId: string, window: number): Promise<Meter> {
  const meter = new Meter();
  const stream = (
    c.produce as unknown as { produceStream(md: grpc.Metadata): grpc.ClientDuplexStream<ProduceStreamRequest, ProduceStreamResponse> }
  ).produceStream(withClientId(clientId));
  let next = 0n;
  let outstanding = 0;
  const send = (): void => {
    while (outstanding < window && !meter.done) {
      stream.write({ requestId: next++, request: produceRequest(topic) } as ProduceStreamRequest);
      outstanding++;
    }
  };
  return new Promise((resolve, reject) => {
    stream.on("data", (r: ProduceStreamResponse) => {
      outstanding--;
      if (r.result.case !== "response") return reject(new Error(`stream answered ${JSON.stringify(r.result)}`));
      meter.add(VALUE.length, r.result.value.throttleTimeMs);
      if (meter.done) {
        if (outstanding === 0) stream.end();
      } else send();
    });
    stream.on("error", reject);
    stream.on("end", () => resolve(meter));
    send();
  });
}

/** Subscribe from offset 0 in messages of at most 64 KiB, until the meter is done. */
function subscriber(c: Clients, topic: string, clientId: string): Promise<Meter> {
  const meter = new Meter();
  const req = create(SubscribeRequestSchema, {
    partitions: [{ topic, partition: 0, offset: 0n }],
    maxBytes: 64 * KiB,
    format: RecordFormat.BATCHES,
  });
  const stream = (
    c.fetch as unknown as { subscribe(r: unknown, md: grpc.Metadata): grpc.ClientReadableStream<SubscribeResponse> }
  ).subscribe(req, withClientId(clientId));
  return new Promise((resolve, reject) => {
    stream.on("data", (m: SubscribeResponse) => {
      let bytes = 0;
      for (const p of m.partitions) bytes += p.recordBatches.length;
      meter.add(bytes, m.throttleTimeMs);
      if (meter.done) {
        stream.cancel();
        resolve(meter);
      }
    });
    stream.on("error", (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED) reject(e);
    });
  });
}

/** Unary Fetch of 64 KiB at a time from offset 0, adding to `meter` until it is done. */
async function fetcher(c: Clients, topic: string, meter: Meter, own: Meter): Promise<void> {
  let offset = 0n;
  while (!meter.done) {
    const req = create(FetchRequestSchema, {
      partitions: [{ topic, partition: 0, offset }],
      maxBytes: 64 * KiB,
      format: RecordFormat.BATCHES,
    });
    const res = await callAs<FetchResponse>(c.fetch, "fetch", req, "fetcher");
    const p = res.partitions[0]!;
    expect(p.error).toBeUndefined();
    offset = p.nextOffset;
    meter.add(p.recordBatches.length, res.throttleTimeMs);
    own.add(p.recordBatches.length, res.throttleTimeMs);
  }
}

/** A Consume stream of group `group` (64 KiB of byte credit, granted back as records arrive), until `meter` is done. */
function consumer(address: string, topic: string, group: string, meter: Meter, own: Meter): Promise<void> {
  const Group = clientConstructor(GroupService);
  const client = new Group(address, grpc.credentials.createInsecure());
  const stream = (client as unknown as { consume(md: grpc.Metadata): grpc.ClientDuplexStream<ConsumeRequest, ConsumeResponse> }).consume(
    withClientId("consumer"),
  );
  stream.write(
    create(ConsumeRequestSchema, {
      kind: {
        case: "subscribe",
        value: {
          groupId: group,
          topics: [topic],
          autoOffsetReset: AutoOffsetReset.EARLIEST,
          maxOutstandingRecords: 1_000_000,
          maxOutstandingBytes: BigInt(64 * KiB),
          format: RecordFormat.BATCHES,
        },
      },
    }),
  );
  return new Promise((resolve, reject) => {
    const finish = (): void => {
      clearTimeout(timer);
      stream.cancel();
      client.close();
      resolve();
    };
    // ends when the measurement does, whether records come or not
    const timer = setTimeout(finish, WARMUP_MS + MEASURE_MS - (Date.now() - meter.start));
    stream.on("data", (m: ConsumeResponse) => {
      if (m.kind.case !== "records") return;
      const bytes = m.kind.value.recordBatches.length;
      meter.add(bytes, m.kind.value.throttleTimeMs);
      own.add(bytes, m.kind.value.throttleTimeMs);
      if (meter.done) finish();
      else stream.write(create(ConsumeRequestSchema, { kind: { case: "flow", value: { records: 0, bytes: BigInt(bytes) } } }));
    });
    stream.on("error", (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED) reject(e);
    });
  });
}

describe("client quotas", () => {
  let dir = "";
  let broker: Broker;
  let c: Clients;
  let admin: Admin;

  beforeAll(async () => {
    dir = tmpDir("rill-quotas-");
    broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { snapshotIntervalRecords: 4 } });
    c = clients(broker.address);
    admin = new Admin({ bootstrap: broker.address });
    await call(
      c.admin,
      "createTopics",
      create(CreateTopicsRequestSchema, {
        topics: ["unary", "stream", "sub", "read-twice"].map((name) => ({ name, partitions: 1, replicationFactor: 1 })),
      }),
    );
  });

  afterAll(async () => {
    await admin?.close();
    c?.close();
    await broker?.close().catch(() => {});
    rmTmp(dir);
  });

  /** Writes `count` records of 64 KiB to `topic`, under a client id no producer quota names. */
  async function preload(topic: string, count: number): Promise<void> {
    for (let i = 0; i < count; i += 8) {
      await Promise.all(Array.from({ length: 8 }, () => callAs<ProduceResponse>(c.produce, "produce", produceRequest(topic), "loader")));
    }
  }

  it("refuses bad quota requests with a specific error and stores nothing", async () => {
    const alter = (init: Parameters<typeof create<typeof AlterClientQuotasRequestSchema>>[1]) =>
      call<unknown, AlterClientQuotasResponse>(c.admin, "alterClientQuotas", create(AlterClientQuotasRequestSchema, init));
    const user = (name?: string) => ({ parts: [{ type: QuotaEntityType.USER, ...(name !== undefined ? { name } : {}) }] });
    const op = { key: "producer_byte_rate", value: 1000 };
    const cases: Array<[Parameters<typeof alter>[0], RegExp]> = [
      [{ entries: [{ entity: { parts: [] }, ops: [op] }] }, /entries\[0\]\.entity\.parts: at least one part/],
      [
        { entries: [{ entity: user("a"), ops: [{ key: "request_rate", value: 1 }] }] },
        /entries\[0\]\.ops\[0\]\.key: unknown quota "request_rate"/,
      ],
      [{ entries: [{ entity: user("a"), ops: [{ ...op, value: -1 }] }] }, /entries\[0\]\.ops\[0\]\.value: -1 is not a byte rate/],
      [{ entries: [{ entity: user(""), ops: [op] }] }, /entries\[0\]\.entity\.user: empty/],
      [
        { entries: [{ entity: { parts: [{ type: QuotaEntityType.USER, name: "a" }, { type: QuotaEntityType.USER }] }, ops: [op] }] },
        /entries\[0\]\.entity\.parts\[1\]\.type: user is given twice/,
      ],
      [
        { entries: [{ entity: { parts: [{ type: 7 as QuotaEntityType, name: "a" }] }, ops: [op] }] },
        /entries\[0\]\.entity\.parts\[0\]\.type: unknown entity type 7/,
      ],
      [{ entries: [{ entity: user("a"), ops: [] }] }, /entries\[0\]\.ops: at least one operation/],
    ];
    for (const [init, message] of cases) {
      const res = await alter(init);
      expect(res.results).toHaveLength(1);
      expect(res.results[0]!.error?.name, String(message)).toBe("INVALID_REQUEST");
      expect(res.results[0]!.error?.message).toMatch(message);
    }
    // no entries at all: the whole call fails
    const none = await alter({ entries: [] }).catch((e: unknown) => e);
    expect((none as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(errorName(none)).toBe("INVALID_REQUEST");
    // validate_only checks and stores nothing
    const valid = await alter({ entries: [{ entity: user("a"), ops: [op] }], validateOnly: true });
    expect(valid.results[0]!.error).toBeUndefined();
    // a bad describe filter
    const bad = await call(
      c.admin,
      "describeClientQuotas",
      create(DescribeClientQuotasRequestSchema, {
        components: [{ entityType: QuotaEntityType.USER, matchType: QuotaMatchType.UNSPECIFIED }],
      }),
    ).catch((e: unknown) => e);
    expect(errorName(bad)).toBe("INVALID_REQUEST");
    expect((bad as grpc.ServiceError).details).toMatch(/components\[0\]\.match_type: unknown match type 0/);
    const all = await call<unknown, DescribeClientQuotasResponse>(
      c.admin,
      "describeClientQuotas",
      create(DescribeClientQuotasRequestSchema, {}),
    );
    expect(all.entries).toEqual([]);
  });

  it("holds a producer, a pipelined producer and a Subscribe to 1 MiB/s each; removing the quota restores full speed", async () => {
    // 16 MiB for the subscriber to read, written before any quota exists
    await preload("sub", 256);
    await admin.alterClientQuotas([
      { entity: { clientId: "unary-producer" }, set: { producer_byte_rate: QUOTA } },
      { entity: { clientId: "stream-producer" }, set: { producer_byte_rate: QUOTA } },
      { entity: { user: null }, set: { consumer_byte_rate: QUOTA } },
    ]);
    expect(await admin.describeClientQuotas()).toEqual([
      { entity: { clientId: "stream-producer" }, values: { producer_byte_rate: QUOTA } },
      { entity: { clientId: "unary-producer" }, values: { producer_byte_rate: QUOTA } },
      { entity: { user: null }, values: { consumer_byte_rate: QUOTA } },
    ]);

    const [unary, stream, sub] = await Promise.all([
      unaryProducer(c, "unary", "unary-producer", 4),
      streamProducer(c, "stream", "stream-producer", 8),
      subscriber(c, "sub", "subscriber"),
    ]);
    const figures = (m: Meter) => `${(m.rate / MiB).toFixed(3)} MiB/s, ${m.throttles} throttled, max ${m.maxThrottleMs} ms`;
    console.log(`quota 1 MiB/s: unary Produce ${figures(unary)}; ProduceStream ${figures(stream)}; Subscribe ${figures(sub)}`);
    for (const m of [unary, stream, sub]) {
      expect(m.rate).toBeLessThanOrEqual(1.1 * QUOTA);
      expect(m.throttles).toBeGreaterThan(0);
    }

    // quota removed: nothing is throttled and the producer passes the old limit
    await admin.alterClientQuotas([{ entity: { clientId: "unary-producer" }, remove: ["producer_byte_rate"] }]);
    const started = Date.now();
    let throttled = 0;
    for (let i = 0; i < 64; i += 8) {
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => callAs<ProduceResponse>(c.produce, "produce", produceRequest("unary"), "unary-producer")),
      );
      for (const a of answers) if (a.throttleTimeMs > 0) throttled++;
    }
    const rate = (64 * VALUE.length) / ((Date.now() - started) / 1000);
    // (the speed is the machine's: printed, not asserted; nothing is held back any more)
    console.log(`quota removed: unary Produce ${(rate / MiB).toFixed(1)} MiB/s`);
    expect(throttled).toBe(0);
  }, 60_000);

  it("holds Fetch and Consume of one user together to its 1 MiB/s consumer quota", async () => {
    await preload("read-twice", 256);
    // the default user's consumer quota: one sensor for User:ANONYMOUS, whatever its client id
    await admin.alterClientQuotas([{ entity: { user: null }, set: { consumer_byte_rate: QUOTA } }]);
    const both = new Meter();
    const [fetched, consumed] = [new Meter(), new Meter()];
    await Promise.all([fetcher(c, "read-twice", both, fetched), consumer(broker.address, "read-twice", "quota-group", both, consumed)]);
    const figures = (m: Meter) => `${(m.rate / MiB).toFixed(3)} MiB/s, ${m.throttles} throttled, max ${m.maxThrottleMs} ms`;
    console.log(`quota 1 MiB/s: Fetch + Consume ${figures(both)} (Fetch ${figures(fetched)}; Consume ${figures(consumed)})`);
    expect(both.rate).toBeLessThanOrEqual(1.1 * QUOTA);
    expect(fetched.throttles).toBeGreaterThan(0);
    expect(consumed.throttles).toBeGreaterThan(0);
  }, 60_000);

  it("keeps quotas across a restart from a metadata snapshot", async () => {
    for (let i = 1; i <= 6; i++) await admin.alterClientQuotas([{ entity: { user: `u${i}` }, set: { consumer_byte_rate: i * 1000 } }]);
    await admin.alterClientQuotas([{ entity: { user: "u6" }, remove: ["consumer_byte_rate"] }]);
    const before = await admin.describeClientQuotas({ user: "any" });
    await admin.close();
    c.close();
    await broker.close();
    broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { snapshotIntervalRecords: 4 } });
    c = clients(broker.address);
    admin = new Admin({ bootstrap: broker.address });
    const after = await admin.describeClientQuotas({ user: "any" });
    expect(after).toEqual(before);
    expect(after.map((q) => q.entity.user)).toEqual(["u1", "u2", "u3", "u4", "u5", null]);
  });
});
