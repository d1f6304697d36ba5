/**
 * The simulated world of the cluster simulator: one clock, one queue of timed events, the
 * timers each node process sees (dead with the process), and a network between the nodes
 * (seeded delay, drop, one-way cuts and partitions). Everything runs in one JavaScript thread:
 * an event runs, then every promise it settled runs to completion (microtasks drain before the
 * next event), so a run is a function of its seed.
 *
 * Events run in bursts without a turn of Node's event loop each (a turn costs a syscall, and on
 * a loaded machine often the CPU): each event runs in a `process.nextTick` queued by a microtask
 * after the previous one, and Node runs a nextTick only once the microtask queue is empty. Between
 * bursts the loop turns once (`setImmediate`), so Node reports unhandled rejections (the run stops
 * on one, at most a burst later) and serves its own I/O (the test runner's).
 */
import { AssertionError } from "../../../src/base/assert.ts";
import { ManualClock } from "../../../src/base/clock.ts";
import type { SeededRandom } from "../../../src/base/random.ts";
import type { Timers } from "../../../src/base/timers.ts";
import { isDiskFailure } from "../../../src/storage/disk-failure.ts";

/** One run of a node process: its timers and network deliveries die with it. */
export class Incarnation {
  alive = true;
  constructor(
    readonly node: number,
    readonly n: number,
  ) {}
}

interface SimEvent {
  at: number;
  seq: number;
  fn: () => void;
  owner: Incarnation | null;
  cancelled: boolean;
}

/** What a cancelled event runs (never: it is skipped); its own closure is released. */
const CANCELLED = (): void => {};

/** Unix time at simulated time 0. */
export const SIM_EPOCH_MS = 1_700_000_000_000;

/** Lets every pending microtask (promise reaction) run, and the event loop turn once. */
function turnEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Events of one burst (see the header). */
const BURST_EVENTS = 256;

/** The queue is swept of cancelled events only past this many (see World.cancel). */
const COMPACT_MIN = 1024;

/** The clock and the event queue (a binary heap on time, then scheduling order). */
/** Events queued at once beyond which a run is stopped as a livelock (see `World.schedule`). */
const QUEUE_MAX = 100_000;

export class World {
  readonly clock = new ManualClock(SIM_EPOCH_MS);
  private readonly heap: SimEvent[] = [];
  private seq = 0;
  /** Cancelled events in the heap. */
  private cancelledQueued = 0;
  events = 0;
  /** The first failure an event threw (or a rejection nobody handled): the run stops. */
  failure: Error | null = null;

  /** Simulated milliseconds since the start. */
  get now(): number {
    return this.clock.nowMs() - SIM_EPOCH_MS;
  }

  schedule(delayMs: number, fn: () => void, owner: Incarnation | null): SimEvent {
    const e: SimEvent = { at: this.now + Math.max(0, delayMs), seq: this.seq++, fn, owner, cancelled: false };
    this.push(e);
    if (this.heap.length > QUEUE_MAX && this.failure === null) {
      // A run's queue holds about a thousand events (1,085-1,173 at most on seeds 1, 2 with
      // reassignments and broker-only nodes, and the speed workload's 7): this many is a loop of
      // calls or timers that outruns simulated time (seed 110), which would otherwise run until
      // the process is out of memory. It stops the run as a crash.
      this.failure = new Error(
        `livelock: ${this.heap.length} events queued at ${this.now} ms (calls or timers that outrun simulated time)`,
      );
    }
    return e;
  }

  /**
   * Cancels an event: it will not run. Its closure is released now, and once cancelled events
   * are most of the queue (a call's timeout is cancelled by its answer, but would stay queued for
   * the whole timeout) they are swept out. Neither changes the order of the events that run.
   */
  cancel(e: SimEvent): void {
    if (e.cancelled) return; // cancelled already, or out of the queue
    e.cancelled = true;
    e.fn = CANCELLED;
    if (++this.cancelledQueued > COMPACT_MIN && this.cancelledQueued * 2 > this.heap.length) this.compact();
  }

