/**
 * Client byte-rate quotas (Kafka's `producer_byte_rate` and `consumer_byte_rate`), as pure
 * bookkeeping: the clock is injected, nothing here waits. The transports ask it how long to hold
 * an answer back (src/service/quota-throttle.ts) and do the waiting themselves.
 *
 * The life of a quota check:
 * 1. A request (Produce, Fetch) or a stream message (ProduceStream, Subscribe, Consume) of a
 *    requester moves `bytes` (produce: the request's bytes; consume: the response's).
 * 2. `quotaOf` finds the quota that applies to (user, client id) and kind, by Kafka's precedence:
 *    /users/<u>/clients/<c>, /users/<u>/clients/<default>, /users/<u>,
 *    /users/<default>/clients/<c>, /users/<default>/clients/<default>, /users/<default>,
 *    /clients/<c>, /clients/<default> — the first entity that sets the key. No entity: no quota.
 * 3. The bytes are recorded in the sensor of that entity as Kafka keys it: the parts of the
 *    entity that matched are filled in with the requester's user and client id, so a user's
 *    quota is shared by all its client ids, and a default quota gives each user (or client id)
 *    its own sensor.
 * 4. The sensor is a rate over a window of samples (`samples` × `sampleMs`, Kafka's
 *    quota.window.num × quota.window.size.seconds, 11 × 1 s): the bytes of the samples still in
 *    the window divided by the time they span. Over quota, the throttle time is Kafka's
 *    (rate − quota) / quota × window: how long the client must send nothing for the rate to
 *    come back to the quota. It is capped at the whole window.
 * 5. `pendingMs` tells how much of an earlier throttle is still to run, so a transport can hold
 *    the requester's next request until then (Kafka mutes the connection for that time).
 *
 * One difference from Kafka: Kafka's rate pads a young window to `samples − 1` sample lengths,
 * which lets a new client send a burst of ten seconds' worth at once, and lets it burst again
 * each time the sample that held a burst expires. Here the window spans at least one sample,
 * so the rate stays near the quota from the first second on.
 */
import type { Clock } from "../base/clock.ts";
import type { ClientQuotaState } from "../metadata/client-quotas.ts";
import type { QuotaEntity, QuotaKey, QuotaValues } from "../metadata/security-types.ts";
import type { Requester } from "./requester.ts";

/** The window of a quota sensor: `samples` samples of `sampleMs` each. */
export interface QuotaWindow {
  readonly samples: number;
  readonly sampleMs: number;
}

/** Kafka's defaults: quota.window.num = 11, quota.window.size.seconds = 1. */
export const QUOTA_WINDOW_DEFAULT: QuotaWindow = { samples: 11, sampleMs: 1000 };

/** What moved bytes: producing (request bytes) or consuming (response bytes). */
export type QuotaKind = "produce" | "consume";

const KEY_OF: Record<QuotaKind, { key: QuotaKey; field: keyof QuotaValues }> = {
  produce: { key: "producer_byte_rate", field: "producerByteRate" },
  consume: { key: "consumer_byte_rate", field: "consumerByteRate" },
};

/** The user name of a principal (`User:alice` → `alice`). */
export function userOf(r: Pick<Requester, "principal">): string {
  return r.principal.slice("User:".length);
}

/** The entities that may hold the quota of (user, clientId), most specific first (Kafka's order). */
export function quotaCandidates(user: string, clientId: string): QuotaEntity[] {
  return [
    { user, clientId },
    { user, clientId: null },
    { user },
    { user: null, clientId },
    { user: null, clientId: null },
    { user: null },
    { clientId },
    { clientId: null },
  ];
}

/** The quota that applies, and the entity it comes from. */
export interface AppliedQuota {
  readonly entity: QuotaEntity;
  /** Bytes per second. */
  readonly limit: number;
}

/**
 * The quota of `kind` for (user, clientId) among `quotas` (the image's, keyed by
 * `quotaEntityKey`), by Kafka's precedence; null when none applies.
 */
export function quotaOf(
  quotas: ReadonlyMap<string, ClientQuotaState>,
  user: string,
  clientId: string,
  kind: QuotaKind,
  keyOf: (e: QuotaEntity) => string,
): AppliedQuota | null {
  if (quotas.size === 0) return null;
  const field = KEY_OF[kind].field;
  for (const entity of quotaCandidates(user, clientId)) {
    const limit = quotas.get(keyOf(entity))?.values[field];
    if (limit !== undefined) return { entity, limit };
  }
  return null;
}

/** One sample of a sensor: bytes recorded from `startMs` for one sample length. */
interface Sample {
  startMs: number;
  bytes: number;
}

/**
 * A windowed rate (Kafka's SampledStat/Rate): samples of `sampleMs` started when a record comes
 * after the previous sample ended; samples older than the window are dropped.
 */
export class RateSensor {
  private readonly samples: Sample[] = [];
  /** Until when the last throttle asks the requester to wait. */
  throttledUntilMs = 0;
  /** When the sensor last recorded (idle sensors are dropped). */
  lastRecordMs = 0;

