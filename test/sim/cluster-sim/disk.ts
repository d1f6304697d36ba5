/**
 * Disk faults of the cluster simulator, over a node's MemoryFileSystem (whose power loss keeps
 * only synced bytes): a slow fsync (each one completes after a delay on the simulated clock; a
 * process that dies first never made it durable) and a torn last write (a power loss keeps part
 * of a file's unsynced tail, as a disk that wrote some of its sectors).
 */
import type { SeededRandom } from "../../../src/base/random.ts";
import type { Timers } from "../../../src/base/timers.ts";
import { ForwardingFileSystem, forwardFile, type LogFile, type MemoryFileSystem } from "../../../src/storage/fs.ts";

/** The disk knobs of one node, changed by the fault schedule. */
export interface DiskFaults {
  /** Extra time each fsync takes (0: at once). */
  slowSyncMs: number;
}

/** A node's disk as its process sees it: the MemoryFileSystem, with fsyncs on the simulated clock. */
export class SimDisk extends ForwardingFileSystem {
  constructor(
    inner: MemoryFileSystem,
    private readonly timers: Timers,
    private readonly faults: DiskFaults,
  ) {
    super(inner);
  }

  open(path: string, create: boolean): LogFile {
    const f = this.inner.open(path, create);
    const { timers, faults, inner } = this;
    return forwardFile(f, {
      sync: () =>
        faults.slowSyncMs <= 0
          ? f.sync()
          : new Promise<void>((resolve, reject) => {
              const delay = faults.slowSyncMs;
              timers.setTimeout(() => {
                // What is on the file when the fsync completes is durable (the process is alive:
                // its timers died with it otherwise).
                try {
                  void f.sync().then(resolve, reject);
                } catch {
                  // Closed meanwhile (a segment deleted or recovered): sync it by its path, if it is still there.
                  try {
                    if (inner.exists(path)) void inner.open(path, false).sync();
                  } catch {
                    // gone
                  }
                  resolve();
                }
              }, delay);
            }),
    });
  }
}

/** Every file under `dir`, recursively. */
function filesUnder(fs: MemoryFileSystem, dir: string): string[] {
  const out: string[] = [];
  for (const name of fs.readdir(dir)) {
    const p = fs.join(dir, name);
    if (fs.isDir(p)) out.push(...filesUnder(fs, p));
    else out.push(p);
  }
  return out;
}

/**
 * A power loss that tears one write: every file goes back to its synced bytes (`crash`), except
 * one file with unsynced bytes (chosen by `random`), which keeps a prefix of them. Returns what
 * it tore, or null when nothing was unsynced.
 */
export function tornPowerLoss(fs: MemoryFileSystem, dataDir: string, random: SeededRandom): string | null {
  const before = new Map<string, Uint8Array>();
  for (const p of filesUnder(fs, dataDir)) if (p.endsWith(".log")) before.set(p, fs.readFile(p));
  fs.crash();
  const torn: Array<{ path: string; durable: number; data: Uint8Array }> = [];
  for (const [path, data] of before) {
    // The unsynced writes start where the file first differs from its synced bytes: after a
    // truncation and new appends (a follower's), that is the cut, not the synced length. A
    // prefix of them keeps the cut and the first new bytes, never the new bytes past the old end
    // without those before them.
    const synced = fs.readFile(path);
    let durable = 0;
    while (durable < synced.length && durable < data.length && synced[durable] === data[durable]) durable++;
    if (data.length > durable + 1) torn.push({ path, durable, data });
  }
  if (torn.length === 0) return null;
  const t = torn[random.int(torn.length)]!;
  const keep = 1 + random.int(t.data.length - t.durable - 1);
  const f = fs.open(t.path, false);
  f.truncate(t.durable);
  f.write(t.data.subarray(t.durable, t.durable + keep), t.durable);
  void f.sync();
  f.close();
  return `${t.path}: kept ${keep} of ${t.data.length - t.durable} unsynced bytes`;
}
