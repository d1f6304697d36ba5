/**
 * Client quota enforcement for every protocol (issue 13, DESIGN.md "Security"): over quota, the
 * answer is delayed and says so in `throttle_time_ms`, never an error; on streams the broker
 * stops reading (ProduceStream) or pushing (Subscribe, Consume) for the throttle time.
 *
 * The bookkeeping (sensors, precedence, the throttle time) is src/security/quota.ts; this file
 * adds the waiting, with injected Timers:
 * - unary requests (Produce, Fetch) wait first for what is left of the requester's earlier
 *   throttle (`admit`: Kafka mutes the connection for that long), then run, record their bytes
 *   and hold their answer for the new throttle time (`hold`);
 * - streams record each message (`record`) and pause for the answer.
 */
import type { Clock } from "../base/clock.ts";
import type { Timers } from "../base/timers.ts";
import { quotaEntityKey } from "../metadata/client-quotas.ts";
import type { MetadataImage } from "../metadata/image.ts";
import { ClientQuotas, QUOTA_WINDOW_DEFAULT, type QuotaKind, type QuotaWindow } from "../security/quota.ts";
import type { Requester } from "../security/requester.ts";
import type { FetchResult } from "./fetch-types.ts";

/** The quotas of one broker and the timers that make clients wait. */
export class QuotaThrottle {
  readonly quotas: ClientQuotas;
  /** Throttle time imposed so far, in ms, by kind (`rill_throttle_time_seconds_total{quota}`). */
  readonly throttledMs: Record<QuotaKind, number> = { produce: 0, consume: 0 };

  /** `image`: the node's current metadata image (its `clientQuotas` are read on every check). */
  constructor(
    image: () => MetadataImage,
    private readonly clock: Clock,
    private readonly timers: Timers,
    window: QuotaWindow = QUOTA_WINDOW_DEFAULT,
  ) {
    this.quotas = new ClientQuotas({ quotas: () => image().clientQuotas, keyOf: quotaEntityKey }, clock, window);
  }

  /** Waits out what is left of `who`'s earlier throttle; resolves with the ms waited. */
  async admit(who: Requester, kind: QuotaKind): Promise<number> {
    const ms = this.quotas.pendingMs(who, kind);
    this.throttledMs[kind] += ms;
    if (ms > 0) await this.sleep(ms);
    return ms;
  }

  /** Records `bytes` for `who` and waits the throttle time; resolves with it (0: none). */
  async hold(who: Requester, kind: QuotaKind, bytes: number): Promise<number> {
    const ms = this.quotas.record(who, kind, bytes);
    this.throttledMs[kind] += ms;
    if (ms > 0) await this.sleep(ms);
    return ms;
  }

  /**
   * Records the bytes `bytes()` counts for `who`: the throttle time, for a stream to pause (0:
   * none). The bytes are counted only when a quota applies to `who` (counting walks the records
   * of a thin client's request or answer).
   */
  record(who: Requester, kind: QuotaKind, bytes: () => number): number {
    if (!this.applies(who, kind)) return 0;
    const ms = this.quotas.record(who, kind, bytes());
    this.throttledMs[kind] += ms;
    return ms;
  }

  /** Whether a `kind` quota applies to `who` now. */
  applies(who: Requester, kind: QuotaKind): boolean {
    return this.quotas.quotaFor(who, kind) !== null;
  }

  /** Resolves after `ms`, or at once when `cancel` fires. */
  sleep(ms: number, cancel?: { aborted: boolean; onabort: (() => void) | null }): Promise<void> {
    if (cancel?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = this.timers.setTimeout(resolve, ms);
      if (cancel)
        cancel.onabort = () => {
          this.timers.clearTimeout(t);
          resolve();
        };
    });
  }

  /** A pause for one stream. */
  streamPause(): StreamPause {
    return new StreamPause(this.timers, this.clock);
  }
}

/**
 * Runs a unary request under the quota of its requester (`who`, asked only when quotas are wired): waits out an earlier throttle, runs `run`, records
 * the bytes `bytesOf` counts (request bytes for produce, response bytes for consume) and holds
 * the answer for the throttle time. Resolves with the answer and the total ms it was held.
 * Without a throttle (quotas not wired) it only runs.
 */
export async function throttled<T>(
  throttle: QuotaThrottle | undefined,
  who: () => Requester,
  kind: QuotaKind,
  run: () => Promise<T>,
  bytesOf: (answer: T) => number,
): Promise<{ answer: T; throttleTimeMs: number }> {
  if (!throttle) return { answer: await run(), throttleTimeMs: 0 };
  const requester = who();
  // No quota applies (the common case): nothing to wait for, nothing to count.
  if (!throttle.applies(requester, kind)) return { answer: await run(), throttleTimeMs: 0 };
  const waited = await throttle.admit(requester, kind);
  const answer = await run();
  const held = await throttle.hold(requester, kind, bytesOf(answer));
  return { answer, throttleTimeMs: waited + held };
}

/** Fixed bytes counted per record besides its key, value and headers (offsets, timestamps, framing). */
export const RECORD_OVERHEAD_BYTES = 16;

/** A record's bytes as quotas count them. */
export function recordBytes(r: {
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: readonly { readonly key: string; readonly value: Uint8Array | null }[];
}): number {
  let n = RECORD_OVERHEAD_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const h of r.headers) n += h.key.length + (h.value?.length ?? 0);
  return n;
}

/** The bytes a fetch answer carries, as consumer quotas count them: batches as stored, records decoded. */
export function fetchResultBytes(res: FetchResult): number {
  let n = 0;
  for (const p of res.partitions) {
    for (const c of p.batches ?? []) n += c.length;
    n += p.records?.payloadBytes(RECORD_OVERHEAD_BYTES) ?? 0;
  }
  return n;
}

/** A stream's pause for its throttle time: `stop` now, `go` once the latest throttle has run out. */
export class StreamPause {
  private timer: unknown = null;
  private untilMs = 0;

  constructor(
    private readonly timers: Timers,
    private readonly clock: Clock,
  ) {}

  /** Pauses for `ms` from now (a later pause replaces an earlier one). */
  pause(ms: number, stop: () => void, go: () => void): void {
    if (ms <= 0) return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    else stop();
    this.untilMs = this.clock.nowMs() + ms;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      go();
    }, ms);
  }

  /** Whether a pause is running. */
  get paused(): boolean {
    return this.timer !== null;
  }

  /** Ms left of the pause (0: none). */
  leftMs(): number {
    return this.timer === null ? 0 : Math.max(0, this.untilMs - this.clock.nowMs());
  }

  /** Ends the pause without calling `go` (the stream is over). */
  cancel(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
