/** Shared fixtures for storage tests: batches, logs on the in-memory disk, file snapshots. */
import { ManualClock } from "../../../src/base/clock.ts";
import { RillError } from "../../../src/base/errors.ts";
import { defaultTopicConfig, tinyTopicConfig, type TopicConfig } from "../../../src/config/schema.ts";
import { MemoryFileSystem, type FileSystem } from "../../../src/storage/fs.ts";
import { LogManager } from "../../../src/storage/log-manager.ts";
import { PartitionLog } from "../../../src/storage/partition-log.ts";
import { Compression, decodeRecords, encodeBatch } from "../../../src/protocol/record-batch.ts";

export { ManualClock, MemoryFileSystem, PartitionLog, defaultTopicConfig, tinyTopicConfig };

/** A batch of `n` records with values `${prefix}-${i}` and keys `k${i % keys}`. */
export function batch(
  n: number,
  opts: { prefix?: string; keys?: number; ts?: number; compression?: number; valueSize?: number } = {},
): Buffer {
  const prefix = opts.prefix ?? "v";
  const ts = opts.ts ?? 1_700_000_000_000;
  const records = Array.from({ length: n }, (_, i) => ({
    key: opts.keys ? `k${i % opts.keys}` : null,
    value: opts.valueSize ? `${prefix}-${i}-`.padEnd(opts.valueSize, "x") : `${prefix}-${i}`,
    timestampMs: ts + i,
  }));
  return encodeBatch(records, { compression: opts.compression ?? Compression.NONE, nowMs: ts });
}

/** A keyed batch from explicit [key, value|null] pairs. */
export function keyed(pairs: Array<[string, string | null]>, ts = 1_700_000_000_000): Buffer {
  return encodeBatch(
    pairs.map(([key, value], i) => ({ key, value, timestampMs: ts + i })),
    { nowMs: ts },
  );
}

/** Opens a log with the tiny test profile unless told otherwise. */
export function openLog(
  fs: FileSystem,
  clock: ManualClock,
  config: Partial<TopicConfig> = {},
  recover = false,
  dir = "/data/t-0",
): PartitionLog {
  return PartitionLog.open({ fs, dir, clock, config: { ...tinyTopicConfig, ...config }, tailCacheBytes: 1 << 16, recover });
}

/** Every record readable from `from`, as [offset, value] pairs. */
export function readAll(log: PartitionLog, from = log.logStartOffset): Array<[number, string | null]> {
  const out: Array<[number, string | null]> = [];
  let offset = from;
  while (offset < log.logEndOffset) {
    const r = log.read(offset, 1 << 20);
    if (r.bytes === 0) break;
    for (const chunk of r.chunks) {
      for (let pos = 0; pos < chunk.length; ) {
        const size = chunk.readInt32BE(pos + 8) + 12;
        for (const rec of decodeRecords(chunk.subarray(pos, pos + size))) {
          if (rec.offset >= offset) out.push([rec.offset, rec.value === null ? null : Buffer.from(rec.value).toString()]);
        }
        pos += size;
      }
    }
    offset = r.nextOffset;
  }
  return out;
}

/** Copies of every file under `dir`, for before/after comparisons. */
export function snapshot(fs: MemoryFileSystem, dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of fs.readdir(dir)) out.set(name, Buffer.from(fs.bytes(fs.join(dir, name))).toString("hex"));
  return out;
}

/** The catalog code of the RillError `f` throws (fails the test if it throws anything else). */
export function codeOf(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    if (e instanceof RillError) return e.code;
    throw e;
  }
  throw new Error("expected a RillError");
}

/**
 * A LogManager on an in-memory file system at `/d` for tests above storage (replication, service,
 * rpc): 1 MiB tail caches, no retention or cleaner runs of its own, no other process.
 */
export function openMemoryLogs(fs: MemoryFileSystem, clock: ManualClock): LogManager {
  return LogManager.open({
    fs,
    dataDir: "/d",
    clock,
    topicConfig: () => undefined,
    tailCacheBytes: 1 << 20,
    retentionCheckIntervalMs: 1e9,
    cleanerBackoffMs: 1e9,
    cleanerEnable: false,
    pause: () => Promise.resolve(),
    pid: 1,
    isProcessAlive: () => false,
  });
}
