/**
 * What the clients and the nodes were seen doing, and the checks over it (issue 19's checkers
 * for replication): acknowledged acks=all writes kept, one value per offset, the high watermark
 * clients see never going backwards, one leader per partition epoch, followers equal to their
 * leader below the high watermark, and liveness after healing.
 */
import { RecordCursor } from "../../../src/protocol/record-batch.ts";
import type { PartitionLog } from "../../../src/storage/partition-log.ts";

/** An acknowledged acks=all write. */
export interface Ack {
  readonly partition: number;
  readonly offset: number;
  readonly value: string;
  /**
   * When the leader acknowledged it (its answer left), not when the client got the answer: a
   * power loss between the two may take the write with it, and the checks excuse what was
   * acknowledged before min.insync.replicas nodes lost power (seed 3175: the answer arrived 2 ms
   * after both in-sync replicas lost power, so stamped on arrival the loss was not counted).
   */
  readonly atMs: number;
}

/** A broken invariant, with when it was seen. */
export interface Violation {
  readonly check: string;
  readonly detail: string;
  readonly atMs: number;
}

/** Every record of `log` in [from, to) as offset → value. */
export function recordsOf(log: PartitionLog, from: number, to: number): Map<number, string> {
  const out = new Map<number, string>();
  forEachRecord(log, from, to, (offset, value) => {
    out.set(offset, value);
    return true;
  });
  return out;
}

/**
 * Calls `fn` with every record of `log` in [from, to), in offset order, while it returns true.
 * `decode(baseOffset, crc)`, asked of each batch wholly inside the range, may answer false to pass
 * over the batch without decoding it (a batch known already by its offset and CRC).
 */
export function forEachRecord(
  log: PartitionLog,
  from: number,
  to: number,
  fn: (offset: number, value: string) => boolean,
  decode: ((baseOffset: number, crc: number) => boolean) | null = null,
): void {
  const cursor = new RecordCursor();
  let offset = from;
  while (offset < to) {
    const read = log.read(offset, 1 << 20, to);
    if (read.bytes === 0) break;
    for (const chunk of read.chunks) {
      let pos = 0;
      while (pos < chunk.length) {
        const size = chunk.readInt32BE(pos + 8) + 12;
        // baseOffset (int64) at 0, lastOffsetDelta at 23, the CRC at 17 (record-batch.ts).
        const base = chunk.readUInt32BE(pos) * 2 ** 32 + chunk.readUInt32BE(pos + 4);
        const whole = base >= from && base + chunk.readInt32BE(pos + 23) < to;
        if (decode === null || !whole || decode(base, chunk.readUInt32BE(pos + 17))) {
          const c = cursor.reset(chunk, pos);
          while (c.next()) if (c.offset >= from && c.offset < to && !fn(c.offset, c.valueString() ?? "")) return;
        }
        pos += size;
      }
    }
    if (read.nextOffset <= offset) break;
    offset = read.nextOffset;
  }
}

/** When a leader's high watermark first passed a record (History.hwPassed); `other`: another value at the offset. */
interface HwPassed {
  readonly value: string;
  atMs: number;
  other: HwPassed | null;
}

/**
 * The batches of `log` wholly in [from, to), as base offset → CRC (which covers each batch's
 * records: their offset deltas and values). Only the batches at the range's edges are decoded.
 */
export function batchCrcs(log: PartitionLog, from: number, to: number): Map<number, number> {
  const out = new Map<number, number>();
  forEachRecord(
    log,
    from,
    to,
    () => true,
    (base, crc) => {
      out.set(base, crc);
      return false;
    },
  );
  return out;
}

/**
 * `forEachRecord`, but for the batches wholly in the range that `skip` holds with the same CRC
 * (`batchCrcs` of another log: the same records at the same offsets), which are not decoded.
 */
export function forEachRecordBut(
  log: PartitionLog,
  from: number,
  to: number,
  skip: ReadonlyMap<number, number>,
  fn: (offset: number, value: string) => boolean,
): void {
  forEachRecord(log, from, to, fn, (base, crc) => skip.get(base) !== crc);
}

