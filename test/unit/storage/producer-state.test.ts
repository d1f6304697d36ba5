import { describe, expect, it } from "vitest";
import { AssertionError } from "../../../src/base/assert.ts";
import { crc32c } from "../../../src/base/crc32c.ts";
import { RillError } from "../../../src/base/errors.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { incrementSequence, SEQUENCE_MAX } from "../../../src/protocol/sequence.ts";
import {
  ProducerStateManager,
  producerBatchOf,
  type ProducerBatch,
  type ProducerBatchHeader,
  type SequenceCheck,
  type SequencedBatch,
} from "../../../src/storage/producer-state.ts";
import { encodeBatch, readBatchHeader } from "../../../src/protocol/record-batch.ts";

const EXPIRATION_MS = 60_000;
const OPTS = { producerIdExpirationMs: EXPIRATION_MS };
const TP = "orders-2";
const T0 = 1_700_000_000_000;

/** The batch of `count` records of producer `pid` starting at sequence `seq` and offset `offset`. */
function pb(pid: number, epoch: number, seq: number, count: number, offset = 0, maxTimestamp = T0): ProducerBatch {
  return {
    producerId: pid,
    producerEpoch: epoch,
    baseSequence: seq,
    lastSequence: incrementSequence(seq, count - 1),
    baseOffset: offset,
    lastOffset: offset + count - 1,
    maxTimestamp,
  };
}

/** The same batch without offsets, as a client sends it. */
function sb(pid: number, epoch: number, seq: number, count: number): SequencedBatch {
  const { baseOffset: _o, lastOffset: _l, ...rest } = pb(pid, epoch, seq, count);
  return rest;
}

/** Asserts that `fn` throws a RillError named `name` whose message matches `msg`. */
function expectRill(fn: () => unknown, name: string, msg?: RegExp): RillError {
  let thrown: unknown;
  try {
    fn();
  } catch (e: unknown) {
    thrown = e;
  }
  expect(thrown, "expected a RillError").toBeInstanceOf(RillError);
  const e = thrown as RillError;
  expect(e.kind.name, e.message).toBe(name);
  if (msg) expect(e.message).toMatch(msg);
  return e;
}

/** Asserts the rejection and that the state is exactly as before it. */
function expectRejectedUnchanged(st: ProducerStateManager, fn: () => unknown, name: string, msg?: RegExp): void {
  const before = JSON.stringify(st.toJSON());
  expectRill(fn, name, msg);
  expect(JSON.stringify(st.toJSON())).toBe(before);
}

/**
 * A partition as the broker drives it: check, then assign offsets, then record. `log` holds the
 * headers of what was appended, `events` what happened (for replays).
 */
type Event = { kind: "record"; header: ProducerBatchHeader; nowMs: number } | { kind: "expire"; nowMs: number };

class LivePartition {
  readonly state: ProducerStateManager;
  logEndOffset = 0;
  readonly events: Event[] = [];

  constructor(opts: { producerIdExpirationMs: number; batchesPerProducer?: number } = OPTS) {
    this.state = new ProducerStateManager(opts);
  }

  /** Produces one batch: the check's answer, with the offsets assigned when appended. */
  produce(b: SequencedBatch, count: number, nowMs: number): SequenceCheck & { offset?: number } {
    const r = this.state.check(b, TP);
    if (r.kind === "duplicate") return r;
    const header: ProducerBatchHeader = {
      baseOffset: this.logEndOffset,
      lastOffsetDelta: count - 1,
      maxTimestamp: b.maxTimestamp,
      producerId: b.producerId,
      producerEpoch: b.producerEpoch,
      baseSequence: b.baseSequence,
      isControl: false,
      isTransactional: false,
    };
    this.state.replay(header, nowMs);
    this.events.push({ kind: "record", header, nowMs });
    const offset = this.logEndOffset;
    this.logEndOffset += count;
    return { ...r, offset };
  }

  expire(nowMs: number): number {
    this.events.push({ kind: "expire", nowMs });
    return this.state.removeExpired(nowMs);
  }
}

/** Applies `events` to `st`, as recovery (replay) and expiry would. */
function applyEvents(st: ProducerStateManager, events: readonly Event[]): ProducerStateManager {
  for (const e of events) {
    if (e.kind === "record") st.replay(e.header, e.nowMs);
    else st.removeExpired(e.nowMs);
  }
  return st;
}

