/**
 * Every partition log under one data directory: `<dataDir>/<topic>-<partition>/`.
 *
 * The manager holds the directory's lock file (`.lock`: the owner's pid and the process start
 * time) so two live processes never open one directory — and a lock left by a process that died
 * (kill -9, or its pid since reused) is taken over at once; writes `.clean-shutdown` on a clean close so the next open can skip
 * recovery, and runs the periodic work — flush.ms fsyncs, retention, compaction — when the shell
 * calls `tick(now)`. It owns no timer: the broker ticks it from a real timer, tests from a
 * ManualClock.
 */
import type { Clock } from "../base/clock.ts";
import { rillError } from "../base/errors.ts";
import { defaultTopicConfig, type TopicConfig } from "../config/schema.ts";
import { compactLog, type CleanResult, type Pause } from "./cleaner.ts";
import { FileHandlePool, type FileSystem } from "./fs.ts";
import { PartitionLog } from "./partition-log.ts";
import { TailCacheBudget } from "./tail-cache.ts";

/** How the manager is opened. */
export interface LogManagerOptions {
  readonly fs: FileSystem;
  readonly dataDir: string;
  readonly clock: Clock;
  /** The effective configuration of a topic (from the metadata), for logs found on disk. */
  readonly topicConfig: (topic: string) => TopicConfig | undefined;
  readonly tailCacheBytes: number;
  /** log.tail.cache.total.bytes: what all partitions' tail caches hold together; default unbounded. */
  readonly tailCacheTotalBytes?: number;
  readonly retentionCheckIntervalMs: number;
  readonly cleanerBackoffMs: number;
  readonly cleanerEnable: boolean;
  /** producer.id.expiration.ms; default Kafka's 24 h. */
  readonly producerIdExpirationMs?: number;
  /**
   * Descriptors kept open for idle segments (log.file.handles.max); each partition's active
   * segment stays open besides. Default: no pool, every segment keeps its descriptor.
   */
  readonly fileHandlesMax?: number;
  /** Yields between chunks of compaction work. */
  readonly pause: Pause;
  /** This process's id, written into the lock file. */
  readonly pid: number;
  /** Whether a process with this id is running (a lock left by a dead one is taken over). */
  readonly isProcessAlive: (pid: number) => boolean;
  /**
   * When a process started (Linux: /proc/<pid>/stat field 22), or null if unknown. Written into
   * the lock beside the pid, so a lock whose pid now names another process (reused after the
   * holder died) is taken over. Absent: the pid alone decides.
   */
  readonly processStartTime?: (pid: number) => string | null;
  /**
   * The running machine's boot id (Linux: /proc/sys/kernel/random/boot_id), kept in `.boot-id`
   * so the next open knows whether the machine restarted since (issue 21, `uncleanShutdown`).
   * Absent or null: unknown.
   */
  readonly bootId?: string | null;
}

/** A topic-partition. */
export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

const LOCK = ".lock";
/**
 * Logs a closing broker closes at once (Kafka closes them on a pool of
 * num.recovery.threads.per.data.dir threads per folder): enough to keep the disk's queue full,
 * few enough that the files open at once stay far below the descriptor limit.
 */
const CLOSE_CONCURRENCY = 32;
const CLEAN = ".clean-shutdown";
const BOOT_ID = ".boot-id";
/** The incarnation id of the last process on this data dir that registered with the controller. */
const REGISTERED_INCARNATION = ".registered-incarnation";

