/**
 * Time, injected. Core modules (storage, raft, metadata, replication, coordinator) receive a
 * Clock and never read Date.now themselves, so tests and the simulator can drive time.
 */
export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch (record timestamps, retention). */
  nowMs(): number;
}

/** The real clock: the only place outside src/broker that reads Date.now. */
export const systemClock: Clock = { nowMs: () => Date.now() };

/** A clock that moves only when told to: for tests and simulation. */
export class ManualClock implements Clock {
  private ms: number;

  constructor(startMs = 1_700_000_000_000) {
    this.ms = startMs;
  }

  nowMs(): number {
    return this.ms;
  }

  advance(ms: number): void {
    if (ms < 0) throw new RangeError("ManualClock cannot move backwards");
    this.ms += ms;
  }

  set(ms: number): void {
    this.ms = ms;
  }
}