  /** Drops the cancelled events (and those of dead processes) from the queue and rebuilds the heap. */
  private compact(): void {
    const h = this.heap;
    let n = 0;
    for (let i = 0; i < h.length; i++) {
      const e = h[i]!;
      if (e.cancelled) continue;
      if (e.owner !== null && !e.owner.alive) {
        e.cancelled = true; // out of the queue (see `cancel`)
        continue;
      }
      h[n++] = e;
    }
    h.length = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
    this.cancelledQueued = 0;
  }

  /** Runs events until simulated time `untilMs` (or a failure). */
  async runUntil(untilMs: number): Promise<void> {
    while (this.failure === null && (await this.burst(untilMs))) await turnEventLoop();
    if (this.failure === null && untilMs > this.now) this.clock.set(SIM_EPOCH_MS + untilMs);
  }

  /**
   * Runs up to BURST_EVENTS events due by `untilMs`, each once every microtask before it ran;
   * resolves (once those of the last one ran too) with whether events due by then remain.
   */
  private burst(untilMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let left = BURST_EVENTS;
      const next = (): void => void process.nextTick(step);
      const step = (): void => {
        for (;;) {
          const e = this.heap[0];
          if (this.failure !== null || e === undefined || e.at > untilMs) return resolve(false);
          if (left === 0) return resolve(true);
          this.pop();
          if (e.cancelled) {
            this.cancelledQueued--;
            continue;
          }
          // Out of the queue: cancelling it now (a timer that fired) changes nothing.
          e.cancelled = true;
          if (e.owner !== null && !e.owner.alive) continue;
          if (e.at > this.now) this.clock.set(SIM_EPOCH_MS + e.at);
          this.events++;
          left--;
          try {
            e.fn();
          } catch (err) {
            // A disk failure halted its process (DiskFailureWatch; a real broker exits at once):
            // the error the dead process's code carries on with is not the run's failure.
            if (!isDiskFailure(err)) this.failure ??= err as Error;
          }
          // The next event once the microtask queue is empty: a nextTick runs only then.
          queueMicrotask(next);
          return;
        }
      };
      process.nextTick(step);
    });
  }

  private push(e: SimEvent): void {
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const q = h[p]!;
      if (!before(e, q)) break;
      h[i] = q;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    this.siftDown(0);
  }

  /** Moves the event at `i` down to its place. */
  private siftDown(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let m = l;
      let c = h[l]!;
      if (r < n && before(h[r]!, c)) {
        m = r;
        c = h[r]!;
      }
      if (!before(c, e)) break;
      h[i] = c;
      i = m;
    }
    h[i] = e;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** The timers one node process (or client) sees: they stop firing when it dies. */
export class SimTimers implements Timers {
  constructor(
    private readonly world: World,
    private readonly owner: Incarnation | null,
  ) {}

  setTimeout(fn: () => void, ms: number): unknown {
    return this.world.schedule(ms, fn, this.owner);
  }

  clearTimeout(handle: unknown): void {
    if (handle) this.world.cancel(handle as SimEvent);
  }

  setInterval(fn: () => void, ms: number): unknown {
    const every = Math.max(1, ms);
    const handle = { current: null as SimEvent | null, cancelled: false };
    const arm = (): void => {
      handle.current = this.world.schedule(
        every,
        () => {
          if (handle.cancelled) return;
          arm();
          fn();
        },
        this.owner,
      );
    };
    arm();
    return handle;
  }

  clearInterval(handle: unknown): void {
    if (!handle) return;
    const h = handle as { current: SimEvent | null; cancelled: boolean };
    h.cancelled = true;
    if (h.current) this.world.cancel(h.current);
  }
}