describe("incrementSequence", () => {
  it("adds, wrapping from 2^31-1 to 0 as Kafka", () => {
    expect(incrementSequence(0, 4)).toBe(4);
    expect(incrementSequence(SEQUENCE_MAX, 1)).toBe(0);
    expect(incrementSequence(SEQUENCE_MAX - 1, 3)).toBe(1);
    expect(incrementSequence(SEQUENCE_MAX - 4, 4)).toBe(SEQUENCE_MAX);
    expect(incrementSequence(SEQUENCE_MAX, 0)).toBe(SEQUENCE_MAX);
  });
});

describe("ProducerStateManager.check", () => {
  it("answers none for a batch without a producer id, and record ignores it", () => {
    const st = new ProducerStateManager(OPTS);
    expect(st.check({ ...sb(-1, -1, -1, 1), lastSequence: -1 })).toEqual({ kind: "none" });
    st.record({ ...pb(-1, -1, -1, 1), lastSequence: -1 }, T0);
    expect(st.producerCount).toBe(0);
  });

  it("returns the original offsets for a retry of any of the last 5 batches", () => {
    const p = new LivePartition();
    const offsets: number[] = [];
    for (let i = 0; i < 7; i++) {
      p.logEndOffset += 3; // other producers' records in between
      const r = p.produce(sb(1000, 0, i * 2, 2), 2, T0 + i);
      expect(r.kind).toBe("append");
      offsets.push(r.offset!);
    }
    const end = p.logEndOffset;
    for (let i = 2; i < 7; i++) {
      expect(p.state.check(sb(1000, 0, i * 2, 2), TP)).toEqual({ kind: "duplicate", baseOffset: offsets[i], lastOffset: offsets[i]! + 1 });
    }
    expect(p.logEndOffset).toBe(end);
    // the 6th batch back is out of the window: Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER
    expectRejectedUnchanged(
      p.state,
      () => p.state.check(sb(1000, 0, 2, 2), TP),
      "OUT_OF_ORDER_SEQUENCE_NUMBER",
      /base_sequence: 2 is not the next sequence 14 for producer 1000 epoch 0 on orders-2/,
    );
    // a partial overlap with a remembered batch is no duplicate
    expectRejectedUnchanged(p.state, () => p.state.check(sb(1000, 0, 12, 1), TP), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  });

  it("keeps batchesPerProducer batches when told", () => {
    const p = new LivePartition({ producerIdExpirationMs: EXPIRATION_MS, batchesPerProducer: 2 });
    for (let i = 0; i < 4; i++) p.produce(sb(1, 0, i, 1), 1, T0);
    expect(p.state.check(sb(1, 0, 3, 1))).toEqual({ kind: "duplicate", baseOffset: 3, lastOffset: 3 });
    expect(p.state.check(sb(1, 0, 2, 1))).toEqual({ kind: "duplicate", baseOffset: 2, lastOffset: 2 });
    expectRill(() => p.state.check(sb(1, 0, 1, 1)), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  });

  it("rejects a gap with OUT_OF_ORDER_SEQUENCE_NUMBER naming the field", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(1000, 3, 0, 5, 0), T0);
    expect(st.check(sb(1000, 3, 5, 1), TP)).toEqual({ kind: "append" });
    expectRejectedUnchanged(
      st,
      () => st.check(sb(1000, 3, 7, 1), TP),
      "OUT_OF_ORDER_SEQUENCE_NUMBER",
      /^base_sequence: 7 is not the next sequence 5 for producer 1000 epoch 3 on orders-2$/,
    );
    expectRejectedUnchanged(
      st,
      () => st.check(sb(1000, 3, 3, 1), TP),
      "OUT_OF_ORDER_SEQUENCE_NUMBER",
      /base_sequence: 3 is not the next sequence 5/,
    );
  });

  it("rejects a stale epoch with INVALID_PRODUCER_EPOCH (Kafka's answer to a produce), even for a retry", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(7, 0, 0, 2, 0), T0);
    st.record(pb(7, 1, 0, 2, 2), T0);
    expectRejectedUnchanged(
      st,
      () => st.check(sb(7, 0, 2, 1), TP),
      "INVALID_PRODUCER_EPOCH",
      /^producer_epoch: 0 is older than the current epoch 1 of producer 7 on orders-2$/,
    );
    // a retry of the old epoch's batch is fenced too, not a duplicate
    expectRejectedUnchanged(st, () => st.check(sb(7, 0, 0, 2), TP), "INVALID_PRODUCER_EPOCH");
  });

  it("resets the sequence on an epoch bump: the new epoch starts at 0 and forgets the old batches", () => {
    const st = new ProducerStateManager(OPTS);
    for (let i = 0; i < 5; i++) st.record(pb(7, 0, i * 10, 10, i * 10), T0);
    expect(st.check(sb(7, 1, 0, 4), TP)).toEqual({ kind: "append" });
    st.record(pb(7, 1, 0, 4, 50), T0);
    expect(st.producers()).toEqual([{ producerId: 7, producerEpoch: 1, lastSequence: 3, lastOffset: 53, lastTimestamp: T0 }]);
    expect((st.toJSON() as { producers: Array<{ batches: unknown[] }> }).producers[0]!.batches).toHaveLength(1);
    expect(st.check(sb(7, 1, 0, 4), TP)).toEqual({ kind: "duplicate", baseOffset: 50, lastOffset: 53 });
    expect(st.check(sb(7, 1, 4, 1), TP)).toEqual({ kind: "append" });
    expectRill(() => st.check(sb(7, 1, 50, 1), TP), "OUT_OF_ORDER_SEQUENCE_NUMBER", /not the next sequence 4/);
  });

  it("rejects an epoch from the future whose sequence is not 0", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(7, 2, 0, 3, 0), T0);
    expectRejectedUnchanged(
      st,
      () => st.check(sb(7, 5, 3, 1), TP),
      "OUT_OF_ORDER_SEQUENCE_NUMBER",
      /^base_sequence: 3 is not 0, the first sequence of a new epoch, for producer 7 epoch 5 on orders-2 \(current epoch 2\)$/,
    );
    expect(st.check(sb(7, 5, 0, 1), TP)).toEqual({ kind: "append" });
  });

  it("accepts an unknown producer at any sequence, as Kafka does since KIP-360, and continues from there", () => {
    const st = new ProducerStateManager(OPTS);
    expect(st.check(sb(42, 0, 0, 1), TP)).toEqual({ kind: "append" });
    expect(st.check(sb(42, 9, 1234, 5), TP)).toEqual({ kind: "append" });
    st.record(pb(42, 9, 1234, 5, 0), T0);
    expect(st.check(sb(42, 9, 1239, 1), TP)).toEqual({ kind: "append" });
    expectRill(() => st.check(sb(42, 9, 0, 1), TP), "OUT_OF_ORDER_SEQUENCE_NUMBER");
    // and the same for a producer forgotten by expiry
    st.removeExpired(T0 + EXPIRATION_MS);
    expect(st.check(sb(42, 9, 77, 1), TP)).toEqual({ kind: "append" });
  });

  it("rejects malformed idempotence fields with INVALID_RECORD", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(1, 0, 0, 1), T0);
    expectRejectedUnchanged(
      st,
      () => st.check(sb(1, -1, 1, 1), TP),
      "INVALID_RECORD",
      /^producer_epoch: -1 is not in \[0, 32767\] for producer 1 on orders-2$/,
    );
    expectRejectedUnchanged(
      st,
      () => st.check({ ...sb(1, 0, 1, 1), baseSequence: -1 }, TP),
      "INVALID_RECORD",
      /^base_sequence: -1 is not in/,
    );
    expectRejectedUnchanged(
      st,
      () => st.check({ ...sb(1, 0, 1, 1), lastSequence: SEQUENCE_MAX + 1 }, TP),
      "INVALID_RECORD",
      /^last_sequence: /,
    );
    expectRejectedUnchanged(st, () => st.check({ ...sb(1, 0, 1, 1), producerId: 2 ** 60 }, TP), "INVALID_RECORD", /^producer_id: /);
    // record skips what check would never let in, instead of crashing a rebuild
    st.record({ ...pb(1, 0, 1, 1, 5), baseSequence: -1 }, T0);
    expect(st.producers()[0]!.lastOffset).toBe(0);
  });

  it("wraps the sequence from 2^31-1 to 0", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(5, 0, SEQUENCE_MAX - 2, 3, 0), T0);
    expect(st.producers()[0]!.lastSequence).toBe(SEQUENCE_MAX);
    expectRill(() => st.check(sb(5, 0, 1, 1)), "OUT_OF_ORDER_SEQUENCE_NUMBER", /not the next sequence 0/);
    expect(st.check(sb(5, 0, 0, 2))).toEqual({ kind: "append" });
    st.record(pb(5, 0, 0, 2, 3), T0);
    // a batch that spans the wrap
    const p = new LivePartition();
    p.produce(sb(6, 0, SEQUENCE_MAX - 1, 1), 1, T0);
    const spanning = sb(6, 0, SEQUENCE_MAX, 4);
    expect(spanning.lastSequence).toBe(2);
    expect(p.produce(spanning, 4, T0)).toEqual({ kind: "append", offset: 1 });
    expect(p.state.check(spanning)).toEqual({ kind: "duplicate", baseOffset: 1, lastOffset: 4 });
    expect(p.state.check(sb(6, 0, 3, 1))).toEqual({ kind: "append" });
  });

  it("changes nothing on any rejected check", () => {
    const st = new ProducerStateManager(OPTS);
    for (let i = 0; i < 7; i++) st.record(pb(1, 4, i, 1, i), T0 + i);
    st.record(pb(2, 0, 0, 3, 10), T0);
    const before = JSON.stringify(st.toJSON());
    const rejects: Array<[() => unknown, string]> = [
      [() => st.check(sb(1, 4, 9, 1)), "OUT_OF_ORDER_SEQUENCE_NUMBER"], // gap
      [() => st.check(sb(1, 4, 0, 1)), "OUT_OF_ORDER_SEQUENCE_NUMBER"], // duplicate older than the window
      [() => st.check(sb(1, 3, 7, 1)), "INVALID_PRODUCER_EPOCH"], // stale epoch
      [() => st.check(sb(1, 5, 7, 1)), "OUT_OF_ORDER_SEQUENCE_NUMBER"], // future epoch, sequence != 0
      [() => st.check(sb(1, 4, -5, 1)), "INVALID_RECORD"],
      [() => st.checkAll([sb(1, 4, 7, 1), sb(2, 0, 3, 1), sb(1, 4, 9, 1)]), "OUT_OF_ORDER_SEQUENCE_NUMBER"],
      [() => st.checkAll([sb(3, 0, 0, 1), sb(3, 0, 0, 1)]), "OUT_OF_ORDER_SEQUENCE_NUMBER"],
    ];
    for (const [fn, name] of rejects) expectRill(fn, name);
    // successful checks change nothing either
    st.check(sb(1, 4, 7, 1));
    st.check(sb(1, 5, 0, 1));
    st.checkAll([sb(1, 5, 0, 1), sb(1, 5, 1, 1), sb(9, 0, 0, 1)]);
    expect(JSON.stringify(st.toJSON())).toBe(before);
  });
});

