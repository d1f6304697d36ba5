/**
 * Micro-benchmarks of the partition log against the raw filesystem, in the same run: appending
 * the same batch buffers through `PartitionLog.append` and through `fs.writeSync` to a plain
 * file, and reading them back through `PartitionLog.read` (tail cache off) and `fs.readSync`.
 * The ratio log/raw is the figure: what the log's own work costs.
 *
 * Same OS-level work on both sides: the raw writer rolls to a new file every SEGMENT_BYTES,
 * fsyncs the rolled file in the background (the log does, as Kafka does) and deletes old files
 * (retention). Reads: the log returns a fresh buffer per read (it is handed to gRPC), so the raw
 * read is measured both into a fresh buffer and into one reused buffer.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { systemClock } from "../../src/base/clock.ts";
import { defaultTopicConfig } from "../../src/config/schema.ts";
import { NodeFileSystem } from "../../src/storage/fs.ts";
import { PartitionLog } from "../../src/storage/partition-log.ts";
import { encodeBatch } from "../../src/protocol/record-batch.ts";
import type { CodecSuite } from "./codec.ts";

/** Records per batch and value size: ~64 KiB batches of 100-byte records. */
const RECORDS = 600;
const VALUE = 100;
/** Batches appended per benchmark op (~1 MiB). */
const PER_OP = 16;
const SEGMENT_BYTES = 128 * 1024 * 1024;
/** Bytes written before the read suites start, and read back in a loop. */
const READ_SET_BYTES = 256 * 1024 * 1024;
const READ_CHUNK = 1 << 20;

function makeBatches(): Buffer[] {
  return Array.from({ length: PER_OP }, (_, b) =>
    encodeBatch(
      Array.from({ length: RECORDS }, (_, i) => ({
        key: `user-${i % 97}`,
        value: `{"event":"click","batch":${b},"i":${i}}`.padEnd(VALUE, " "),
        timestampMs: 1_700_000_000_000 + i,
      })),
      { nowMs: 1_700_000_000_000 },
    ),
  );
}

/** A plain-file writer that rolls like a segment: the raw baseline. */
class RawWriter {
  private fd = -1;
  private pos = 0;
  private n = 0;
  private readonly files: string[] = [];

  constructor(private readonly dir: string) {
    this.roll();
  }

  private roll(): void {
    if (this.fd >= 0) {
      const old = this.fd;
      nodeFs.fsync(old, () => nodeFs.closeSync(old));
    }
    const file = path.join(this.dir, `${String(this.n++).padStart(20, "0")}.raw`);
    this.fd = nodeFs.openSync(file, "w+");
    this.files.push(file);
    while (this.files.length > 2) nodeFs.rmSync(this.files.shift()!);
    this.pos = 0;
  }

  write(buf: Buffer): void {
    if (this.pos + buf.length > SEGMENT_BYTES) this.roll();
    let done = 0;
    while (done < buf.length) done += nodeFs.writeSync(this.fd, buf, done, buf.length - done, this.pos + done);
    this.pos += buf.length;
  }
}

/** Suites plus a cleanup to call after running them. */
export function logSuites(): { suites: CodecSuite[]; cleanup: () => Promise<void> } {
  const root = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-bench-"));
  const batches = makeBatches();
  const opBytes = batches.reduce((n, b) => n + b.length, 0);
  const config = {
    ...defaultTopicConfig,
    segmentBytes: SEGMENT_BYTES,
    retentionBytes: 2 * SEGMENT_BYTES,
    flushMs: Number.MAX_SAFE_INTEGER,
  };
  const fs = new NodeFileSystem();
  const log = PartitionLog.open({
    fs,
    dir: path.join(root, "append-0"),
    clock: systemClock,
    config,
    tailCacheBytes: 4 << 20,
    recover: false,
  });
  const raw = new RawWriter(nodeFs.mkdtempSync(path.join(root, "raw-")));
  let appends = 0;

  // The read set: one log and one raw file with the same bytes, written up front.
  const readLog = PartitionLog.open({
    fs,
    dir: path.join(root, "read-0"),
    clock: systemClock,
    config: { ...config, retentionBytes: -1 },
    tailCacheBytes: 0,
    recover: false,
  });
  const rawReadPath = path.join(root, "read.raw");
  const rawFd = nodeFs.openSync(rawReadPath, "w+");
  let written = 0;
  while (written < READ_SET_BYTES) {
    for (const b of batches) {
      readLog.append(b);
      nodeFs.writeSync(rawFd, b, 0, b.length, written);
      written += b.length;
    }
  }
  let readOffset = 0;
  let rawPos = 0;
  const rawBuf = Buffer.allocUnsafe(READ_CHUNK);

  const suites: CodecSuite[] = [
    {
      name: "log append (PartitionLog.append)",
      unit: "bytes",
      perOp: opBytes,
      fn: () => {
        for (const b of batches) log.append(b);
        if (++appends % 64 === 0) log.applyRetention(Date.now());
      },
    },
    {
      name: "raw fs append (writeSync)",
      unit: "bytes",
      perOp: opBytes,
      fn: () => {
        for (const b of batches) raw.write(b);
      },
    },
    {
      name: "log read (PartitionLog.read, no tail cache)",
      unit: "bytes",
      perOp: READ_CHUNK,
      fn: () => {
        if (readOffset >= readLog.logEndOffset) readOffset = 0;
        const r = readLog.read(readOffset, READ_CHUNK);
        readOffset = r.nextOffset;
      },
    },
    {
      name: "raw fs read (readSync, fresh buffer)",
      unit: "bytes",
      perOp: READ_CHUNK,
      fn: () => {
        if (rawPos + READ_CHUNK > written) rawPos = 0;
        rawPos += nodeFs.readSync(rawFd, Buffer.allocUnsafe(READ_CHUNK), 0, READ_CHUNK, rawPos);
      },
    },
    {
      name: "raw fs read (readSync, reused buffer)",
      unit: "bytes",
      perOp: READ_CHUNK,
      fn: () => {
        if (rawPos + READ_CHUNK > written) rawPos = 0;
        rawPos += nodeFs.readSync(rawFd, rawBuf, 0, READ_CHUNK, rawPos);
      },
    },
  ];
  const cleanup = async (): Promise<void> => {
    await log.close();
    await readLog.close();
    nodeFs.closeSync(rawFd);
    nodeFs.rmSync(root, { recursive: true, force: true });
  };
  return { suites, cleanup };
}
