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

/** Unix time at simulated time 0. */
export const SIM_EPOCH_MS = 1_700_000_000_000;

/** Lets every pending microtask (promise reaction) run, and the event loop turn once. */
function turnEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Events of one burst (see the header). */
const BURST_EVENTS = 256;

/** The clock and the event queue (a binary heap on time, then scheduling order). */
export class World {
  readonly clock = new ManualClock(SIM_EPOCH_MS);
  private readonly heap: SimEvent[] = [];
  private seq = 0;
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
    return e;
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
      const step = (): void => {
        for (;;) {
          const e = this.heap[0];
          if (this.failure !== null || e === undefined || e.at > untilMs) return resolve(false);
          if (left === 0) return resolve(true);
          this.pop();
          if (e.cancelled || (e.owner !== null && !e.owner.alive)) continue;
          if (e.at > this.now) this.clock.set(SIM_EPOCH_MS + e.at);
          this.events++;
          left--;
          try {
            e.fn();
          } catch (err) {
            this.failure ??= err as Error;
          }
          // The next event once the microtask queue is empty: a nextTick runs only then.
          queueMicrotask(() => process.nextTick(step));
          return;
        }
      };
      process.nextTick(step);
    });
  }

  private push(e: SimEvent): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
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
    if (handle) (handle as SimEvent).cancelled = true;
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
    if (h.current) h.current.cancelled = true;
  }
}

/** The network's fault knobs. */
export interface NetFaults {
  dropRate: number;
  minDelayMs: number;
  maxDelayMs: number;
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

  constructor(
    private readonly world: World,
    private readonly random: SeededRandom,
    readonly faults: NetFaults,
  ) {}

  private delay(): number {
    const f = this.faults;
    return f.minDelayMs + this.random.int(f.maxDelayMs - f.minDelayMs + 1);
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
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        timer.cancelled = true;
        fn();
      };
      const timer = this.world.schedule(
        timeoutMs,
        () => settle(() => reject(new SimNetError(`no answer from node ${to} within ${timeoutMs} ms`))),
        caller,
      );
      const back = (fn: () => void, server: Incarnation): void => {
        if (!server.alive) return;
        if (this.lost(to, from) || this.answersCut.has(to * 1000 + from)) {
          this.dropped++;
          return;
        }
        this.world.schedule(
          this.delay(),
          () => {
            if (this.cut.has(to * 1000 + from)) return;
            settle(fn);
          },
          caller,
        );
      };
      this.sent++;
      const t0 = target();
      if (t0 === null || !t0.alive) {
        this.world.schedule(this.delay(), () => settle(() => reject(new SimNetError(`node ${to} refused the connection (down)`))), caller);
        return;
      }
      if (this.lost(from, to)) {
        this.dropped++;
        return;
      }
      this.world.schedule(
        this.delay(),
        () => {
          const server = target();
          if (this.cut.has(from * 1000 + to)) return;
          if (server === null || !server.alive) {
            settle(() => reject(new SimNetError(`node ${to} reset the connection (down)`)));
            return;
          }
          let p: Promise<T>;
          try {
            p = handle();
          } catch (e) {
            p = Promise.reject(e);
          }
          p.then(
            (v) => back(() => resolve(v), server),
            (e: unknown) => {
              // A failed assertion is a bug of the node that ran the call: the run stops.
              if (e instanceof AssertionError) this.world.failure ??= e;
              back(() => reject(e), server);
            },
          );
        },
        caller,
      );
    });
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

  heal(): void {
    this.cut.clear();
    this.answersCut.clear();
  }

  get partitioned(): boolean {
    return this.cut.size > 0 || this.answersCut.size > 0;
  }
}