/** The history of one run. */
export class History {
  readonly acks: Ack[] = [];
  /** `acks` by partition, in the same order. */
  private readonly acksOf = new Map<number, Ack[]>();
  /**
   * Per partition, the acknowledgement of its highest offset (the first of them, if several):
   * an ISR expansion's check asks for it on every expansion, where a scan of `acks` would grow
   * with the run.
   */
  private readonly highestAcked = new Map<number, Ack>();
  /**
   * partition → offset → the first record acknowledged there (its earliest acknowledgement, if
   * twice); another record acknowledged at an offset (after a loss) is in `ackedOther`, by
   * `${partition}/${offset}/${value}`. Nested maps of numbers, not a string key per record: this
   * is asked for every acknowledged and every consumed record.
   */
  private readonly ackedAt = new Map<number, Map<number, Ack>>();
  private readonly ackedOther = new Map<string, number>();
  /**
   * partition → offset → when a leader's high watermark first passed the record there
   * (`hwPassed`), per value (another record at the offset, after a loss, is chained after the
   * first). Nested maps of numbers, not a string key per record: a restarted leader's first move
   * passes its whole log again.
   */
  private readonly hwPassedAt = new Map<number, Map<number, HwPassed>>();
  /** Values written by idempotent producers (each must be in the log at most once). */
  readonly idempotentValues = new Set<string>();
  /** partition → offset → value, as consumers read it (below the high watermark). */
  readonly consumed = new Map<number, Map<number, { value: string; atMs: number }>>();
  /** `${partition}/${leaderEpoch}` → the node that led it. */
  readonly leaders = new Map<string, number>();
  readonly violations: Violation[] = [];
  produced = 0;
  failedProduces = 0;
  reads = 0;
  /**
   * Reads whose high watermark was below one this client saw before, answered by a replica that
   * is not (yet) a settled leader: a follower or a held restarted node, or a new leader before its
   * high watermark reaches its epoch's start (KIP-207). Counted, not a violation.
   */
  staleHwReads = 0;
  /**
   * Reads refused for the leader epoch the client sent (KIP-320): FENCED_LEADER_EPOCH (the
   * client's metadata was older) or UNKNOWN_LEADER_EPOCH (a broker behind, or a fenced leader
   * that has not learnt it lost the partition). Counted, not a violation.
   */
  epochRefusedReads = 0;
  /** FetchOffsets answers of a deposed coordinator, older than an earlier answer: late, not compared (deposed.ts). */
  deposedCoordinatorReads = 0;
  private readonly reported = new Set<string>();
  /** `${group}/${partition}` → commits acknowledged to members (offset, when), in order. */
  readonly commits = new Map<string, Array<{ offset: number; atMs: number; decidedAtMs: number }>>();
  /** `${group}/${partition}` → the highest committed offset a FetchOffsets answered, and when. */
  readonly committedSeen = new Map<string, { offset: number; atMs: number }>();
  commitCount = 0;
  committedReads = 0;

  /** A member's commit of `offset` was acknowledged. */
  commitAcked(group: string, partition: number, offset: number, atMs: number, decidedAtMs = atMs): void {
    const key = `${group}/${partition}`;
    let l = this.commits.get(key);
    if (!l) this.commits.set(key, (l = []));
    l.push({ offset, atMs, decidedAtMs });
    this.commitCount++;
  }

  /**
   * A FetchOffsets asked at `sentAtMs` answered `offset` (-1: none) at `atMs` (the coordinator
   * read it at `servedAtMs`). Committed offsets never go backwards: the answer is at least every
   * commit acknowledged before it was asked and every answer before it — unless
   * `powerLossesSince(t)` (nodes that lost power after t) reaches 2 (min.insync.replicas of
   * __consumer_offsets), which may lose what the coordinator held at t (when it decided a commit,
   * or read an answer: a node may lose power while its answer is on the way).
   */
  committedRead(
    group: string,
    partition: number,
    offset: number,
    sentAtMs: number,
    atMs: number,
    powerLossesSince: (t: number) => number,
    servedAtMs = atMs,
  ): void {
    const key = `${group}/${partition}`;
    this.committedReads++;
    for (const c of this.commits.get(key) ?? []) {
      if (c.atMs >= sentAtMs || c.offset <= offset || powerLossesSince(c.decidedAtMs) >= 2) continue;
      this.violation(
        "committed-offset-backwards",
        `${group} partition ${partition}: commit of ${c.offset} acknowledged at ${c.atMs} ms, FetchOffsets asked at ${sentAtMs} ms answered ${offset}`,
        atMs,
      );
      break;
    }
    const seen = this.committedSeen.get(key);
    if (seen && offset < seen.offset && powerLossesSince(seen.atMs) < 2)
      this.violation(
        "committed-offset-backwards",
        `${group} partition ${partition}: FetchOffsets answered ${seen.offset} at ${seen.atMs} ms, then ${offset} at ${atMs} ms`,
        atMs,
      );
    if (!seen || offset > seen.offset) this.committedSeen.set(key, { offset, atMs: servedAtMs });
  }

  /** An acks=all write was acknowledged. */
  acked(a: Ack): void {
    this.acks.push(a);
    let l = this.acksOf.get(a.partition);
    if (l === undefined) this.acksOf.set(a.partition, (l = []));
    l.push(a);
    const top = this.highestAcked.get(a.partition);
    if (top === undefined || a.offset > top.offset) this.highestAcked.set(a.partition, a);
    let m = this.ackedAt.get(a.partition);
    if (m === undefined) this.ackedAt.set(a.partition, (m = new Map()));
    const first = m.get(a.offset);
    if (first === undefined || (first.value === a.value && a.atMs < first.atMs)) m.set(a.offset, a);
    else if (first.value !== a.value) {
      const key = `${a.partition}/${a.offset}/${a.value}`;
      const prev = this.ackedOther.get(key);
      if (prev === undefined || a.atMs < prev) this.ackedOther.set(key, a.atMs);
    }
  }