describe("ProducerStateManager.checkAll", () => {
  it("checks a request's batches as if each were recorded, without recording them", () => {
    const st = new ProducerStateManager(OPTS);
    expect(st.checkAll([sb(1, 0, 0, 5), sb(1, 0, 5, 5), sb(-1, -1, -1, 1), sb(2, 0, 0, 1)])).toEqual([
      { kind: "append" },
      { kind: "append" },
      { kind: "none" },
      { kind: "append" },
    ]);
    expect(st.producerCount).toBe(0);
    st.record(pb(1, 0, 0, 5, 0), T0);
    st.record(pb(1, 0, 5, 5, 5), T0);
    // the retried request: both duplicates, with their offsets
    expect(st.checkAll([sb(1, 0, 0, 5), sb(1, 0, 5, 5)])).toEqual([
      { kind: "duplicate", baseOffset: 0, lastOffset: 4 },
      { kind: "duplicate", baseOffset: 5, lastOffset: 9 },
    ]);
    // an epoch bump inside the request, then its next batch
    expect(st.checkAll([sb(1, 1, 0, 2), sb(1, 1, 2, 1)])).toEqual([{ kind: "append" }, { kind: "append" }]);
    // after a bump inside the request, the old epoch is stale
    expectRill(() => st.checkAll([sb(1, 1, 0, 2), sb(1, 0, 10, 1)], TP), "INVALID_PRODUCER_EPOCH", /on orders-2 batches\[1\]$/);
  });

  it("names the batch at fault and refuses a batch repeated inside one request", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(1, 0, 0, 5, 0), T0);
    expectRill(
      () => st.checkAll([sb(1, 0, 5, 1), sb(1, 0, 7, 1)], TP),
      "OUT_OF_ORDER_SEQUENCE_NUMBER",
      /next sequence 6 for producer 1 epoch 0 on orders-2 batches\[1\]/,
    );
    expectRill(
      () => st.checkAll([sb(1, 0, 5, 1), sb(1, 0, 5, 1)], TP),
      "OUT_OF_ORDER_SEQUENCE_NUMBER",
      /repeats batch 0 of the same request/,
    );
  });

  it("answers like check-then-record per batch on a seeded stream of requests", () => {
    const seed = seedFromEnv();
    console.log(`producer-state checkAll vs check+record: SEED=${seed}`);
    const rnd = new SeededRandom(seed);
    const live = new LivePartition();
    const next = new Map<number, { epoch: number; seq: number }>();
    const counts = { accepted: 0, rejected: 0, repeats: 0 };
    for (let req = 0; req < 300; req++) {
      const batches: Array<{ b: SequencedBatch; count: number }> = [];
      for (let j = 1 + rnd.int(4); j > 0; j--) {
        const pid = rnd.int(4);
        const c = next.get(pid) ?? { epoch: 0, seq: 0 };
        const count = 1 + rnd.int(3);
        const roll = rnd.int(20);
        const seq = roll === 0 ? c.seq + 1 : roll === 1 ? Math.max(0, c.seq - count) : c.seq;
        const epoch = roll === 2 ? c.epoch + 1 : c.epoch;
        const b = sb(pid, epoch, roll === 2 ? 0 : seq, count);
        next.set(pid, { epoch, seq: incrementSequence(b.baseSequence, count) });
        batches.push({ b, count });
      }
      const before = JSON.stringify(live.state.toJSON());
      let all: SequenceCheck[] | RillError;
      try {
        all = live.state.checkAll(batches.map((x) => x.b));
      } catch (e: unknown) {
        all = e as RillError;
      }
      expect(JSON.stringify(live.state.toJSON())).toBe(before);
      // the reference: check + record one by one on a copy
      const copy = ProducerStateManager.loadSnapshot(live.state.snapshot(live.logEndOffset), OPTS)!.state;
      let leo = live.logEndOffset;
      let ref: SequenceCheck[] | string = [];
      for (const { b, count } of batches) {
        try {
          const r = copy.check(b);
          ref.push(r);
          if (r.kind === "append") copy.record({ ...b, baseOffset: leo, lastOffset: leo + count - 1 }, T0);
          if (r.kind !== "duplicate") leo += count;
        } catch (e: unknown) {
          ref = (e as RillError).kind.name;
          break;
        }
      }
      if (all instanceof RillError) {
        expect(all.kind.name).toBe(typeof ref === "string" ? ref : "OUT_OF_ORDER_SEQUENCE_NUMBER");
        if (typeof ref !== "string") expect(all.message).toMatch(/repeats batch/);
        if (/repeats batch/.test(all.message)) counts.repeats++;
        counts.rejected++;
        for (const [pid, c] of next) next.set(pid, { ...c, seq: 0, epoch: c.epoch + 1 }); // the client starts over
        continue;
      }
      expect(typeof ref).not.toBe("string");
      expect(all).toEqual(ref);
      for (const { b, count } of batches) live.produce(b, count, T0);
      counts.accepted++;
    }
    console.log(`producer-state checkAll: ${JSON.stringify(counts)}`);
    expect(counts.accepted).toBeGreaterThan(50);
    expect(counts.rejected).toBeGreaterThan(10);
  });
});