  constructor(private readonly window: QuotaWindow) {}

  /** Adds `bytes` at `nowMs`. */
  record(bytes: number, nowMs: number): void {
    this.purge(nowMs);
    const last = this.samples[this.samples.length - 1];
    if (last && nowMs < last.startMs + this.window.sampleMs) last.bytes += bytes;
    else this.samples.push({ startMs: nowMs, bytes });
    this.lastRecordMs = nowMs;
  }

  /** The time the kept samples span at `nowMs`: at least one sample length. */
  windowMs(nowMs: number): number {
    this.purge(nowMs);
    const oldest = this.samples[0];
    return Math.max(this.window.sampleMs, oldest ? nowMs - oldest.startMs : 0);
  }

  /** Bytes per second at `nowMs`. */
  rate(nowMs: number): number {
    const w = this.windowMs(nowMs);
    let total = 0;
    for (const s of this.samples) total += s.bytes;
    return (total * 1000) / w;
  }

  /**
   * How long the client must pause for the rate to come back to `limit` (bytes per second):
   * (rate − limit) / limit × window, 0 when within it, at most the whole window.
   */
  throttleMs(limit: number, nowMs: number): number {
    const rate = this.rate(nowMs);
    if (rate <= limit) return 0;
    const ms = Math.ceil(((rate - limit) / limit) * this.windowMs(nowMs));
    return Math.min(ms, this.window.samples * this.window.sampleMs);
  }

  private purge(nowMs: number): void {
    const horizon = this.window.samples * this.window.sampleMs;
    while (this.samples.length > 0 && nowMs - this.samples[0]!.startMs >= horizon) this.samples.shift();
  }
}

/** Where the quotas come from: the metadata image's, and its entity key. */
export interface QuotaSource {
  quotas(): ReadonlyMap<string, ClientQuotaState>;
  keyOf(e: QuotaEntity): string;
}

/**
 * The byte-rate quotas of one broker: a sensor per (entity as matched, kind), created on first
 * use and dropped after a whole window without traffic.
 */
export class ClientQuotas {
  private readonly sensors = new Map<string, RateSensor>();
  private lastSweepMs = 0;

  constructor(
    private readonly source: QuotaSource,
    private readonly clock: Clock,
    private readonly window: QuotaWindow = QUOTA_WINDOW_DEFAULT,
  ) {}

  /** Sensors alive (for tests and metrics). */
  get sensorCount(): number {
    return this.sensors.size;
  }

  /**
   * Records `bytes` moved for `who` and answers the throttle time in ms (0: within quota, or
   * no quota applies). The requester's sensor waits at least that long (`pendingMs`).
   */
  record(who: Pick<Requester, "principal" | "clientId">, kind: QuotaKind, bytes: number): number {
    const now = this.clock.nowMs();
    this.sweep(now);
    const found = this.sensorOf(who, kind, true);
    if (!found) return 0;
    const { sensor, limit } = found;
    sensor.record(bytes, now);
    const ms = sensor.throttleMs(limit, now);
    if (ms > 0) sensor.throttledUntilMs = Math.max(sensor.throttledUntilMs, now + ms);
    return ms;
  }

  /** How long `who` must still wait before its next `kind` request (0: none), as earlier throttles set it. */
  pendingMs(who: Pick<Requester, "principal" | "clientId">, kind: QuotaKind): number {
    const found = this.sensorOf(who, kind, false);
    if (!found) return 0;
    return Math.max(0, found.sensor.throttledUntilMs - this.clock.nowMs());
  }

  /** The quota that applies to `who` for `kind`, null for none. */
  quotaFor(who: Pick<Requester, "principal" | "clientId">, kind: QuotaKind): AppliedQuota | null {
    return quotaOf(this.source.quotas(), userOf(who), who.clientId, kind, this.source.keyOf);
  }

  private sensorOf(
    who: Pick<Requester, "principal" | "clientId">,
    kind: QuotaKind,
    create: boolean,
  ): { sensor: RateSensor; limit: number } | null {
    const q = this.quotaFor(who, kind);
    if (!q) return null;
    // Kafka's metric tags: the requester's user and client id where the entity has that part.
    const user = q.entity.user !== undefined ? userOf(who) : "";
    const clientId = q.entity.clientId !== undefined ? who.clientId : "";
    const key = `${kind}\0${q.entity.user !== undefined ? "u" : "-"}${user}\0${q.entity.clientId !== undefined ? "c" : "-"}${clientId}`;
    let sensor = this.sensors.get(key);
    if (!sensor) {
      if (!create) return null;
      sensor = new RateSensor(this.window);
      this.sensors.set(key, sensor);
    }
    return { sensor, limit: q.limit };
  }

  /** Drops sensors idle for a whole window (at most once per window). */
  private sweep(now: number): void {
    const horizon = this.window.samples * this.window.sampleMs;
    if (now - this.lastSweepMs < horizon) return;
    this.lastSweepMs = now;
    for (const [k, s] of this.sensors) if (now - s.lastRecordMs >= horizon && s.throttledUntilMs <= now) this.sensors.delete(k);
  }
}
