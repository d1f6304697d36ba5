/**
 * Timers, injected. Core modules (storage, raft, metadata, replication, coordinator) receive a
 * Timers and never call setTimeout or setInterval themselves, so tests and the simulator decide
 * when a timer fires. `systemTimers` (the real ones) is used only by the runtime shell.
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** The runtime's own timers: for src/broker and the shells around the core only. */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

/** Timers that fire only when told to (`advance`): for tests and simulation. */
export class ManualTimers implements Timers {
  private nowMs = 0;
  private nextId = 1;
  private readonly due = new Map<number, { at: number; fn: () => void; everyMs: number | null }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.due.set(id, { at: this.nowMs + Math.max(0, ms), fn, everyMs: null });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.due.set(id, { at: this.nowMs + Math.max(1, ms), fn, everyMs: Math.max(1, ms) });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.due.delete(handle as number);
  }

  /** Timers still to fire. */
  get pending(): number {
    return this.due.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in time order. */
  advance(ms: number): void {
    const until = this.nowMs + ms;
    for (;;) {
      let id = -1;
      let at = Number.POSITIVE_INFINITY;
      for (const [k, t] of this.due) if (t.at < at || (t.at === at && k < id)) [id, at] = [k, t.at];
      if (id < 0 || at > until) break;
      const t = this.due.get(id)!;
      this.nowMs = at;
      if (t.everyMs === null) this.due.delete(id);
      else t.at += t.everyMs;
      t.fn();
    }
    this.nowMs = until;
  }
}