/** The network's fault knobs. */
export interface NetFaults {
  dropRate: number;
  minDelayMs: number;
  maxDelayMs: number;
  /**
   * Messages delivered twice, the copy after its own delay (so it may arrive after later ones):
   * one-way messages, the requests of calls (the receiver handles both; the first answer to come
   * back settles the call) and their answers. 0 or absent: none (and no random number drawn).
   */
  duplicateRate?: number;
}

/**
 * A call in flight (SimNet.call). Its steps are SimNet's methods over this state rather than
 * closures made per call: under tsx every named closure costs an Object.defineProperty (esbuild's
 * keepNames), a cost of every call.
 */
interface PendingCall {
  settled: boolean;
  timer: SimEvent | null;
  readonly from: number;
  readonly to: number;
  readonly caller: Incarnation | null;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** An RPC that got no answer: the peer is down, unreachable, or the answer was lost. */
export class SimNetError extends Error {}

/** Node ids of clients: never cut off by partitions (only from crashed nodes). */
export const CLIENT_ID = 100;

/**
 * Messages between nodes. A message is delivered after a seeded delay (so messages reorder),
 * unless dropped at random or by a cut link (checked when sent and when it arrives).
 */
export class SimNet {
  private readonly cut = new Set<number>();
  /** Links whose answers to calls are lost (the calls themselves arrive; one-way messages pass). */
  private readonly answersCut = new Set<number>();
  sent = 0;
  dropped = 0;
  /** Copies made by `duplicateRate`. */
  duplicated = 0;

  constructor(
    private readonly world: World,
    private readonly random: SeededRandom,
    readonly faults: NetFaults,
  ) {}

  private delay(): number {
    const f = this.faults;
    return f.minDelayMs + this.random.int(f.maxDelayMs - f.minDelayMs + 1);
  }

  /** Whether to deliver this message twice (`NetFaults.duplicateRate`). */
  private duplicate(from: number, to: number): boolean {
    const rate = this.faults.duplicateRate ?? 0;
    if (from === to || rate <= 0 || this.random.next() >= rate) return false;
    this.duplicated++;
    return true;
  }

  private lost(from: number, to: number): boolean {
    if (from === to) return false;
    if (this.cut.has(from * 1000 + to)) return true;
    return from !== CLIENT_ID && to !== CLIENT_ID && this.random.next() < this.faults.dropRate;
  }

  /**
   * One-way message: `deliver` runs at the receiver after the delay, if the link holds and the
   * receiver's process is the same one (`target()` is read on arrival). Returns whether it arrived.
   */
  send(
    from: number,
    to: number,
    target: () => Incarnation | null,
    deliver: () => void,
    sender: Incarnation | null,
    onOutcome?: (ok: boolean) => void,
  ): void {
    this.sent++;
    if (this.lost(from, to)) {
      this.dropped++;
      onOutcome?.(false);
      return;
    }
    this.world.schedule(
      this.delay(),
      () => {
        const t = target();
        if (t === null || !t.alive || this.cut.has(from * 1000 + to)) {
          this.dropped++;
          onOutcome?.(false);
          return;
        }
        deliver();
        onOutcome?.(true);
      },
      from === to ? sender : null,
    );
    // The copy reports no outcome: the sender hears of its message once.
    if (this.duplicate(from, to))
      this.world.schedule(
        this.delay(),
        () => {
          const t = target();
          if (t?.alive && !this.cut.has(from * 1000 + to)) deliver();
        },
        null,
      );
  }

