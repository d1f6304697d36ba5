/**
 * Bad stored data stays in its partition (issue 14): a batch that cannot be read gives its own
 * partition CORRUPT_MESSAGE naming the batch's offset, in Fetch (RECORDS and BATCHES),
 * Subscribe and a Consume session, while every other partition of the call or stream keeps
 * flowing; each such read is published on the `rill:corrupt-read` channel. The corrupt batches
 * are appended below produce validation (see corrupt-batches.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { RillError } from "../../../src/base/errors.ts";
import { systemTimers } from "../../../src/base/timers.ts";
import { CRC_START, encodeBatch } from "../../../src/protocol/record-batch.ts";
import { type ConsumeSink, ConsumeSession, type DeliveredRecords } from "../../../src/service/consume-session.ts";
import { type CorruptRead, onCorruptRead } from "../../../src/service/corrupt-reads.ts";
import { fetch } from "../../../src/service/fetch.ts";
import { checkFetched } from "../../../src/service/fetch-records.ts";
import { type FetchInput, type FetchPartitionInput, type FetchResult, RecordFormat } from "../../../src/service/fetch-types.ts";
import { subscribe } from "../../../src/service/subscribe.ts";
import { badGzipBatch, fixCrc } from "./corrupt-batches.ts";
import { groupWorld, recordsIn, subscription, until } from "./groups-fixture.ts";
import { type Core, openCore, settle } from "./helpers.ts";

const cores: Core[] = [];
const stops: Array<() => void> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) s();
  for (const c of cores.splice(0)) await c.close();
});

async function twoPartitions(): Promise<{ core: Core; events: CorruptRead[] }> {
  const core = openCore();
  cores.push(core);
  await core.topic("t", [1, 1]);
  const events: CorruptRead[] = [];
  stops.push(onCorruptRead(core.rm, (e) => events.push(e)));
  return { core, events };
}

const good = (values: string[]): Buffer =>
  encodeBatch(
    values.map((v) => ({ key: null, value: v })),
    { nowMs: 1000 },
  );
const at = (partition: number, offset = 0n): FetchPartitionInput => ({ topic: "t", partition, offset, maxBytes: 0 });
const input = (parts: FetchPartitionInput[], format: number = RecordFormat.RECORDS): FetchInput => ({
  partitions: parts,
  maxWaitMs: 0,
  minBytes: 0,
  maxBytes: 0,
  format,
  isolationLevel: 0,
});
const noCancel = () => ({ aborted: false, onabort: null });
const values = (r: FetchResult, i: number): string[] => (r.partitions[i]!.records ?? []).map((x) => Buffer.from(x.value!).toString());

describe("Fetch: a corrupt partition beside a healthy one", () => {
  it("RECORDS: the healthy partition's records, and the corrupt one's CORRUPT_MESSAGE with the batch's offset", async () => {
    const { core, events } = await twoPartitions();
    core.rm.append("t", 0, good(["a", "b"]), "leader"); // offsets 0-1
    core.rm.append("t", 0, badGzipBatch(["x", "y", "z"]), "leader"); // offsets 2-4
    core.rm.append("t", 0, good(["c"]), "leader"); // offset 5
    core.rm.append("t", 1, good(["h0", "h1"]), "leader");

    // The good batches before the bad one are answered; next_offset stops at it.
    const first = await fetch(core.rm, input([at(0), at(1)]), noCancel(), null);
    expect(first.partitions[0]!.error).toBeNull();
    expect(values(first, 0)).toEqual(["a", "b"]);
    expect(first.partitions[0]!.nextOffset).toBe(2);
    expect(values(first, 1)).toEqual(["h0", "h1"]);
    expect(events).toEqual([]);

    // From the bad batch: its partition's error, the other partition's data.
    const second = await fetch(core.rm, input([at(0, 2n), at(1)]), noCancel(), null);
    const err = second.partitions[0]!.error!;
    expect(err.kind.name).toBe("CORRUPT_MESSAGE");
    expect(err.message).toContain("t-0: the batch at offset 2 cannot be read");
    expect(err.message).toContain("invalid stored block lengths");
    expect(second.partitions[0]!.nextOffset).toBe(5); // after the bad batch: where a skipping consumer goes on
    expect(second.partitions[0]!.records).toBeNull();
    expect(values(second, 1)).toEqual(["h0", "h1"]);
    expect(events.map((e) => [e.topic, e.partition, e.offset, e.skipTo, e.api])).toEqual([["t", 0, 2, 5, "fetch"]]);

    // Asked from inside the bad batch: the same batch, offset and skip.
    const inside = await fetch(core.rm, input([at(0, 3n)]), noCancel(), null);
    expect(inside.partitions[0]!.error?.message).toContain("at offset 2 cannot be read");
    expect(inside.partitions[0]!.nextOffset).toBe(5);

    // Past it, the partition reads again.
    const after = await fetch(core.rm, input([at(0, 5n)]), noCancel(), null);
    expect(values(after, 0)).toEqual(["c"]);
  });

  it("BATCHES: a batch whose CRC no longer matches its stored bytes gives its partition the error; the other's batches come", async () => {
    const { core, events } = await twoPartitions();
    // A buffer of its own (not a slice of Node's shared pool) and over 1 KiB, so the tail cache
    // keeps it itself rather than a copy (tail-cache.ts copies slices under half their buffer,
    // and small batches into its slab).
    const raw = good(["a".repeat(1500), "b"]);
    const stored = Buffer.from(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    core.rm.append("t", 0, stored, "leader");
    core.rm.append("t", 1, good(["h"]), "leader");
    // A bit flips in the stored batch (the tail cache holds the appended buffer itself).
    stored[stored.length - 1]! ^= 0x01;
    const res = await fetch(core.rm, input([at(0), at(1)], RecordFormat.BATCHES), noCancel(), null);
    expect(res.partitions[0]!.error?.kind.name).toBe("CORRUPT_MESSAGE");
    expect(res.partitions[0]!.error?.message).toMatch(/t-0: the batch at offset 0 cannot be read \(crc: stored/);
    expect(res.partitions[0]!.batches).toBeNull();
    expect(res.partitions[1]!.error).toBeNull();
    expect(recordsIn(res.partitions[1]!.batches as Buffer[], 0).map((r) => r.value)).toEqual(["h"]);
    expect(events).toHaveLength(1);
  });

  it("BATCHES: a bad gzip payload with a consistent CRC is sent as stored (the broker does not decode; the client reports it)", async () => {
    const { core, events } = await twoPartitions();
    core.rm.append("t", 0, badGzipBatch(["x"]), "leader");
    const res = await fetch(core.rm, input([at(0)], RecordFormat.BATCHES), noCancel(), null);
    expect(res.partitions[0]!.error).toBeNull();
    expect(res.partitions[0]!.batches).toHaveLength(1);
    expect(events).toEqual([]);
  });

  it("a fetch at offset 2^63-1 answers OFFSET_OUT_OF_RANGE with a next_offset that fits int64", async () => {
    const { core } = await twoPartitions();
    core.rm.append("t", 0, good(["a"]), "leader");
    const res = await fetch(core.rm, input([at(0, 2n ** 63n - 1n), at(1, 2n ** 53n)]), noCancel(), null);
    for (const p of res.partitions) {
      expect(p.error?.kind.name).toBe("OFFSET_OUT_OF_RANGE");
      expect(Number.isSafeInteger(p.nextOffset)).toBe(true);
      expect(BigInt(p.nextOffset) < 2n ** 63n).toBe(true);
    }
  });
});

describe("checkFetched", () => {
  it("cuts a read at its first bad batch; a damaged length or a read past the chunk is a corrupt batch, never a throw", () => {
    const a = good(["a"]);
    const b = good(["b"]);
    b.writeBigInt64BE(1n, 0);
    const chunk = Buffer.concat([a, b]);
    const ok = checkFetched([chunk], 0, 2, true);
    expect(ok.corrupt).toBeNull();
    expect(ok.records?.map((r) => r.offset)).toEqual([0, 1]);
    expect(ok.nextOffset).toBe(2);

    const badLength = Buffer.from(chunk);
    badLength.writeInt32BE(1 << 30, a.length + 8); // the second batch's length runs past the read
    const cut = checkFetched([badLength], 0, 2, false);
    expect(cut.corrupt).toBeNull();
    expect(cut.bytes).toBe(a.length);
    expect(cut.nextOffset).toBe(1);
    const then = checkFetched([badLength.subarray(a.length)], 1, 2, false);
    expect(then.corrupt).toMatchObject({ offset: 1, skipTo: 2 });
    expect(then.corrupt?.reason).toContain("batchLength");

    const flipped = Buffer.from(a);
    flipped[CRC_START + 1]! |= 0x07; // attributes (the low byte) now name codec 7; CRC recomputed
    expect(checkFetched([fixCrc(flipped)], 0, 1, true).corrupt?.reason).toContain("compression");
  });
});

describe("Subscribe: a corrupt partition beside a healthy one", () => {
  it("answers the corrupt partition's error once and keeps delivering the healthy one", async () => {
    const { core, events } = await twoPartitions();
    core.rm.append("t", 0, badGzipBatch(["x"]), "leader");
    core.rm.append("t", 1, good(["h0"]), "leader");
    const sent: FetchResult[] = [];
    const cancel = noCancel();
    const sink = {
      send: (m: FetchResult, _bytes: number, onSent: () => void) => {
        sent.push(m);
        onSent();
      },
      room: async () => {},
    };
    const buffers = { take: (size: number) => Buffer.alloc(size), give: () => {} };
    const done = subscribe(
      core.rm,
      { partitions: [at(0), at(1)], maxBytes: 0, maxWaitMs: 0, format: RecordFormat.RECORDS },
      sink,
      cancel,
      buffers,
    );
    await settle();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.partitions[0]!.error?.message).toContain("t-0: the batch at offset 0 cannot be read");
    expect(values(sent[0]!, 1)).toEqual(["h0"]);
    core.rm.append("t", 1, good(["h1"]), "leader");
    await settle();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.partitions.map((p) => p.partition)).toEqual([1]);
    expect(values(sent[1]!, 0)).toEqual(["h1"]);
    expect(events.map((e) => e.api)).toEqual(["subscribe"]);
    cancel.aborted = true;
    (cancel as { onabort: (() => void) | null }).onabort?.();
    await done;
  });
});

describe("Consume session: a corrupt partition beside a healthy one", () => {
  it("hands the corrupt partition's error over once, keeps the other flowing, and goes on past the bad batch after a commit past it", async () => {
    const w = await groupWorld({ t: 2 });
    const events: CorruptRead[] = [];
    stops.push(onCorruptRead(w.rm, (e) => events.push(e)));
    w.rm.append("t", 0, badGzipBatch(["x", "y"]), "leader"); // offsets 0-1
    w.produce("t", 0, ["after"]); // offset 2
    w.produce("t", 1, ["h0"]);
    const delivered: DeliveredRecords[] = [];
    const commits: unknown[] = [];
    let ended: RillError | null | undefined;
    const sink: ConsumeSink = {
      assignment: () => {},
      records: (r) => {
        delivered.push(r);
        return true;
      },
      commitResult: (r) => commits.push(r),
      end: (e) => {
        ended = e;
      },
    };
    const session = new ConsumeSession(w.rt, w.rm, systemTimers, sink);
    const valuesOf = (p: number) =>
      delivered.filter((d) => d.partition === p).flatMap((d) => (d.records ?? []).map((r) => Buffer.from(r.value!).toString()));
    try {
      session.subscribe(subscription({ decode: true }));
      await until(() => valuesOf(1).length === 1 && delivered.some((d) => d.error), "the healthy records and the corrupt error");
      const bad = delivered.find((d) => d.error)!;
      expect(bad).toMatchObject({ topic: "t", partition: 0, firstOffset: 0, nextOffset: 2, chunks: [] });
      expect(bad.error?.kind.name).toBe("CORRUPT_MESSAGE");
      expect(bad.error?.message).toContain("t-0: the batch at offset 0 cannot be read");
      w.produce("t", 1, ["h1"]);
      await until(() => valuesOf(1).length === 2, "more healthy records");
      expect(delivered.filter((d) => d.error)).toHaveLength(1); // reported once, then paused
      expect(valuesOf(0)).toEqual([]);
      expect(events.map((e) => [e.partition, e.offset, e.api])).toEqual([[0, 0, "consume"]]);
      // The member skips the batch: it commits the offset after it, and delivery goes on there.
      session.commit(1n, [{ topic: "t", partition: 0, offset: 2, metadata: "", leaderEpoch: -1 }]);
      await until(() => valuesOf(0).length === 1, "records after the bad batch");
      expect(valuesOf(0)).toEqual(["after"]);
      expect(ended).toBeUndefined();
    } finally {
      session.close();
      await w.close();
    }
  });
});
