/**
 * A full disk (settings.fullDisks): a node's disk runs out of space for a while. Its
 * MemoryFileSystem has no size limit of its own, so the space is kept here, per node
 * (`DiskSpace`, surviving the node's processes as the disk does): while the disk is full, a
 * write that grows a file past the space left writes what fits (a short write, as write(2) does)
 * and fails with ENOSPC; an fsync of a file with unsynced bytes fails with ENOSPC (the page
 * cache could not allocate its blocks: nothing of it is made durable); a small file written
 * atomically (checkpoints, Raft's hard state) fails with ENOSPC and leaves the old one.
 * Truncations, removals, renames and reads work: they take no space. When the space comes
 * back, every call works again.
 */
import type { SeededRandom } from "../../../src/base/random.ts";
import { type FileSystem, ForwardingFileSystem, forwardFile, type LogFile } from "../../../src/storage/fs.ts";
import type { World } from "./world.ts";

/** An ENOSPC error, as node:fs throws one. */
export function noSpace(what: string): Error {
  const e = new Error(`ENOSPC: no space left on device, ${what}`) as NodeJS.ErrnoException;
  e.code = "ENOSPC";
  return e;
}

/** One node's free space: unlimited, or `freeBytes` left while full. */
export class DiskSpace {
  full = false;
  /** Bytes that still fit while full (used up by writes that grow files). */
  freeBytes = 0;
  /** Writes and fsyncs refused (for the stats). */
  refused = 0;

  fill(freeBytes: number): void {
    this.full = true;
    this.freeBytes = freeBytes;
  }

  free(): void {
    this.full = false;
  }
}

/** A node's disk as its process sees it, over `inner`, with `space`'s limit. */
export class FullableDisk extends ForwardingFileSystem {
  constructor(
    inner: FileSystem,
    private readonly space: DiskSpace,
  ) {
    super(inner);
  }

  override writeFileAtomic(path: string, data: Uint8Array): void {
    if (this.space.full) {
      this.space.refused++;
      throw noSpace(`write ${path}`);
    }
    this.inner.writeFileAtomic(path, data);
  }

  override createExclusive(path: string, data: Uint8Array): boolean {
    if (this.space.full && !this.inner.exists(path)) {
      this.space.refused++;
      throw noSpace(`create ${path}`);
    }
    return this.inner.createExclusive(path, data);
  }

  open(path: string, create: boolean): LogFile {
    const f = this.inner.open(path, create);
    const space = this.space;
    /** Whether bytes were written since the last fsync that succeeded (an fsync of nothing takes no space). */
    let dirty = false;
    return forwardFile(f, {
      write: (data, position) => {
        const grows = Math.max(0, position + data.length - f.size());
        if (space.full && grows > space.freeBytes) {
          // A short write: what fits past the end, then ENOSPC.
          const fits = Math.max(0, f.size() - position) + space.freeBytes;
          if (fits > 0) f.write(data.subarray(0, Math.min(fits, data.length)), position);
          space.freeBytes = 0;
          space.refused++;
          dirty ||= fits > 0;
          throw noSpace(`write ${path}`);
        }
        if (space.full) space.freeBytes -= grows;
        dirty = true;
        f.write(data, position);
      },
      sync: () => {
        if (space.full && dirty) {
          space.refused++;
          return Promise.reject(noSpace(`fsync ${path}`));
        }
        return f.sync().then(() => {
          dirty = false;
        });
      },
    });
  }
}

/** What the full disk schedule needs from the run. */
export interface FullDiskEnv {
  readonly world: World;
  /** The schedule's own randomness (forked from the run's only when full disks are on). */
  readonly random: SeededRandom;
  readonly nodes: ReadonlyMap<number, { readonly id: number; readonly space: DiskSpace }>;
  readonly faultMs: number;
  readonly trace: (line: string) => void;
}

/**
 * Fills one node's disk now and then until `faultMs` (0-4 KiB left), for 0.3-3 s each, one disk
 * at a time, 3-10 s apart; then frees the space. Sparse on purpose: the node halts, and while a
 * node is down the fault schedule crashes no other (at most one down at a time), so frequent full
 * disks took most of the crashes and power losses away (1-5 s apart for 0.5-5 s: 424 crashes and
 * 151 power losses in seeds 1..300, against 1,110 and 369 without them).
 */
export function scheduleFullDisks(env: FullDiskEnv): void {
  const { world, random } = env;
  const nodes = [...env.nodes.values()];
  const step = (): void => {
    if (world.now >= env.faultMs) return;
    const n = nodes[random.int(nodes.length)]!;
    const left = random.int(2) === 0 ? 0 : random.int(4097);
    const forMs = 300 + random.int(2700);
    env.trace(`fault: node ${n.id}'s disk is full (${left} bytes left) for ${forMs} ms`);
    n.space.fill(left);
    world.schedule(
      forMs,
      () => {
        n.space.free();
        env.trace(`fault: node ${n.id}'s disk has space again`);
        world.schedule(3000 + random.int(7000), step, null);
      },
      null,
    );
  };
  world.schedule(2000 + random.int(4000), step, null);
}
