/**
 * Garbage collection paced by the memory buffers hold outside the JavaScript heap.
 *
 * A broker's transient memory is almost all buffers: a produce request's received frames and
 * its joined message, the batch built from its records, a fetch's read and its encoded answer.
 * V8 (Node) counts that memory and starts a collection once it has grown by 64 MiB since the
 * last one. JavaScriptCore (Bun) counts it too but leaves it to its generational heuristics: a
 * request's buffers live across an eden collection while the request is in flight, are then
 * old, and go only at the next full collection, which comes when the heap has about doubled.
 * Writing 0.9 MiB appends as fast as 8 clients can, a Bun broker held 250–340 MiB of such dead
 * buffers and peaked at 580–640 MiB RSS (2,000 partitions) where a Node broker peaked at 320.
 *
 * The pacer does what V8 does: it reads the bytes held by ArrayBuffers and the JavaScript heap
 * (`collectableBytes`, ~26 µs under Bun) every `intervalMs`, and
 * when they have grown by `stepBytes` (`gc.external.step.bytes`) since the last collection — or
 * since their lowest point after it — runs a full collection. Live growth (a tail cache filling)
 * costs one collection per step and raises the mark; only a runtime with a collector to call
 * (Bun) gets a pacer.
 *
 * The heap counts too since the 10-minute soak (issue 14): JavaScriptCore let its own heap
 * (`heapTotal`) swing from ~40 MiB after a full collection to 140–155 MiB before the next, with
 * RSS following it 150–190 MiB above: peaks of 317–339 MiB, and a second-half RSS slope
 * (9–19 MiB/min) that was mostly the sawtooth's phase at the end. Counted with the buffers, the
 * heap stays within a step of what the last collection left: heap max 95 MiB, RSS max 252.
 *
 * Each such collection stops the broker for 25-100 ms, so under Bun the collector's own
 * (concurrent) full collections now do most of this job: `restartWithCollectorOptions` below sets
 * JavaScriptCore's options for `rill broker start`, and the pacer is a backstop for bursts.
 *
 * The soft limit (`gc.memory.soft.limit.bytes`, like Go's GOMEMLIMIT; issue 14's 60-minute soak):
 * a step of 64 MiB over a floor that rises with the tail caches (toward their 64 MiB budget) put
 * the sawtooth's peaks above the 300 MiB budget late in the hour, and a collection taken while a
 * burst's memory was still in flight freed little and raised the mark with it. At or above the
 * limit a growth of an eighth of the step is enough, at most once per `gc.memory.soft.interval.ms`;
 * below it nothing changes, so a broker that stays below (the 100k records/s benchmark, issue 20)
 * pays no pause for it. It is off by default (0): in the 60-minute soak at 240 MiB it did not keep
 * RSS under 300 MiB (max 348; test/soak/README.md, session 9), because the peaks there are bursts
 * of live heap, which no collection frees, not garbage.
 */

import { createRequire } from "node:module";
import * as v8 from "node:v8";

/** What a pacer reads and calls. */
export interface GcPacerOptions {
  /** Growth of buffer memory, in bytes, that starts a collection. */
  readonly stepBytes: number;
  /** Bytes held by ArrayBuffers now. */
  readonly read: () => number;
  /** Runs a full, synchronous collection. */
  readonly collect: () => void;
  /**
   * The soft limit (`gc.memory.soft.limit.bytes`; 0 or absent: none): at or above it a growth of
   * `softStepBytes` is enough, at most once per `softIntervalMs` of `nowMs`.
   */
  readonly softLimitBytes?: number;
  /** The step above the soft limit (default: `stepBytes` / SOFT_STEP_DIVISOR). */
  readonly softStepBytes?: number;
  /** Least time between two collections started by the soft limit (`gc.memory.soft.interval.ms`). */
  readonly softIntervalMs?: number;
  /** The clock of `softIntervalMs` (milliseconds); needed with a soft limit. */
  readonly nowMs?: () => number;
}