  /** The acknowledged acks=all writes of `partition`, in the order acknowledged. */
  acksOfPartition(partition: number): readonly Ack[] {
    return this.acksOf.get(partition) ?? [];
  }

  /**
   * The acknowledgement of `partition`'s highest acknowledged offset if that offset is at least
   * `offset` (the first acknowledged of them, if several), else undefined: the acknowledged write
   * at or past `offset` that a scan of `acks` in order keeping the highest would find.
   */
  highestAckedFrom(partition: number, offset: number): Ack | undefined {
    const top = this.highestAcked.get(partition);
    return top !== undefined && top.offset >= offset ? top : undefined;
  }

  /**
   * A leader's high watermark passed the record `value` at `offset` at `atMs` (seen by the
   * simulation, hw-watch.ts): it was committed then (the earliest, if twice).
   */
  hwPassed(partition: number, offset: number, value: string, atMs: number): void {
    let m = this.hwPassedAt.get(partition);
    if (m === undefined) this.hwPassedAt.set(partition, (m = new Map()));
    let e = m.get(offset);
    if (e === undefined) {
      m.set(offset, { value, atMs, other: null });
      return;
    }
    for (;;) {
      if (e.value === value) {
        if (atMs < e.atMs) e.atMs = atMs;
        return;
      }
      if (e.other === null) {
        e.other = { value, atMs, other: null };
        return;
      }
      e = e.other;
    }
  }

  /** When a leader's high watermark first passed the record `value` at `offset` (`hwPassed`), if it did. */
  private hwPassedOf(partition: number, offset: number, value: string): number | undefined {
    for (let e = this.hwPassedAt.get(partition)?.get(offset) ?? null; e !== null; e = e.other) if (e.value === value) return e.atMs;
    return undefined;
  }

  /**
   * When the record `value` at `offset`, read at `readAtMs` below a high watermark, was known to
   * be committed: when a leader's high watermark first passed that same record (`hwPassed`), or
   * when a leader acknowledged it, or when it was read, whichever is earliest. What may lose a
   * committed record is a power loss of min.insync.replicas (2) nodes after its high watermark
   * passed it, not after it was read: a record acknowledged before one of its ISR lost power and
   * read after is excused as an acknowledged write (seed 4647), and a record never acknowledged
   * (an acks=1 or idempotent write whose answer was lost, say) committed before that loss is
   * excused as well (seed 42 with reassignments).
   */
  committedBy(partition: number, offset: number, value: string, readAtMs: number): number {
    const first = this.ackedAt.get(partition)?.get(offset);
    const acked =
      first === undefined ? undefined : first.value === value ? first.atMs : this.ackedOther.get(`${partition}/${offset}/${value}`);
    const passed = this.hwPassedOf(partition, offset, value);
    return Math.min(acked ?? readAtMs, passed ?? readAtMs, readAtMs);
  }

  /** Records a violation (each distinct one once). */
  violation(check: string, detail: string, atMs: number): void {
    const key = `${check}: ${detail}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.violations.push({ check, detail, atMs });
  }

  /** A node took leadership of `partition` in `epoch`. */
  leaderSeen(partition: number, epoch: number, node: number, atMs: number): void {
    const key = `${partition}/${epoch}`;
    const prev = this.leaders.get(key);
    if (prev === undefined) this.leaders.set(key, node);
    else if (prev !== node)
      this.violation("one-leader-per-epoch", `partition ${partition} leader epoch ${epoch}: led by node ${prev} and node ${node}`, atMs);
  }

  /**
   * A consumer read `value` at `offset` (below the high watermark). `powerLossesSince(t)`: nodes
   * that lost power after t; once min.insync.replicas (2) have since the first read (or the
   * record's acknowledgement, if earlier: `committedBy`), the offset may hold another value (as
   * acknowledged writes may be lost), and the new value is the one kept.
   */
  consumedAt(partition: number, offset: number, value: string, atMs: number, powerLossesSince: (t: number) => number): void {
    let m = this.consumed.get(partition);
    if (!m) this.consumed.set(partition, (m = new Map()));
    const prev = m.get(offset);
    if (prev === undefined) m.set(offset, { value, atMs });
    else if (prev.value !== value && powerLossesSince(this.committedBy(partition, offset, prev.value, prev.atMs)) >= 2)
      m.set(offset, { value, atMs });
    else if (prev.value !== value)
      this.violation(
        "one-value-per-offset",
        `partition ${partition} offset ${offset}: read "${prev.value}" at ${prev.atMs} ms, then "${value}"`,
        atMs,
      );
  }
}
