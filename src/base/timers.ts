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
