/**
 * A failing disk stops the broker (fail-stop), as Kafka stops a broker whose only log directory
 * failed: Rill keeps its partition logs and its metadata log in one data directory, and after a
 * write or an fsync failed — no space left (ENOSPC, EDQUOT), an I/O error (EIO), a file system
 * turned read-only (EROFS) — what the failed call left on the disk is unknown (a short write's
 * bytes past a segment's end, an fsync that dropped dirty pages), so nothing more may be written
 * or acknowledged from this process.
 *
 * `DiskFailureWatch` wraps the broker's FileSystem: the first such failure of any call that
 * changes the disk is reported once (`onFailure`: the broker shell halts the process) and, from
 * then on, every call that changes the disk throws it again, so the process writes nothing more
 * while it stops. Reads keep working. The next process recovers the directory as after a crash
 * (no clean-shutdown marker: segments past the recovery point are validated, a torn tail is cut);
 * while the disk is still full its start fails the same way, and a supervisor restarts it once
 * space is freed. Without a failure nothing changes: every call passes through.
 */
import { ForwardingFileSystem, type FileSystem, forwardFile, type LogFile } from "./fs.ts";

/** errno codes of a failing disk (not of a caller's mistake, as ENOENT). */
const DISK_FAILURE_CODES: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT", "EIO", "EROFS"]);

/** Whether `e` is a failure of the disk (see DISK_FAILURE_CODES). */
export function isDiskFailure(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && DISK_FAILURE_CODES.has(code);
}

/** The FileSystem of a broker that stops at its disk's first failure (see the header). */
export class DiskFailureWatch extends ForwardingFileSystem {
  /** The first failure, once one happened. */
  failure: Error | null = null;

  constructor(
    inner: FileSystem,
    private readonly onFailure: (e: Error) => void,
  ) {
    super(inner);
  }

  /** Runs a call that changes the disk: refused after a failure; a failure is reported. */
  private change<T>(fn: () => T): T {
    if (this.failure) throw this.failure;
    try {
      return fn();
    } catch (e) {
      throw this.failed(e);
    }
  }

  /** Notes `e` if it is the disk's first failure; returns it. */
  private failed(e: unknown): unknown {
    if (this.failure === null && isDiskFailure(e)) {
      this.failure = e as Error;
      this.onFailure(this.failure);
    }
    return e;
  }

  override mkdirp(path: string): void {
    this.change(() => this.inner.mkdirp(path));
  }
  override rm(path: string): void {
    this.change(() => this.inner.rm(path));
  }
  override rename(from: string, to: string): void {
    this.change(() => this.inner.rename(from, to));
  }
  override writeFileAtomic(path: string, data: Uint8Array): void {
    this.change(() => this.inner.writeFileAtomic(path, data));
  }
  override createExclusive(path: string, data: Uint8Array): boolean {
    return this.change(() => this.inner.createExclusive(path, data));
  }

  open(path: string, create: boolean): LogFile {
    const f = create ? this.change(() => this.inner.open(path, true)) : this.inner.open(path, false);
    // write and truncate check inline, without `change`'s closure: write is on the produce path.
    return forwardFile(f, {
      write: (data, position) => {
        if (this.failure) throw this.failure;
        try {
          f.write(data, position);
        } catch (e) {
          throw this.failed(e);
        }
      },
      truncate: (length) => {
        if (this.failure) throw this.failure;
        try {
          f.truncate(length);
        } catch (e) {
          throw this.failed(e);
        }
      },
      sync: () => {
        if (this.failure) return Promise.reject(this.failure);
        return f.sync().catch((e: unknown) => {
          throw this.failed(e);
        });
      },
    });
  }
}