describe("ProducerStateManager expiry and truncation", () => {
  it("drops producers idle for producerIdExpirationMs or more", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(1, 0, 0, 1, 0), T0);
    st.record(pb(2, 0, 0, 1, 1), T0 + 10);
    st.record(pb(1, 0, 1, 1, 2), T0 + 5);
    st.record(pb(2, 0, 1, 1, 3), T0 + 2); // an older clock reading never moves lastTimestamp back
    expect(st.producers().map((p) => p.lastTimestamp)).toEqual([T0 + 5, T0 + 10]);
    expect(st.removeExpired(T0 + 5 + EXPIRATION_MS - 1)).toBe(0);
    expect(st.removeExpired(T0 + 5 + EXPIRATION_MS)).toBe(1);
    expect(st.producers().map((p) => p.producerId)).toEqual([2]);
    expect(st.removeExpired(T0 + 10 + EXPIRATION_MS)).toBe(1);
    expect(st.producerCount).toBe(0);
  });

  it("truncateFrom forgets batches at or after the offset and producers left with none", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(1, 0, 0, 3, 0), T0); // 0..2
    st.record(pb(1, 0, 3, 2, 3), T0); // 3..4
    st.record(pb(2, 0, 0, 5, 5), T0); // 5..9
    st.record(pb(1, 0, 5, 3, 10), T0); // 10..12
    st.truncateFrom(13);
    expect(st.producers().map((p) => p.lastOffset)).toEqual([12, 9]);
    st.truncateFrom(10);
    expect(st.producers()).toEqual([
      { producerId: 1, producerEpoch: 0, lastSequence: 4, lastOffset: 4, lastTimestamp: T0 },
      { producerId: 2, producerEpoch: 0, lastSequence: 4, lastOffset: 9, lastTimestamp: T0 },
    ]);
    // the truncated batch is the producer's next one again
    expect(st.check(sb(1, 0, 5, 3))).toEqual({ kind: "append" });
    st.truncateFrom(5);
    expect(st.producers().map((p) => p.producerId)).toEqual([1]);
    st.truncateFrom(4); // a batch cut in the middle is gone too
    expect(st.producers()[0]!.lastOffset).toBe(2);
    expect(st.check(sb(1, 0, 3, 2))).toEqual({ kind: "append" });
    st.truncateFrom(0);
    expect(st.producerCount).toBe(0);
  });

  it("crashes on a batch recorded below the producer's last offset (a bug, not a condition)", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(1, 0, 0, 3, 10), T0);
    expect(() => st.record(pb(1, 0, 3, 1, 12), T0)).toThrow(AssertionError);
    expect(() => st.snapshot(12)).toThrow(AssertionError);
  });
});