/** Folder name of a partition. */
export function partitionDirName(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

/** Topic and partition from a folder name, or null. Topic names may contain '-'. */
export function parsePartitionDirName(name: string): TopicPartition | null {
  const m = /^(.+)-(\d+)$/.exec(name);
  return m ? { topic: m[1]!, partition: Number(m[2]) } : null;
}

/** The logs of one data directory. */
export class LogManager {
  private readonly logs = new Map<string, { tp: TopicPartition; log: PartitionLog }>();
  private readonly wasClean: boolean;
  /** The boot id `.boot-id` held at open (the previous process's machine boot); null: none. */
  private readonly previousBootId: string | null;
  private readonly previousIncarnation: string | null;
  /** The FileSystem the partition logs use: a FileHandlePool over `opts.fs` when bounded. */
  private readonly files: FileSystem;
  private lastRetentionMs: number;
  private nextCleanMs: number;
  private cleanerRunning: Promise<void> | null = null;
  private closed = false;
  private readonly tailCacheBudget: TailCacheBudget;
  /** Results of compaction passes (for metrics and tests). */
  readonly cleanerHistory: Array<{ topic: string; partition: number; result: CleanResult }> = [];

  private constructor(private readonly opts: LogManagerOptions) {
    const { fs, dataDir } = opts;
    this.files = opts.fileHandlesMax !== undefined ? new FileHandlePool(fs, opts.fileHandlesMax) : fs;
    this.tailCacheBudget = new TailCacheBudget(opts.tailCacheTotalBytes ?? Number.MAX_SAFE_INTEGER);
    fs.mkdirp(dataDir);
    const fresh = fs.readdir(dataDir).length === 0;
    this.lock();
    const cleanPath = fs.join(dataDir, CLEAN);
    this.wasClean = fresh || fs.exists(cleanPath);
    fs.rm(cleanPath);
    const bootPath = fs.join(dataDir, BOOT_ID);
    this.previousBootId = fs.exists(bootPath) ? Buffer.from(fs.readFile(bootPath)).toString("utf8").trim() : null;
    // The boot is recorded only when this start lost nothing: after an unclean shutdown every
    // later process of this boot reports one too, until one closes cleanly. Otherwise a process
    // killed before it registered would pass the loss on to its successor as a clean kill on the
    // same boot, and the controller would keep it electable without the writes the power loss
    // took (cluster-sim seed 2206).
    if (opts.bootId && !this.uncleanShutdown) fs.writeFileAtomic(bootPath, Buffer.from(`${opts.bootId}\n`));
    else if (!opts.bootId) fs.rm(bootPath);
    const registeredPath = fs.join(dataDir, REGISTERED_INCARNATION);
    this.previousIncarnation = fs.exists(registeredPath) ? Buffer.from(fs.readFile(registeredPath)).toString("utf8").trim() || null : null;
    const now = opts.clock.nowMs();
    this.lastRetentionMs = now;
    this.nextCleanMs = now;
    this.loadExisting();
  }

  /** Locks `dataDir` and opens every partition log in it. */
  static open(opts: LogManagerOptions): LogManager {
    return new LogManager(opts);
  }

  /**
   * The incarnation id of the last process on this data dir that registered with the controller
   * (`recordRegistration`), or null. This process holds the directory's lock, so that process is
   * gone: the controller may replace its registration at once instead of waiting for its session
   * to lapse (RegisterBroker's previous_incarnation_id).
   */
  get previousIncarnationId(): string | null {
    return this.previousIncarnation;
  }

  /**
   * Records that this process registered as `incarnationId` (see `previousIncarnationId`). The
   * registration reported this start's unclean shutdown, if any: the controller took the broker
   * out of every ISR and ELR, and it rejoins one only by catching up again. So the loss is dealt
   * with, and the boot is recorded: a later process killed on this boot lost nothing (the page
   * cache keeps its writes) and reports a clean start (cluster-sim seed 5508: a broker that had
   * rejoined every ISR was still reported unclean after a kill, left the ELR, and the replica
   * that had lost the writes was elected instead).
   */
  recordRegistration(incarnationId: string): void {
    const { fs, dataDir, bootId } = this.opts;
    fs.writeFileAtomic(fs.join(dataDir, REGISTERED_INCARNATION), Buffer.from(`${incarnationId}\n`));
    if (bootId) fs.writeFileAtomic(fs.join(dataDir, BOOT_ID), Buffer.from(`${bootId}\n`));
  }

  /** True if the previous process closed this directory cleanly (or there was none). */
  get openedClean(): boolean {
    return this.wasClean;
  }

  /**
   * KIP-966's unclean shutdown, as the broker reports it at registration: the previous process
   * may have lost writes it had acknowledged. Not when it closed cleanly; nor when it was killed
   * (kill -9, a crash) on the machine boot this process runs on: every write it acknowledged
   * had returned from write(2), so the page cache kept it. After a machine restart (power loss,
   * OS crash) or with the boot unknown, writes not yet fsynced may be gone.
   */
  get uncleanShutdown(): boolean {
    if (this.wasClean) return false;
    const now = this.opts.bootId ?? null;
    return now === null || this.previousBootId === null || this.previousBootId !== now;
  }

  private lock(): void {
    const { fs, dataDir, pid } = this.opts;
    const path = fs.join(dataDir, LOCK);
    const started = this.opts.processStartTime?.(pid) ?? null;
    const body = Buffer.from(started === null ? String(pid) : `${pid} ${started}`);
    if (fs.createExclusive(path, body)) return;
    const [holderText, holderStart] = Buffer.from(fs.readFile(path)).toString("utf8").trim().split(/\s+/);
    const holder = Number(holderText);
    if (Number.isInteger(holder) && holder > 0 && this.holderAlive(holder, holderStart)) {
      throw rillError("LOG_DIR_LOCKED", `data directory ${dataDir} is locked by running process ${holder} (${path})`);
    }
    fs.writeFileAtomic(path, body);
  }

  /** Whether the lock's holder still runs: its pid is alive and, if recorded, started when the lock says. */
  private holderAlive(holder: number, startTime: string | undefined): boolean {
    if (!this.opts.isProcessAlive(holder)) return false;
    const now = startTime ? this.opts.processStartTime?.(holder) : undefined;
    return now === undefined || now === null || now === startTime;
  }

  private loadExisting(): void {
    const { fs, dataDir } = this.opts;
    for (const name of fs.readdir(dataDir)) {
      const tp = parsePartitionDirName(name);
      if (!tp || !fs.isDir(fs.join(dataDir, name))) continue;
      const cfg = this.opts.topicConfig(tp.topic) ?? defaultTopicConfig;
      this.openLog(tp, cfg, !this.wasClean);
    }
  }

  private openLog(tp: TopicPartition, config: TopicConfig, recover: boolean): PartitionLog {
    const { fs, dataDir, clock, tailCacheBytes } = this.opts;
    const dir = fs.join(dataDir, partitionDirName(tp.topic, tp.partition));
    const log = PartitionLog.open({
      fs: this.files,
      dir,
      clock,
      config,
      tailCacheBytes,
      tailCacheBudget: this.tailCacheBudget,
      recover,
      ...(this.opts.producerIdExpirationMs !== undefined ? { producerIdExpirationMs: this.opts.producerIdExpirationMs } : {}),
    });
    this.logs.set(key(tp.topic, tp.partition), { tp, log });
    return log;
  }

  /** Descriptors the partition logs hold now, when a handle pool bounds them (else null). */
  get openFileHandles(): number | null {
    return this.files instanceof FileHandlePool ? this.files.openCount : null;
  }

  /** Partitions this directory holds. */
  get partitionCount(): number {
    return this.logs.size;
  }

  /**
   * The tail caches' shared budget and what they hold (`rill_memory_budget_bytes{pool="tail_cache"}`
   * and `rill_memory_budget_used_bytes{pool="tail_cache"}`).
   */
  get tailCacheMemory(): { readonly bytesMax: number; readonly bytesUsed: number; readonly evictions: number } {
    const b = this.tailCacheBudget;
    return { bytesMax: b.bytesMax, bytesUsed: b.bytesUsed, evictions: b.evictions };
  }

  /** The log of a partition, if this directory holds it. */
  get(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(key(topic, partition))?.log;
  }

  /** Every partition held, with its log. */
  all(): Array<{ tp: TopicPartition; log: PartitionLog }> {
    return [...this.logs.values()];
  }

  /** Creates (or returns the existing) log of a partition. */
  create(topic: string, partition: number, config: TopicConfig): PartitionLog {
    this.checkOpen();
    const existing = this.get(topic, partition);
    if (existing) return existing;
    return this.openLog({ topic, partition }, config, false);
  }

  /** Deletes a partition's log and its folder. */
  delete(topic: string, partition: number): boolean {
    const entry = this.logs.get(key(topic, partition));
    if (!entry) return false;
    entry.log.delete();
    this.logs.delete(key(topic, partition));
    return true;
  }

  /** Applies a topic's new configuration to its logs. */
  updateTopicConfig(topic: string, config: TopicConfig): void {
    for (const { tp, log } of this.logs.values()) if (tp.topic === topic) log.updateConfig(config);
  }

  /**
   * Runs what is due at `nowMs`: fsyncs past flush.ms, retention every
   * log.retention.check.interval.ms, and a compaction pass when the cleaner is idle and its
   * backoff has passed. Resolves when the fsyncs it started are done (compaction keeps running
   * in the background; `idle()` waits for it).
   */
  async tick(nowMs: number): Promise<void> {
    if (this.closed) return;
    const flushes: Array<Promise<void>> = [];
    for (const { log } of this.logs.values()) {
      const f = log.maybeFlush(nowMs);
      if (f) flushes.push(f.catch(() => {}));
    }
    if (nowMs - this.lastRetentionMs >= this.opts.retentionCheckIntervalMs) {
      this.lastRetentionMs = nowMs;
      for (const { log } of this.logs.values()) {
        log.applyRetention(nowMs);
        log.expireProducers(nowMs);
      }
    }
    if (this.opts.cleanerEnable && !this.cleanerRunning && nowMs >= this.nextCleanMs) {
      this.cleanerRunning = this.cleanAll(nowMs).finally(() => {
        this.cleanerRunning = null;
      });
    }
    await Promise.all(flushes);
  }

  private async cleanAll(nowMs: number): Promise<void> {
    let cleaned = false;
    for (const { tp, log } of [...this.logs.values()]) {
      if (this.closed) return;
      const result = await compactLog(log, nowMs, this.opts.pause);
      if (result && result.segments > 0) {
        cleaned = true;
        this.cleanerHistory.push({ topic: tp.topic, partition: tp.partition, result });
      }
    }
    this.nextCleanMs = cleaned ? nowMs : nowMs + this.opts.cleanerBackoffMs;
  }

  /** Resolves when no compaction pass is running. */
  async idle(): Promise<void> {
    while (this.cleanerRunning) await this.cleanerRunning;
  }

  /** Flushes and closes every log, marks the directory clean, and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.idle();
    const errors: unknown[] = [];
    // Several logs close at once, so their fsyncs overlap (each log's own run together too).
    const logs = [...this.logs.values()];
    let next = 0;
    const closer = async (): Promise<void> => {
      while (next < logs.length) {
        try {
          await logs[next++]!.log.close();
        } catch (e) {
          errors.push(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CLOSE_CONCURRENCY, logs.length) }, closer));
    const { fs, dataDir } = this.opts;
    if (errors.length === 0) fs.writeFileAtomic(fs.join(dataDir, CLEAN), Buffer.from("clean\n"));
    fs.rm(fs.join(dataDir, LOCK));
    if (errors.length > 0) throw errors[0];
  }

  private checkOpen(): void {
    if (this.closed) throw rillError("LOG_CLOSED", "log manager is closed");
  }
}

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