/** Above the soft limit the step is this many times smaller. */
export const SOFT_STEP_DIVISOR = 8;
/** The soft interval doubles after each soft collection that freed less than the soft step, up to this many times. */
export const SOFT_BACKOFF_MAX = 16;

/**
 * Decides, at each check, whether memory has grown enough to collect: by `stepBytes` over the
 * mark (what the last collection left, or the lowest point since), or — at or above the soft
 * limit, like Go's GOMEMLIMIT — by the much smaller `softStepBytes`, at most once per
 * `softIntervalMs`. The growth condition keeps it from collecting again while nothing new was
 * allocated since the last collection; the interval bounds the pauses it adds. And a soft
 * collection that freed less than the soft step (what sits above the limit is live: requests and
 * responses in flight, the caches) doubles the interval, up to SOFT_BACKOFF_MAX times, until one
 * frees a soft step again: above the limit, a broker whose memory is live pauses rarely.
 */
export class GcPacer {
  /** Buffer bytes after the last collection, or their lowest since. */
  private mark: number;
  /** When the soft limit last started a collection (-Infinity: never). */
  private lastSoftMs = Number.NEGATIVE_INFINITY;
  private readonly softLimit: number;
  private readonly softStep: number;
  private readonly softInterval: number;
  /** The soft interval is multiplied by this (1 up to SOFT_BACKOFF_MAX). */
  private backoff = 1;
  /** Collections the pacer ran (for tests and logs). */
  collections = 0;
  /** Of those, the ones the soft limit started. */
  softCollections = 0;

  constructor(private readonly opts: GcPacerOptions) {
    this.softLimit = opts.softLimitBytes ?? 0;
    this.softStep = opts.softStepBytes ?? Math.floor(opts.stepBytes / SOFT_STEP_DIVISOR);
    this.softInterval = opts.softIntervalMs ?? 0;
    if (this.softLimit > 0 && opts.nowMs === undefined) throw new Error("GcPacer: a soft limit needs a clock (nowMs)");
    this.mark = opts.read();
  }

  /** The soft interval now, backoff included (ms). */
  get softIntervalNowMs(): number {
    return this.softInterval * this.backoff;
  }

  /** One check: collects when memory is far enough above the mark; true if it did. */
  check(): boolean {
    const now = this.opts.read();
    if (now < this.mark) this.mark = now;
    const grown = now - this.mark;
    const soft = grown < this.opts.stepBytes;
    if (soft) {
      if (this.softLimit <= 0 || now < this.softLimit || grown < this.softStep) return false;
      const t = (this.opts.nowMs as () => number)();
      if (t - this.lastSoftMs < this.softInterval * this.backoff) return false;
      this.lastSoftMs = t;
      this.softCollections++;
    }
    this.opts.collect();
    this.collections++;
    this.mark = this.opts.read();
    if (soft) this.backoff = now - this.mark < this.softStep ? Math.min(this.backoff * 2, SOFT_BACKOFF_MAX) : 1;
    return true;
  }
}

/** The runtime's synchronous full collection when the pacer should call it: Bun's; none under V8. */
export function runtimeCollector(): (() => void) | null {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  return bun ? () => bun.gc(true) : null;
}

/**
 * Memory only a collection gives back, and what is live beside it: under Bun, the bytes its
 * allocator has handed out (`bun:jsc` `memoryUsage().current`: the JavaScript heap, buffers and
 * native allocations alike); elsewhere, bytes held by ArrayBuffers plus the JavaScript heap.
 *
 * `process.memoryUsage()` does not serve under Bun 1.4: it reports `arrayBuffers` as 0 and
 * counts buffers only as JavaScriptCore's extra memory in `heapUsed`, about half of their bytes
 * (32 MiB of live `Buffer.alloc` moved `heapUsed` by 15.6 MiB and the allocator by 33). Reading
 * `arrayBuffers + heapTotal`, as this did until the 60-minute soak (issue 14), the pacer saw no
 * buffer at all: a Bun broker stood at `heapUsed` 120 MiB beside a `heapTotal` of 35 MiB, and
 * its RSS swung to 340–455 MiB.
 */