  /**
   * A request and its answer. `handle` runs on the receiver's current process; its promise's
   * outcome travels back. No answer within `timeoutMs` (lost, cut, a dead peer) rejects with
   * SimNetError; a peer that is down answers "connection refused" after one delay.
   */
  call<T>(
    from: number,
    to: number,
    target: () => Incarnation | null,
    handle: () => Promise<T>,
    caller: Incarnation | null,
    timeoutMs: number,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const c: PendingCall = { settled: false, timer: null, from, to, caller, resolve: resolve as (v: unknown) => void, reject };
      c.timer = this.world.schedule(
        timeoutMs,
        () => this.settle(c, false, new SimNetError(`no answer from node ${to} within ${timeoutMs} ms`)),
        caller,
      );
      this.sent++;
      const t0 = target();
      if (t0 === null || !t0.alive) {
        this.world.schedule(
          this.delay(),
          () => {
            if (!c.settled) this.settle(c, false, new SimNetError(`node ${to} refused the connection (down)`));
          },
          caller,
        );
        return;
      }
      if (this.lost(from, to)) {
        this.dropped++;
        return;
      }
      const request = this.world.schedule(
        this.delay(),
        () => {
          const server = target();
          if (this.cut.has(from * 1000 + to)) return;
          if (server === null || !server.alive) {
            if (!c.settled) this.settle(c, false, new SimNetError(`node ${to} reset the connection (down)`));
            return;
          }
          let p: Promise<T>;
          try {
            p = handle();
          } catch (e) {
            p = Promise.reject(e);
          }
          p.then(
            (v) => this.answer(c, true, v, server),
            (e: unknown) => {
              // A failed assertion is a bug of the node that ran the call: the run stops.
              if (e instanceof AssertionError) this.world.failure ??= e;
              this.answer(c, false, e, server);
            },
          );
        },
        caller,
      );
      // A copy of the request: the receiver handles it twice.
      if (this.duplicate(from, to)) this.world.schedule(this.delay(), request.fn, caller);
    });
  }

  /** The answer of a call travels back from `server` (unless it died, or the answer is lost or cut). */
  private answer(c: PendingCall, ok: boolean, value: unknown, server: Incarnation): void {
    if (!server.alive) return;
    if (this.lost(c.to, c.from) || this.answersCut.has(c.to * 1000 + c.from)) {
      this.dropped++;
      return;
    }
    const reply = this.world.schedule(
      this.delay(),
      () => {
        if (this.cut.has(c.to * 1000 + c.from)) return;
        this.settle(c, ok, value);
      },
      c.caller,
    );
    // A copy of the answer: the call settled with the first to arrive.
    if (this.duplicate(c.to, c.from)) this.world.schedule(this.delay(), reply.fn, c.caller);
  }

  /** Settles a call once: with its answer, or its failure (the first of them); its timeout is cancelled. */
  private settle(c: PendingCall, ok: boolean, value: unknown): void {
    if (c.settled) return;
    c.settled = true;
    this.world.cancel(c.timer!);
    if (ok) c.resolve(value);
    else c.reject(value);
  }

  /** Cuts the link from `a` to `b` (one way). */
  cutLink(a: number, b: number): void {
    this.cut.add(a * 1000 + b);
  }

  /** Cuts both ways between `side` and the other nodes of `all`. */
  isolate(side: readonly number[], all: readonly number[]): void {
    for (const a of side)
      for (const b of all) {
        if (side.includes(b)) continue;
        this.cutLink(a, b);
        this.cutLink(b, a);
      }
  }

  /** The answers `a` gives to calls from `b` are lost from now on (until `heal`). */
  cutAnswers(a: number, b: number): void {
    this.answersCut.add(a * 1000 + b);
  }

  /** Restores the link from `a` to `b` (one way), cut by `cutLink`. */
  restoreLink(a: number, b: number): void {
    this.cut.delete(a * 1000 + b);
  }

  heal(): void {
    this.cut.clear();
    this.answersCut.clear();
  }

  /** Whether a link between nodes is cut (those of the clients, client-cuts.ts, do not count). */
  get partitioned(): boolean {
    for (const k of this.cut) if (k % 1000 !== CLIENT_ID && Math.floor(k / 1000) !== CLIENT_ID) return true;
    return this.answersCut.size > 0;
  }
}
