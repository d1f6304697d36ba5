import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { OffsetSpec, RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import {
  AutoOffsetReset,
  ConsumeRequestSchema,
  DeleteGroupsRequestSchema,
  DescribeGroupsRequestSchema,
  FetchOffsetsRequestSchema,
  GroupService,
  HeartbeatRequestSchema,
  ListGroupsRequestSchema,
  ResetOffsetsRequestSchema,
  type ConsumeResponse,
  type DeleteGroupsResponse,
  type DescribeGroupsResponse,
  type FetchOffsetsResponse,
  type HeartbeatResponse,
  type ListGroupsResponse,
  type ResetOffsetsResponse,
} from "../../src/gen/rill/v1/group_service_pb.ts";
import { Acks, ProduceRequestSchema } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { call, clients, errorName, rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let broker: Broker;
let c: ReturnType<typeof clients>;
let groups: grpc.Client;

/** One Consume stream as a member: collects what the broker sends. */
class Member {
  readonly stream: grpc.ClientDuplexStream<unknown, ConsumeResponse>;
  readonly owned = new Set<string>();
  readonly values: Array<{ partition: number; offset: number; value: string }> = [];
  memberId = "";
  private waiters: Array<() => void> = [];

  constructor(group: string, topic: string, maxOutstanding = 0) {
    this.stream = (groups as unknown as { consume(): grpc.ClientDuplexStream<unknown, ConsumeResponse> }).consume();
    this.stream.on("data", (m: ConsumeResponse) => {
      if (m.kind.case === "assignment") {
        this.memberId = m.kind.value.memberId;
        for (const tp of m.kind.value.revoked) this.owned.delete(`${tp.partition}`);
        for (const tp of m.kind.value.assigned) this.owned.add(`${tp.partition}`);
      } else if (m.kind.case === "records") {
        expect(this.owned.has(`${m.kind.value.partition}`), "records only of owned partitions").toBe(true);
        for (const r of m.kind.value.records)
          this.values.push({ partition: r.partition, offset: Number(r.offset), value: Buffer.from(r.value!).toString() });
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.stream.on("error", () => {});
    this.stream.write(
      create(ConsumeRequestSchema, {
        kind: {
          case: "subscribe",
          value: {
            groupId: group,
            topics: [topic],
            autoOffsetReset: AutoOffsetReset.EARLIEST,
            format: RecordFormat.RECORDS,
            maxOutstandingRecords: maxOutstanding,
          },
        },
      }),
    );
  }

  async until(pred: () => boolean, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error("condition not reached in time");
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  commit(topic: string, partition: number, offset: number): void {
    this.stream.write(
      create(ConsumeRequestSchema, { kind: { case: "commit", value: { offsets: [{ topic, partition, offset: BigInt(offset) }] } } }),
    );
  }

  close(): void {
    this.stream.end();
  }
}

async function produce(topic: string, partition: number, values: string[]): Promise<void> {
  await call(
    c.produce,
    "produce",
    create(ProduceRequestSchema, { topic, partition, acks: Acks.ALL, records: values.map((v) => ({ value: Buffer.from(v) })) }),
  );
}

beforeAll(async () => {
  dir = tmpDir();
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  c = clients(broker.address);
  groups = new (clientConstructor(GroupService))(broker.address, grpc.credentials.createInsecure());
  await call(
    c.admin,
    "createTopics",
    create(CreateTopicsRequestSchema, {
      topics: [
        { name: "orders", partitions: 4 },
        { name: "solo", partitions: 2 },
      ],
    }),
  );
  for (let p = 0; p < 4; p++)
    await produce(
      "orders",
      p,
      Array.from({ length: 5 }, (_, i) => `p${p}-${i}`),
    );
});

afterAll(async () => {
  groups.close();
  c.close();
  await broker.close();
  rmTmp(dir);
});

describe("consumer groups over Consume", () => {
  it("two members split the partitions; when one leaves the other takes over from the committed offsets", async () => {
    const a = new Member("g1", "orders");
    await a.until(() => a.values.length === 20);
    const b = new Member("g1", "orders");
    await b.until(() => b.owned.size === 2);
    await a.until(() => a.owned.size === 2);
    expect([...a.owned].some((p) => b.owned.has(p))).toBe(false);
    // b commits everything it owns; then more records arrive
    for (const p of b.owned) b.commit("orders", Number(p), 5);
    for (let p = 0; p < 4; p++) await produce("orders", p, [`p${p}-late`]);
    await b.until(() => b.values.filter((v) => v.value.endsWith("late")).length === 2);
    const bOwned = [...b.owned].map(Number);
    b.close();
    // a gets b's partitions from b's committed offset 5: only the late records, no earlier ones again
    await a.until(() => a.owned.size === 4);
    await a.until(() => a.values.filter((v) => bOwned.includes(v.partition) && v.value.endsWith("late")).length === 2);
    const fromB = a.values.filter((v) => bOwned.includes(v.partition) && v.offset >= 5);
    expect(fromB.map((v) => v.offset)).toEqual([5, 5]);
    a.close();
  });

  it("records processed but not committed are delivered again to the next owner", async () => {
    const a = new Member("g2", "solo");
    await produce("solo", 0, ["s0", "s1", "s2"]);
    await a.until(() => a.values.length === 3);
    a.commit("solo", 0, 1); // only s0 is processed
    await new Promise((r) => setTimeout(r, 200));
    a.close();
    await new Promise((r) => setTimeout(r, 200));
    const b = new Member("g2", "solo");
    await b.until(() => b.values.length === 2);
    expect(b.values.map((v) => v.value)).toEqual(["s1", "s2"]);
    b.close();
  });

  it("flow control: at most max_outstanding_records beyond the last commit", async () => {
    await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "flow", partitions: 1 }] }));
    for (let i = 0; i < 50; i++) await produce("flow", 0, [`f${i}`]); // 50 one-record batches
    const m = new Member("g3", "flow", 10);
    await m.until(() => m.values.length >= 10);
    await new Promise((r) => setTimeout(r, 300));
    expect(m.values.length).toBe(10); // batches are never split: here each holds one record
    m.commit("flow", 0, 50);
    await m.until(() => m.values.length === 50);
    m.close();
  });
});

describe("Consume in BATCHES format and byte credit", () => {
  /** Opens a raw Consume stream and collects its records messages. */
  function open(group: string, topic: string, sub: Record<string, unknown>) {
    const stream = (groups as unknown as { consume(): grpc.ClientDuplexStream<unknown, ConsumeResponse> }).consume();
    const records: Array<Extract<ConsumeResponse["kind"], { case: "records" }>["value"]> = [];
    stream.on("data", (m: ConsumeResponse) => {
      if (m.kind.case === "records") records.push(m.kind.value);
    });
    stream.on("error", () => {});
    stream.write(
      create(ConsumeRequestSchema, {
        kind: { case: "subscribe", value: { groupId: group, topics: [topic], autoOffsetReset: AutoOffsetReset.EARLIEST, ...sub } },
      }),
    );
    return { stream, records };
  }
  const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it("BATCHES: records start at first_offset even when the batch starts before it", async () => {
    await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "raw", partitions: 1 }] }));
    await produce("raw", 0, ["r0", "r1", "r2", "r3", "r4"]); // one batch
    await call(groups, "resetOffsets", create(ResetOffsetsRequestSchema, { groupId: "g-raw", partitions: [{ topic: "raw" }], offset: 2n }));
    const m = open("g-raw", "raw", { format: RecordFormat.BATCHES });
    for (let i = 0; i < 50 && m.records.length === 0; i++) await wait(50);
    const first = m.records[0]!;
    expect([first.firstOffset, first.nextOffset]).toEqual([2n, 5n]);
    const batch = Buffer.from(first.recordBatches);
    expect(batch.readBigInt64BE(0)).toBe(0n); // the batch itself starts at 0
    m.stream.end();
  });

  it("max_outstanding_bytes bounds what is sent beyond the last commit; flow.bytes grants more", async () => {
    await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "bytes", partitions: 1 }] }));
    for (let i = 0; i < 20; i++) await produce("bytes", 0, [`b${i}`.padEnd(500, ".")]); // 20 batches of ~570 bytes
    const m = open("g-bytes", "bytes", { format: RecordFormat.RECORDS, maxOutstandingBytes: 1000n });
    await wait(500);
    const firstCount = m.records.flatMap((r) => r.records).length;
    expect(firstCount).toBeGreaterThanOrEqual(1);
    expect(firstCount).toBeLessThanOrEqual(2); // ~1000 bytes: one or two 570-byte batches
    m.stream.write(create(ConsumeRequestSchema, { kind: { case: "flow", value: { bytes: 3000n } } }));
    await wait(500);
    const afterFlow = m.records.flatMap((r) => r.records).length;
    expect(afterFlow).toBeGreaterThan(firstCount);
    expect(afterFlow).toBeLessThanOrEqual(firstCount + 6);
    m.stream.end();
  });
});