export function collectableBytes(): number {
  if (bunAllocated !== null) return bunAllocated();
  const m = process.memoryUsage();
  return m.arrayBuffers + Math.max(m.heapTotal, m.heapUsed);
}

/** Under Bun, the allocator's bytes in use (`bun:jsc` memoryUsage().current); null elsewhere. */
const bunAllocated: (() => number) | null = (() => {
  if ((globalThis as { Bun?: unknown }).Bun === undefined) return null;
  const jsc = createRequire(import.meta.url)("bun:jsc") as { memoryUsage?: () => { current: number } };
  const usage = jsc.memoryUsage;
  return typeof usage === "function" ? () => usage().current : null;
})();

/** A running pacer; `stop()` ends its timer. */
export interface RunningGcPacer {
  readonly pacer: GcPacer;
  stop(): void;
}

/** The soft limit of a running pacer (`gc.memory.soft.limit.bytes`, `gc.memory.soft.interval.ms`). */
export interface SoftLimit {
  readonly bytes: number;
  readonly intervalMs: number;
}

/** How a running pacer checks, collects and times its soft limit (`startGcPacer`). */
export interface PacerStart {
  /** How often it checks (ms); default 50. */
  readonly intervalMs?: number;
  /** The collector to call; default the runtime's (`runtimeCollector`), null: none. */
  readonly collect?: (() => void) | null;
  /** The soft limit (`gc.memory.soft.limit.bytes` 0: none). */
  readonly soft?: SoftLimit;
  /** The clock of the soft limit's interval (ms); default `performance.now`. */
  readonly nowMs?: () => number;
}

/**
 * Starts a pacer of `stepBytes` (0: none) under a runtime with a collector to call; null when
 * there is nothing to pace.
 */
export function startGcPacer(stepBytes: number, start: PacerStart = {}): RunningGcPacer | null {
  const collect = start.collect === undefined ? runtimeCollector() : start.collect;
  const soft = start.soft ?? { bytes: 0, intervalMs: 0 };
  const nowMs = start.nowMs ?? (() => performance.now());
  if (stepBytes <= 0 || collect === null) return null;
  const pacer = new GcPacer({
    stepBytes,
    read: collectableBytes,
    collect,
    softLimitBytes: soft.bytes,
    softIntervalMs: soft.intervalMs,
    nowMs,
  });
  const timer = setInterval(() => pacer.check(), start.intervalMs ?? 50);
  timer.unref?.();
  return { pacer, stop: () => clearInterval(timer) };
}

/**
 * Under V8 (Node): the old generation may grow to `1 + percent/100` times what the last full
 * collection kept (`gc.heap.growing.percent`) instead of V8's own factor, which reaches 4 when
 * the heap limit is 2 GiB or more (Node's default here: 4 GiB). In the 10-minute soak (issue 14)
 * the live heap stayed at 35–40 MiB while `heapTotal` climbed 66 → 170 MiB through the second
 * half and RSS with it (15.6 MiB/min); at 50 % it went 82 → 97 MiB, RSS 6.4 MiB/min, peak 201
 * MiB instead of 259. True when the flag was set; false under Bun (JavaScriptCore; the pacer
 * above), for 0, or where the runtime refuses V8 flags.
 */