describe("ProducerStateManager rebuild", () => {
  it("rebuilt from the log's batch headers equals the state built live", () => {
    const p = new LivePartition();
    const log: Buffer[] = [];
    const produce = (pid: number, epoch: number, seq: number, n: number): void => {
      const bytes = encodeBatch(
        Array.from({ length: n }, (_, i) => ({ value: `${pid}-${seq + i}`, timestampMs: T0 + i })),
        { producerId: pid, producerEpoch: epoch, baseSequence: seq, baseOffset: p.logEndOffset },
      );
      const h = readBatchHeader(bytes);
      const b = producerBatchOf(h);
      if (b === null) {
        p.logEndOffset += n;
      } else {
        const r = p.produce(b, n, T0);
        if (r.kind === "duplicate") return;
      }
      log.push(bytes);
    };
    for (let i = 0; i < 8; i++) produce(1, 0, i * 3, 3);
    produce(-1, -1, -1, 4);
    for (let i = 0; i < 3; i++) produce(2, 0, i, 1);
    produce(1, 0, 9, 3); // a retry: not appended
    produce(1, 1, 0, 2); // epoch bump
    produce(2, 0, 3, 2);

    const rebuilt = new ProducerStateManager(OPTS);
    let offset = 0;
    for (const bytes of log) {
      const h = readBatchHeader(bytes);
      expect(h.baseOffset).toBe(offset);
      rebuilt.replay(h, T0);
      offset = h.lastOffset + 1;
    }
    expect(offset).toBe(p.logEndOffset);
    expect(rebuilt.toJSON()).toEqual(p.state.toJSON());
    expect(rebuilt.producers()).toEqual(p.state.producers());
    expect(rebuilt.producerCount).toBe(2);
  });

  it("snapshot + tail replay equals full replay, and full replay equals live (seeded workload)", () => {
    const seed = seedFromEnv();
    console.log(`producer-state workload: SEED=${seed}`);
    const rnd = new SeededRandom(seed);
    const live = new LivePartition();
    const producers = 60;
    const clients = Array.from({ length: producers }, (_, i) => ({
      pid: i * 1000 + rnd.int(1000),
      epoch: rnd.int(3),
      seq: rnd.int(4) === 0 ? SEQUENCE_MAX - rnd.int(20) : 0, // some start near the wrap
      sent: [] as Array<{ b: SequencedBatch; count: number; baseOffset: number }>,
    }));
    const snapshots: Array<{ events: number; bytes: Uint8Array; leo: number }> = [];
    let now = T0;
    const counts = { append: 0, duplicate: 0, rejected: 0, expired: 0, wrapped: 0 };
    for (let step = 0; step < 6000; step++) {
      now += rnd.int(200);
      const c = clients[rnd.int(producers)]!;
      const roll = rnd.int(100);
      if (roll < 70 || c.sent.length === 0) {
        const count = 1 + rnd.int(8);
        const b: SequencedBatch = { ...sb(c.pid, c.epoch, c.seq, count), maxTimestamp: now - rnd.int(1000) };
        const r = live.produce(b, count, now);
        // a producer we forgot (expired) is taken at any sequence; one we know is in sequence
        expect(r.kind).toBe("append");
        counts.append++;
        if (b.lastSequence < b.baseSequence) counts.wrapped++;
        c.sent.push({ b, count, baseOffset: r.offset! });
        c.seq = incrementSequence(c.seq, count);
      } else if (roll < 85) {
        // a retry of one of the last 7 sent: the last 5 are duplicates (if still known)
        const back = 1 + rnd.int(Math.min(7, c.sent.length));
        const s = c.sent[c.sent.length - back]!;
        const known = live.state.producers().some((p) => p.producerId === c.pid);
        if (back <= 5 && known && s.b.producerEpoch === c.epoch) {
          expect(live.produce(s.b, s.count, now)).toEqual({
            kind: "duplicate",
            baseOffset: s.baseOffset,
            lastOffset: s.baseOffset + s.count - 1,
          });
          counts.duplicate++;
        } else if (known) {
          const name = s.b.producerEpoch < c.epoch ? "INVALID_PRODUCER_EPOCH" : "OUT_OF_ORDER_SEQUENCE_NUMBER";
          expectRejectedUnchanged(live.state, () => live.produce(s.b, s.count, now), name);
          counts.rejected++;
        }
      } else if (roll < 90) {
        c.epoch++;
        c.seq = 0;
        c.sent = [];
      } else if (roll < 96) {
        const known = live.state.producers().some((p) => p.producerId === c.pid);
        if (known) {
          const gap = sb(c.pid, c.epoch, incrementSequence(c.seq, 1 + rnd.int(3)), 1);
          expectRejectedUnchanged(live.state, () => live.produce(gap, 1, now), "OUT_OF_ORDER_SEQUENCE_NUMBER");
          counts.rejected++;
        }
      } else if (roll < 98) {
        counts.expired += live.expire(now - rnd.int(EXPIRATION_MS) + EXPIRATION_MS / 2);
        // an expired producer's earlier batches are forgotten: retries of them are not tested here
        const known = new Set(live.state.producers().map((p) => p.producerId));
        for (const x of clients) if (!known.has(x.pid)) x.sent = [];
      } else {
        snapshots.push({ events: live.events.length, bytes: live.state.snapshot(live.logEndOffset), leo: live.logEndOffset });
      }
    }
    console.log(
      `producer-state workload: ${JSON.stringify(counts)}, ${snapshots.length} snapshots, ${live.state.producerCount} producers left`,
    );
    expect(counts.duplicate).toBeGreaterThan(100);
    expect(counts.rejected).toBeGreaterThan(100);
    expect(counts.expired).toBeGreaterThan(0);
    expect(counts.wrapped).toBeGreaterThan(0);
    expect(snapshots.length).toBeGreaterThan(10);

    const expected = live.state.toJSON();
    expect(applyEvents(new ProducerStateManager(OPTS), live.events).toJSON()).toEqual(expected);
    for (const s of snapshots) {
      const loaded = ProducerStateManager.loadSnapshot(s.bytes, OPTS);
      expect(loaded).not.toBeNull();
      expect(loaded!.offset).toBe(s.leo);
      // the snapshot is the state at that point: a second snapshot of it is the same bytes
      expect(Buffer.from(loaded!.state.snapshot(s.leo)).equals(Buffer.from(s.bytes))).toBe(true);
      expect(applyEvents(loaded!.state, live.events.slice(s.events)).toJSON()).toEqual(expected);
    }
  });
});

