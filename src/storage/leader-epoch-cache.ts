/**
 * The leader epoch cache of a partition (Kafka's LeaderEpochFileCache): for each leader epoch
 * that wrote to the log, the offset of its first record. Replication uses it to find where a
 * follower's log diverges from its leader's: the leader answers "epoch E ends at offset O" and
 * the follower truncates there (KIP-101 / KIP-279 / KIP-320).
 *
 * File `leader-epoch-checkpoint` in the partition folder, replaced atomically on every change:
 *
 * ```
 * u32 magic "RLEC" | u32 count | count × { i32 epoch, i64 startOffset } | u32 crc32c(all before)
 * ```
 *
 * Entries are strictly increasing in both epoch and start offset. A missing file is rebuilt
 * from the batches' partitionLeaderEpoch fields by the log; a corrupt one is rebuilt the same way.
 * The file is written when an epoch is assigned, ahead of the fsync of the records it describes:
 * after an unclean shutdown the log trusts only the entries below its recovery point and
 * re-derives the rest from the recovered batches (PartitionLog.loadEpochs).
 *
 * An assign (a partition's first append in a new leader epoch: every partition once after each
 * leadership change) replaces the file without an fsync, and the log's next flush makes it
 * durable (`sync`) before its recovery point passes the new entry. Kafka fsyncs here, on one of
 * its request threads; on Rill's one event loop 1,000 partitions' first appends took ~5 s of
 * fsync and file creation between them (issue 20's 1,000-partition benchmark). A power loss
 * before that flush leaves either the previous file, whose entries all lie below the recovery
 * point the flush did not move, or a torn new one, which fails its checksum and is rebuilt from
 * the whole log. Truncations and rebuilds still write with an fsync.
 */
import { crc32c } from "../base/crc32c.ts";
import { type FileSystem, replaceFileUnsynced } from "./fs.ts";

/** File name in the partition folder. */
export const LEADER_EPOCH_FILE = "leader-epoch-checkpoint";
const MAGIC = 0x524c4543; // "RLEC"

/** One epoch and where it starts. */
export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: number;
}

/** Leader epochs of one partition's log. */
export class LeaderEpochCache {
  private entries: EpochEntry[] = [];
  /** The file was replaced without an fsync since the last one (`assign`; `sync` clears it). */
  private unsynced = false;

  private constructor(
    private readonly fs: FileSystem,
    private readonly path: string,
  ) {}

  /** Loads the cache of `dir`; null when the file is missing or corrupt (the log rebuilds it). */
  static load(fs: FileSystem, dir: string): LeaderEpochCache | null {
    const c = new LeaderEpochCache(fs, fs.join(dir, LEADER_EPOCH_FILE));
    if (!fs.exists(c.path)) return null;
    const b = Buffer.from(fs.readFile(c.path));
    if (b.length < 12 || b.readUInt32BE(0) !== MAGIC) return null;
    const n = b.readUInt32BE(4);
    if (b.length !== 12 + n * 12 || b.readUInt32BE(8 + n * 12) !== crc32c(b.subarray(0, 8 + n * 12))) return null;
    for (let i = 0; i < n; i++) c.entries.push({ epoch: b.readInt32BE(8 + i * 12), startOffset: Number(b.readBigInt64BE(12 + i * 12)) });
    return c;
  }

  /** An empty cache for `dir` (written on its first change). */
  static empty(fs: FileSystem, dir: string): LeaderEpochCache {
    return new LeaderEpochCache(fs, fs.join(dir, LEADER_EPOCH_FILE));
  }

  /** Every entry, oldest first. */
  all(): readonly EpochEntry[] {
    return this.entries;
  }

  /** The newest epoch that wrote to the log, -1 when none. */
  get latestEpoch(): number {
    return this.entries.length === 0 ? -1 : this.entries[this.entries.length - 1]!.epoch;
  }

  /**
   * Records that `epoch` wrote a batch at `startOffset`. Older or equal epochs change nothing
   * (batches of an epoch arrive in order); a newer epoch is appended and the file rewritten.
   */
  assign(epoch: number, startOffset: number, persist = true): void {
    const last = this.entries[this.entries.length - 1];
    if (epoch < 0 || (last !== undefined && epoch <= last.epoch)) return;
    if (last !== undefined && startOffset < last.startOffset) return;
    this.entries.push({ epoch, startOffset });
    if (persist) this.write(false);
  }

  /**
   * Makes the file durable if an `assign` replaced it without an fsync: the log calls it with each
   * flush, which moves its recovery point past the entry only once this has resolved. The file is
   * opened now, so the fsync covers every entry assigned so far.
   */
  sync(): Promise<void> {
    if (!this.unsynced) return Promise.resolve();
    this.unsynced = false;
    let f: ReturnType<FileSystem["open"]>;
    try {
      f = this.fs.open(this.path, false);
    } catch (e) {
      this.unsynced = true;
      return Promise.reject(e);
    }
    return f.sync().finally(() => f.close());
  }

  /**
   * Where `epoch` ends in this log (KIP-101's OffsetsForLeaderEpoch): the largest epoch at or
   * below it, and the start offset of the next epoch (or `logEndOffset` for the newest).
   * `{epoch: -1, endOffset: -1}` when no epoch at or below it is known.
   */
  endOffsetFor(epoch: number, logEndOffset: number): { epoch: number; endOffset: number } {
    let i = this.entries.length - 1;
    while (i >= 0 && this.entries[i]!.epoch > epoch) i--;
    if (i < 0) return { epoch: -1, endOffset: -1 };
    const next = this.entries[i + 1];
    return { epoch: this.entries[i]!.epoch, endOffset: next ? next.startOffset : logEndOffset };
  }

  /** Drops epochs that start at or after `offset` (the log was truncated to `offset`). */
  truncateFromEnd(offset: number): void {
    const before = this.entries.length;
    while (this.entries.length > 0 && this.entries[this.entries.length - 1]!.startOffset >= offset) this.entries.pop();
    if (this.entries.length !== before) this.write();
  }

  /** Replaces every entry (a rebuild) and writes the file. */
  reset(entries: readonly EpochEntry[]): void {
    this.entries = [...entries];
    this.write();
  }

  /** Replaces the file: atomically and durably, or (`durable` false) atomically only. */
  private write(durable = true): void {
    const n = this.entries.length;
    const b = Buffer.alloc(12 + n * 12);
    b.writeUInt32BE(MAGIC, 0);
    b.writeUInt32BE(n, 4);
    this.entries.forEach((e, i) => {
      b.writeInt32BE(e.epoch, 8 + i * 12);
      b.writeBigInt64BE(BigInt(e.startOffset), 12 + i * 12);
    });
    b.writeUInt32BE(crc32c(b.subarray(0, 8 + n * 12)), 8 + n * 12);
    if (durable) {
      this.fs.writeFileAtomic(this.path, b);
      this.unsynced = false;
      return;
    }
    replaceFileUnsynced(this.fs, this.path, b);
    this.unsynced = true;
  }
}