export function limitV8HeapGrowth(percent: number): boolean {
  if (percent <= 0 || (globalThis as { Bun?: unknown }).Bun !== undefined) return false;
  try {
    v8.setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`);
    return true;
  } catch {
    return false;
  }
}

/** The environment variables through which Bun sets JavaScriptCore's collector options. */
export const JSC_EDEN_RATIO_ENV = "BUN_JSC_minEdenToOldGenerationRatio";
export const JSC_GENERATIONAL_ENV = "BUN_JSC_useGenerationalGC";
export const BUN_GC_TIMER_INTERVAL_ENV = "BUN_GC_TIMER_INTERVAL";
export const BUN_GC_TIMER_DISABLE_ENV = "BUN_GC_TIMER_DISABLE";

/** The collector options `rill broker start` applies under Bun. */
export interface CollectorOptions {
  /** `gc.bun.eden.ratio`; 0: JavaScriptCore's own. */
  readonly edenRatio: number;
  /** `gc.bun.generational`; false: every collection is a full (concurrent) one. */
  readonly generational: boolean;
  /** `gc.bun.timer.interval.ms`; 0: off; absent or Bun's own 1000: left as it is. */
  readonly timerIntervalMs?: number;
}

/** Bun's own period of its collection timer (its GarbageCollectionController), in ms. */
export const BUN_GC_TIMER_DEFAULT_MS = 1000;

/** What `restartWithCollectorOptions` reads of the process and calls. */
export interface ProcessImage {
  readonly bun: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly execPath: string;
  readonly execArgv: readonly string[];
  readonly argv: readonly string[];
  /** Replaces the process with `file` run with `args` and `env` (Bun's `process.execve`); never returns. */
  readonly execve: ((file: string, args: string[], env: NodeJS.ProcessEnv) => void) | undefined;
}

function thisProcess(): ProcessImage {
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => void }).execve;
  return {
    bun: (globalThis as { Bun?: unknown }).Bun !== undefined,
    env: process.env,
    execPath: process.execPath,
    execArgv: process.execArgv,
    argv: process.argv,
    execve: typeof execve === "function" ? execve.bind(process) : undefined,
  };
}

/**
 * `gc.bun.eden.ratio` and `gc.bun.generational` (issues 14 and 20). JavaScriptCore collects young
 * objects often and old ones only when the room left for young ones falls below
 * `minEdenToOldGenerationRatio` (1/3) of the heap's limit, a limit that grows with what young
 * collections promote. A request's buffers are promoted while the request is in flight, so under
 * steady produce they piled up as old garbage until the heap had grown several times over (broker
 * RSS 238-319 MiB at 100k records/s, 20 s). The synchronous full collections of the pacer above cut
 * that to 203-227 MiB, but each stops the broker for 25-100 ms, and those stops were the
 * end-to-end p99. At 0.9 the collector's own full collections — concurrent, with pauses of a few
 * ms — come soon enough: 149-158 MiB, p99 7.7 ms beside the pacer's 8.9 (medians of 3 runs each,
 * one A/B run). Without generations (`useGenerationalGC` off) every collection is a full one:
 * 139-142 MiB, but a p99 of 26 ms in the same run.
 *
 * JavaScriptCore reads its options from the environment when the process starts, so this restarts
 * the process in place (execve: the same pid, descriptors and arguments) with the variables set.
 * A variable already set is left as it is (the operator's value wins); when every one it would
 * set is there — as in the restarted process — it does nothing, and so outside Bun, for options
 * that are JavaScriptCore's own, or where the runtime has no execve; then it returns false. Call
 * it before anything else starts (no listener, no file open).
 */
export function restartWithCollectorOptions(opts: CollectorOptions, image: ProcessImage = thisProcess()): boolean {
  if (!image.bun || image.execve === undefined) return false;
  const wanted: Record<string, string> = {};
  if (opts.edenRatio > 0) wanted[JSC_EDEN_RATIO_ENV] = String(opts.edenRatio);
  if (!opts.generational) wanted[JSC_GENERATIONAL_ENV] = "false";
  const timer = opts.timerIntervalMs ?? BUN_GC_TIMER_DEFAULT_MS;
  if (timer === 0) wanted[BUN_GC_TIMER_DISABLE_ENV] = "1";
  else if (timer !== BUN_GC_TIMER_DEFAULT_MS) wanted[BUN_GC_TIMER_INTERVAL_ENV] = String(timer);
  const missing = Object.entries(wanted).filter(([k]) => image.env[k] === undefined);
  if (missing.length === 0) return false;
  image.execve(image.execPath, [image.execPath, ...image.execArgv, ...image.argv.slice(1)], {
    ...image.env,
    ...Object.fromEntries(missing),
  });
  return true;
}
