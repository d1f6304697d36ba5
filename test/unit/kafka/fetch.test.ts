/**
 * Golden bytes of Fetch (key 1) v4-17 and OffsetForLeaderEpoch (key 23) v2-4, written from
 * Kafka's message definitions (FetchRequest.json, FetchResponse.json,
 * OffsetForLeaderEpochRequest.json, OffsetForLeaderEpochResponse.json): each version's layout is
 * spelled out below field by field, as the protocol guide's grammar lists it, with its own small
 * byte builder (not the schema codec), and the schema-derived encoder and decoder must produce
 * and read exactly those bytes. Two versions are also written out in hex by hand.
 */
import { describe, expect, it } from "vitest";
import { FetchRequest, FetchResponse } from "../../../src/kafka/apis/fetch.ts";
import { OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse } from "../../../src/kafka/apis/offset-for-leader-epoch.ts";
import { type Fields, type Input, type Message, type ValueOf, decode, encode } from "../../../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../../../src/kafka/wire.ts";

/** Bytes in the order written, each primitive as the protocol guide defines it. */
class Bytes {
  private readonly parts: Buffer[] = [];
  constructor(private readonly flexible: boolean) {}
  private push(n: number, f: (b: Buffer) => void): this {
    const b = Buffer.alloc(n);
    f(b);
    this.parts.push(b);
    return this;
  }
  i8(v: number) {
    return this.push(1, (b) => b.writeInt8(v));
  }
  i16(v: number) {
    return this.push(2, (b) => b.writeInt16BE(v));
  }
  i32(v: number) {
    return this.push(4, (b) => b.writeInt32BE(v));
  }
  i64(v: bigint) {
    return this.push(8, (b) => b.writeBigInt64BE(v));
  }
  uvar(v: number): this {
    const out: number[] = [];
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    this.parts.push(Buffer.from(out));
    return this;
  }
  raw(b: Buffer) {
    this.parts.push(b);
    return this;
  }
  /** STRING / COMPACT_STRING, null allowed where the field is nullable. */
  str(s: string | null) {
    if (s === null) return this.flexible ? this.uvar(0) : this.i16(-1);
    const b = Buffer.from(s);
    return (this.flexible ? this.uvar(b.length + 1) : this.i16(b.length)).raw(b);
  }
  /** ARRAY / COMPACT_ARRAY count (-1 = null). */
  count(n: number) {
    return this.flexible ? this.uvar(n + 1) : this.i32(n);
  }
  /** BYTES / COMPACT_BYTES (RECORDS). */
  bytes(b: Buffer | null) {
    if (b === null) return this.flexible ? this.uvar(0) : this.i32(-1);
    return (this.flexible ? this.uvar(b.length + 1) : this.i32(b.length)).raw(b);
  }
  /** A tag section (flexible only): tags in order, each with its encoded bytes. */
  tags(fields: [number, Buffer][] = []) {
    if (!this.flexible) return this;
    this.uvar(fields.length);
    for (const [tag, b] of fields) this.uvar(tag).uvar(b.length).raw(b);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const enc = <F extends Fields>(m: Message<F>, v: Input<ValueOf<F>>, version: number): Buffer => {
  const w = new KafkaWriter();
  encode(m, v, version, w);
  return w.toBuffer();
};
const dec = <F extends Fields>(m: Message<F>, b: Buffer, version: number): ValueOf<F> => {
  const r = new KafkaReader(b);
  const out = decode(m, r, version);
  expect(r.remaining).toBe(0);
  return out;
};

const TOPIC_ID = Buffer.from("0123456789abcdef0123456789abcdef", "hex");
const DIR_ID = Buffer.from("fedcba9876543210fedcba9876543210", "hex");
const BATCH = Buffer.from("000000000000000700000010ffffffff02aabbccdd", "hex");

/** One request value with every field set away from its default, so each version shows what it carries. */
const request = {
  clusterId: "cluster-a",
  replicaId: -1,
  replicaState: { replicaId: -1, replicaEpoch: -1n },
  maxWaitMs: 500,
  minBytes: 1,
  maxBytes: 52428800,
  isolationLevel: 1,
  sessionId: 0,
  sessionEpoch: -1,
  topics: [
    {
      topic: "orders",
      topicId: TOPIC_ID,
      partitions: [
        {
          partition: 3,
          currentLeaderEpoch: 7,
          fetchOffset: 42n,
          lastFetchedEpoch: 6,
          logStartOffset: -1n,
          partitionMaxBytes: 1048576,
          replicaDirectoryId: DIR_ID,
        },
      ],
    },
  ],
  forgottenTopicsData: [{ topic: "old", topicId: TOPIC_ID, partitions: [1, 2] }],
  rackId: "rack-1",
};

/** FetchRequest vN as the protocol guide lists it. */
function fetchRequestBytes(v: number): Buffer {
  const flex = v >= 12;
  const b = new Bytes(flex);
  if (v <= 14) b.i32(-1); // replica_id
  b.i32(500).i32(1).i32(52428800).i8(1); // max_wait_ms min_bytes max_bytes isolation_level
  if (v >= 7) b.i32(0).i32(-1); // session_id session_epoch
  b.count(1);
  if (v >= 13) b.raw(TOPIC_ID);
  else b.str("orders");
  b.count(1).i32(3);
  if (v >= 9) b.i32(7); // current_leader_epoch
  b.i64(42n);
  if (v >= 12) b.i32(6); // last_fetched_epoch
  if (v >= 5) b.i64(-1n); // log_start_offset
  b.i32(1048576);
  b.tags(v >= 17 ? [[0, DIR_ID]] : []); // partition: replica_directory_id (tag 0, v17+)
  b.tags(); // topic
  if (v >= 7) {
    b.count(1);
    if (v >= 13) b.raw(TOPIC_ID);
    else b.str("old");
    b.count(2).i32(1).i32(2).tags();
  }
  if (v >= 11) b.str("rack-1");
  // Request tags: cluster_id (tag 0, v12+); replica_state (tag 1, v15+) is at its default here.
  b.tags(flex ? [[0, new Bytes(true).str("cluster-a").done()]] : []);
  return b.done();
}

/** A response value with one healthy partition and one answered NOT_LEADER_OR_FOLLOWER with its leader. */
const response = {
  throttleTimeMs: 5,
  errorCode: 0,
  sessionId: 0,
  responses: [
    {
      topic: "orders",
      topicId: TOPIC_ID,
      partitions: [
        {
          partitionIndex: 3,
          errorCode: 0,
          highWatermark: 100n,
          lastStableOffset: 100n,
          logStartOffset: 0n,
          abortedTransactions: null,
          preferredReadReplica: -1,
          records: [BATCH],
        },
        {
          partitionIndex: 4,
          errorCode: 6,
          highWatermark: -1n,
          lastStableOffset: -1n,
          logStartOffset: -1n,
          currentLeader: { leaderId: 2, leaderEpoch: 9 },
          records: [],
        },
      ],
    },
  ],
  nodeEndpoints: [{ nodeId: 2, host: "h2", port: 9092, rack: null }],
};

/** FetchResponse vN as the protocol guide lists it. */
function fetchResponseBytes(v: number): Buffer {
  const flex = v >= 12;
  const b = new Bytes(flex);
  b.i32(5); // throttle_time_ms
  if (v >= 7) b.i16(0).i32(0); // error_code session_id
  b.count(1);
  if (v >= 13) b.raw(TOPIC_ID);
  else b.str("orders");
  b.count(2);
  // Partition 3: data.
  b.i32(3).i16(0).i64(100n).i64(100n);
  if (v >= 5) b.i64(0n);
  b.count(-1); // aborted_transactions: null
  if (v >= 11) b.i32(-1);
  b.bytes(BATCH).tags();
  // Partition 4: NOT_LEADER_OR_FOLLOWER, current_leader (tag 1, v12+).
  b.i32(4).i16(6).i64(-1n).i64(-1n);
  if (v >= 5) b.i64(-1n);
  b.count(-1);
  if (v >= 11) b.i32(-1);
  b.bytes(Buffer.alloc(0));
  b.tags(flex ? [[1, new Bytes(true).i32(2).i32(9).tags().done()]] : []);
  b.tags(); // topic
  // node_endpoints (tag 0, v16+): [{node_id, host, port, rack}].
  const endpoints = new Bytes(true).count(1).i32(2).str("h2").i32(9092).str(null).tags().done();
  b.tags(v >= 16 ? [[0, endpoints]] : []);
  return b.done();
}

describe("Fetch golden bytes", () => {
  it("writes FetchRequest v4 as written out by hand", () => {
    const hex =
      "ffffffff" + // replica_id -1
      "000001f4" + // max_wait_ms 500
      "00000001" + // min_bytes 1
      "03200000" + // max_bytes 52428800
      "01" + // isolation_level READ_COMMITTED
      "00000001" + // [topics] 1
      "0006" +
      Buffer.from("orders").toString("hex") +
      "00000001" + // [partitions] 1
      "00000003" + // partition 3
      "000000000000002a" + // fetch_offset 42
      "00100000"; // partition_max_bytes 1 MiB
    expect(enc(FetchRequest, request, 4).toString("hex")).toBe(hex);
  });

  it("writes FetchResponse v12 (flexible, tagged current leader) as written out by hand", () => {
    const hex =
      "00000005" + // throttle_time_ms
      "0000" + // error_code
      "00000000" + // session_id
      "02" + // [responses] 1 (compact)
      "07" +
      Buffer.from("orders").toString("hex") +
      "03" + // [partitions] 2
      "00000003" +
      "0000" +
      "0000000000000064" + // high_watermark 100
      "0000000000000064" + // last_stable_offset
      "0000000000000000" + // log_start_offset
      "00" + // aborted_transactions null
      "ffffffff" + // preferred_read_replica
      (BATCH.length + 1).toString(16).padStart(2, "0") +
      BATCH.toString("hex") +
      "00" + // no tags
      "00000004" +
      "0006" +
      "ffffffffffffffff".repeat(3) +
      "00" +
      "ffffffff" +
      "01" + // records: empty
      "01" + // one tag
      "01" + // tag 1: current_leader
      "09" + // 9 bytes
      "00000002" +
      "00000009" +
      "00" +
      "00" + // topic tags
      "00"; // response tags (node_endpoints from v16)
    expect(enc(FetchResponse, response, 12).toString("hex")).toBe(hex);
  });

  for (let v = 4; v <= 17; v++) {
    it(`FetchRequest v${v}: the schema writes and reads the definition's layout`, () => {
      const golden = fetchRequestBytes(v);
      expect(enc(FetchRequest, request, v).toString("hex")).toBe(golden.toString("hex"));
      const back = dec(FetchRequest, golden, v);
      expect([back.maxWaitMs, back.minBytes, back.maxBytes, back.isolationLevel]).toEqual([500, 1, 52428800, 1]);
      expect([back.sessionId, back.sessionEpoch]).toEqual([0, -1]);
      const t = back.topics[0]!;
      expect(v >= 13 ? t.topicId.toString("hex") : t.topic).toBe(v >= 13 ? TOPIC_ID.toString("hex") : "orders");
      const p = t.partitions[0]!;
      expect([p.partition, p.fetchOffset, p.partitionMaxBytes]).toEqual([3, 42n, 1048576]);
      expect(p.currentLeaderEpoch).toBe(v >= 9 ? 7 : -1);
      expect(p.lastFetchedEpoch).toBe(v >= 12 ? 6 : -1);
      expect(p.replicaDirectoryId.toString("hex")).toBe(v >= 17 ? DIR_ID.toString("hex") : "00".repeat(16));
      expect(back.forgottenTopicsData.length).toBe(v >= 7 ? 1 : 0);
      expect(back.rackId).toBe(v >= 11 ? "rack-1" : "");
      expect(back.clusterId).toBe(v >= 12 ? "cluster-a" : null);
      expect(back.replicaId).toBe(-1);
    });

    it(`FetchResponse v${v}: the schema writes and reads the definition's layout`, () => {
      const golden = fetchResponseBytes(v);
      expect(enc(FetchResponse, response, v).toString("hex")).toBe(golden.toString("hex"));
      const back = dec(FetchResponse, golden, v);
      const [a, b] = back.responses[0]!.partitions;
      expect(a!.records).toEqual(BATCH);
      expect(a!.abortedTransactions).toBeNull();
      expect(b!.errorCode).toBe(6);
      expect(b!.currentLeader).toEqual(v >= 12 ? { leaderId: 2, leaderEpoch: 9 } : { leaderId: -1, leaderEpoch: -1 });
      expect(back.nodeEndpoints).toEqual(v >= 16 ? [{ nodeId: 2, host: "h2", port: 9092, rack: null }] : []);
    });
  }

  it("reads v15's replica state from its tag and v12's unknown tags are skipped", () => {
    const b = new Bytes(true);
    b.i32(0).i32(0).i32(1).i8(0).i32(0).i32(-1).count(0).count(0).str("");
    const state = new Bytes(true).i32(4).i64(12n).tags().done();
    b.tags([
      [1, state],
      [9, Buffer.from([1, 2, 3])],
    ]);
    const back = dec(FetchRequest, b.done(), 15);
    expect(back.replicaState).toEqual({ replicaId: 4, replicaEpoch: 12n });
  });
});

describe("OffsetForLeaderEpoch golden bytes", () => {
  const req = { replicaId: -1, topics: [{ topic: "t", partitions: [{ partition: 1, currentLeaderEpoch: 5, leaderEpoch: 4 }] }] };
  const res = { throttleTimeMs: 0, topics: [{ topic: "t", partitions: [{ errorCode: 0, partition: 1, leaderEpoch: 4, endOffset: 77n }] }] };
  const hexes: Record<number, [string, string]> = {
    // v2: no replica_id; [topics] STRING, [partitions] partition current_leader_epoch leader_epoch.
    2: [
      "00000001" + "0001" + "74" + "00000001" + "00000001" + "00000005" + "00000004",
      "00000000" + "00000001" + "0001" + "74" + "00000001" + "0000" + "00000001" + "00000004" + "000000000000004d",
    ],
    // v3: replica_id first.
    3: [
      "ffffffff" + "00000001" + "0001" + "74" + "00000001" + "00000001" + "00000005" + "00000004",
      "00000000" + "00000001" + "0001" + "74" + "00000001" + "0000" + "00000001" + "00000004" + "000000000000004d",
    ],
    // v4: flexible (compact forms, tag sections).
    4: [
      "ffffffff" + "02" + "02" + "74" + "02" + "00000001" + "00000005" + "00000004" + "00" + "00" + "00",
      "00000000" + "02" + "02" + "74" + "02" + "0000" + "00000001" + "00000004" + "000000000000004d" + "00" + "00" + "00",
    ],
  };
  for (const v of [2, 3, 4]) {
    it(`v${v} request and response`, () => {
      const [q, s] = hexes[v]!;
      expect(enc(OffsetForLeaderEpochRequest, req, v).toString("hex")).toBe(q);
      expect(enc(OffsetForLeaderEpochResponse, res, v).toString("hex")).toBe(s);
      const back = dec(OffsetForLeaderEpochRequest, Buffer.from(q, "hex"), v);
      expect(back.replicaId).toBe(v >= 3 ? -1 : -2);
      expect(back.topics[0]!.partitions[0]).toEqual({ partition: 1, currentLeaderEpoch: 5, leaderEpoch: 4 });
      expect(dec(OffsetForLeaderEpochResponse, Buffer.from(s, "hex"), v).topics[0]!.partitions[0]!.endOffset).toBe(77n);
    });
  }
});