describe("ProducerStateManager snapshots", () => {
  /** A small state touching the corners: wrap, several batches, an empty-tailed id, -1 timestamps. */
  function sample(): ProducerStateManager {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(2 ** 40 + 3, 32767, SEQUENCE_MAX - 1, 4, 0, -1), T0);
    st.record(pb(1, 0, 0, 1, 4), T0 + 1);
    st.record(pb(1, 0, 1, 2, 5), T0 + 2);
    st.record(pb(0, 3, 0, 1, 7, T0 - 5), 0);
    return st;
  }

  it("round-trips, with producers in id order", () => {
    const st = sample();
    const bytes = st.snapshot(8);
    const loaded = ProducerStateManager.loadSnapshot(bytes, OPTS)!;
    expect(loaded.offset).toBe(8);
    expect(loaded.state.toJSON()).toEqual(st.toJSON());
    expect(loaded.state.producers().map((p) => p.producerId)).toEqual([0, 1, 2 ** 40 + 3]);
    const empty = ProducerStateManager.loadSnapshot(new ProducerStateManager(OPTS).snapshot(0), OPTS)!;
    expect(empty.offset).toBe(0);
    expect(empty.state.producerCount).toBe(0);
  });

  it("is byte for byte the format drawn in producer-state.ts (golden, version 2)", () => {
    const st = new ProducerStateManager(OPTS);
    st.record(pb(1000, 2, 5, 3, 10, 1_700_000_000_123), 1_700_000_000_456);
    const hex = Buffer.from(st.snapshot(13)).toString("hex");
    expect(hex).toBe(
      [
        "524c5053", // magic "RLPS"
        "0002", // version
        hex.slice(12, 20), // crc, checked below
        "0000004c", // length: 76 bytes follow
        "000000000000000d", // offset 13
        "00000001", // one producer
        "00000000000003e8", // producerId 1000
        "0002", // epoch 2
        "0000018bcfe569c8", // lastTimestamp 1700000000456
        "ffffffff", // coordinatorEpoch -1: no marker yet
        "ffffffffffffffff", // txnFirstOffset -1: no open transaction
        "0001", // one batch
        "00000005", // baseSequence 5
        "00000007", // lastSequence 7
        "000000000000000a", // baseOffset 10
        "000000000000000c", // lastOffset 12
        "0000018bcfe5687b", // maxTimestamp 1700000000123
      ].join(""),
    );
    expect(hex.slice(12, 20)).toBe("c53b44f1");
    expect(crc32c(Buffer.from(hex, "hex").subarray(10))).toBe(0xc53b44f1);
  });

  it("rejects every single-byte flip, truncation and extension: null, never a wrong state", () => {
    const bytes = Buffer.from(sample().snapshot(8));
    expect(ProducerStateManager.loadSnapshot(bytes, OPTS)).not.toBeNull();
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x10, 0x80, 0xff, 0x5a]) {
        const bad = Buffer.from(bytes);
        bad[i]! ^= mask;
        expect(ProducerStateManager.loadSnapshot(bad, OPTS), `byte ${i} ^ ${mask}`).toBeNull();
      }
    }
    for (let n = 0; n < bytes.length; n++)
      expect(ProducerStateManager.loadSnapshot(bytes.subarray(0, n), OPTS), `first ${n} bytes`).toBeNull();
    expect(ProducerStateManager.loadSnapshot(Buffer.concat([bytes, Buffer.alloc(1)]), OPTS)).toBeNull();
  });

  it("rejects contents that break the format's rules even with a good CRC", () => {
    const good = Buffer.from(sample().snapshot(8));
    /** The bytes with their CRC recomputed, as a writer with a bug would have written them. */
    const reCrc = (b: Buffer): Buffer => {
      const fixed = Buffer.from(b);
      fixed.writeUInt32BE(crc32c(fixed.subarray(10)), 6);
      return fixed;
    };
    // the batch of producer 0 (first producer, at 26) ends at offset 7: claim the snapshot is at 7
    const early = Buffer.from(good);
    early.writeUInt32BE(7, 18);
    expect(ProducerStateManager.loadSnapshot(reCrc(early), OPTS)).toBeNull();
    // a negative epoch
    const epoch = Buffer.from(good);
    epoch.writeInt16BE(-1, 26 + 8);
    expect(ProducerStateManager.loadSnapshot(reCrc(epoch), OPTS)).toBeNull();
    // an open transaction starting at the snapshot's offset
    const txn = Buffer.from(good);
    txn.writeUInt32BE(0, 26 + 22);
    txn.writeUInt32BE(8, 26 + 26);
    expect(ProducerStateManager.loadSnapshot(reCrc(txn), OPTS)).toBeNull();
    // sanity: re-CRCing an untouched copy loads
    expect(ProducerStateManager.loadSnapshot(reCrc(good), OPTS)).not.toBeNull();
  });

  it("keeps the newest batchesPerProducer batches when loaded with a smaller window", () => {
    const st = new ProducerStateManager(OPTS);
    for (let i = 0; i < 5; i++) st.record(pb(1, 0, i, 1, i), T0);
    const loaded = ProducerStateManager.loadSnapshot(st.snapshot(5), { ...OPTS, batchesPerProducer: 2 })!.state;
    expect(loaded.check(sb(1, 0, 3, 1))).toEqual({ kind: "duplicate", baseOffset: 3, lastOffset: 3 });
    expectRill(() => loaded.check(sb(1, 0, 2, 1)), "OUT_OF_ORDER_SEQUENCE_NUMBER");
    expect(loaded.check(sb(1, 0, 5, 1))).toEqual({ kind: "append" });
  });
});