describe("group admin RPCs", () => {
  it("Heartbeat, FetchOffsets, DescribeGroups with lag, ListGroups, ResetOffsets, DeleteGroups", async () => {
    const hb: HeartbeatResponse = await call(
      groups,
      "heartbeat",
      create(HeartbeatRequestSchema, { groupId: "thin", memberEpoch: 0, topics: ["orders"] }),
    );
    expect(hb.memberId.length).toBeGreaterThan(0);
    expect(hb.assignment.flatMap((t) => t.partitions).sort()).toEqual([0, 1, 2, 3]);
    const desc: DescribeGroupsResponse = await call(groups, "describeGroups", create(DescribeGroupsRequestSchema, { groupIds: ["thin"] }));
    expect(desc.groups[0]!.members.map((m) => m.memberId)).toEqual([hb.memberId]);
    // resetting while the member is active is refused and changes nothing
    let busy: grpc.ServiceError | undefined;
    try {
      await call(
        groups,
        "resetOffsets",
        create(ResetOffsetsRequestSchema, { groupId: "thin", partitions: [{ topic: "orders" }], spec: OffsetSpec.EARLIEST }),
      );
    } catch (e) {
      busy = e as grpc.ServiceError;
    }
    expect(errorName(busy)).toBe("NON_EMPTY_GROUP");
    const untouched: FetchOffsetsResponse = await call(groups, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: "thin" }));
    expect(untouched.offsets).toEqual([]);
    await call(groups, "heartbeat", create(HeartbeatRequestSchema, { groupId: "thin", memberId: hb.memberId, memberEpoch: -1 }));
    const reset: ResetOffsetsResponse = await call(
      groups,
      "resetOffsets",
      create(ResetOffsetsRequestSchema, { groupId: "thin", partitions: [{ topic: "orders", partitions: [0] }], offset: 2n }),
    );
    expect(reset.offsets.map((o) => [o.partition, o.offset, o.error])).toEqual([[0, 2n, undefined]]);
    const fetched: FetchOffsetsResponse = await call(groups, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: "thin" }));
    expect(fetched.offsets.find((o) => o.partition === 0)!.offset).toBe(2n);
    const d2: DescribeGroupsResponse = await call(groups, "describeGroups", create(DescribeGroupsRequestSchema, { groupIds: ["thin"] }));
    const p0 = d2.groups[0]!.offsets.find((o) => o.partition === 0)!;
    expect([p0.committedOffset, p0.logEndOffset, p0.lag]).toEqual([2n, 6n, 4n]); // 5 + 1 late records
    const list: ListGroupsResponse = await call(groups, "listGroups", create(ListGroupsRequestSchema, {}));
    expect(list.groups.map((g) => g.groupId)).toContain("thin");
    const del: DeleteGroupsResponse = await call(
      groups,
      "deleteGroups",
      create(DeleteGroupsRequestSchema, { groupIds: ["thin", "never-existed"] }),
    );
    expect(del.results[0]!.error).toBeUndefined();
    expect(del.results[1]!.error!.name).toBe("GROUP_ID_NOT_FOUND");
    const gone: DescribeGroupsResponse = await call(groups, "describeGroups", create(DescribeGroupsRequestSchema, { groupIds: ["thin"] }));
    expect(gone.groups[0]!.error!.name).toBe("GROUP_ID_NOT_FOUND");
  });

  it("rejects invalid group ids with a status naming the field", async () => {
    for (const groupId of ["", "x".repeat(250)]) {
      let err: grpc.ServiceError | undefined;
      try {
        await call(groups, "heartbeat", create(HeartbeatRequestSchema, { groupId, memberEpoch: 0, topics: ["orders"] }));
      } catch (e) {
        err = e as grpc.ServiceError;
      }
      expect(errorName(err)).toBe("INVALID_GROUP_ID");
      expect(err!.details).toMatch(/^group_id:/);
    }
  });

  it("committed offsets survive a broker restart", async () => {
    const d2 = tmpDir();
    try {
      let b = await Broker.start({ dataDir: d2, listen: "127.0.0.1:0" });
      const cl = clients(b.address);
      let g = new (clientConstructor(GroupService))(b.address, grpc.credentials.createInsecure());
      await call(cl.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "t", partitions: 1 }] }));
      await call(g, "resetOffsets", create(ResetOffsetsRequestSchema, { groupId: "keep", partitions: [{ topic: "t" }], offset: 0n }));
      g.close();
      cl.close();
      await b.close();
      b = await Broker.start({ dataDir: d2, listen: "127.0.0.1:0" });
      g = new (clientConstructor(GroupService))(b.address, grpc.credentials.createInsecure());
      const f: FetchOffsetsResponse = await call(g, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: "keep" }));
      expect(f.offsets.map((o) => [o.topic, o.partition, o.offset])).toEqual([["t", 0, 0n]]);
      g.close();
      await b.close();
    } finally {
      rmTmp(d2);
    }
  });
});
