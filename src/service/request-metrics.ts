/**
 * What a broker's requests did, counted where the work happens and read by the broker shell at
 * scrape time (DESIGN.md "Observability and console": `rill_requests_total{api,protocol,code}`,
 * `rill_request_duration_seconds{api,protocol}`, `rill_bytes_in_total{topic}`,
 * `rill_records_in_total{topic}`, `rill_bytes_out_total{topic}`). Protocol-neutral: every
 * listener records the same way.
 *
 * - Each listener (gRPC's interceptor, the Kafka listener, the HTTP API) calls
 *   `observeRequest(api, protocol, code, seconds)` once per request as it answers.
 * - Each listener names its open connections once: `countConnections("kafka", () => open)`.
 * - The service records the data itself, so no adapter needs to: `ProduceHandler` calls
 *   `bytesIn(topic, bytes, records)` per leader append (bytes as appended, records from the
 *   offsets it was given), the fetch paths `bytesOut(topic, bytes, offsets)` per partition answered (offsets from
 *   the answer's first and next offset: records out, counting a compacted log's gaps).
 *
 * Counting is off until the broker turns it on (`enabled`, when its HTTP listener serves the
 * metrics): a broker nobody scrapes pays one branch per call.
 *
 * The cost is a map lookup and a few additions — no per-record work, no label hashing; the
 * request duration goes into fixed buckets by a short linear scan. Numbers only: src/broker
 * turns them into Prometheus series (prom-client) when scraped.
 *
 * One process may host several brokers (tests): the counters belong to a `source` (the broker's
 * ReplicaManager), found with `requestMetricsOf(source)`.
 */

/** The listener a request came by. */
export type RequestProtocol = "grpc" | "kafka" | "http";

/** Upper bounds of the request-duration buckets, in seconds (Prometheus `le`); +Inf is implied. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Topics counted at most; past it, new topics are summed under OTHER_TOPICS (a bound on the series). */
export const TOPICS_COUNTED_MAX = 100_000;
/** The label of topics past TOPICS_COUNTED_MAX. */
export const OTHER_TOPICS = "__other";

/** The requests of one (protocol, api): answers by code and their durations. */
export class RequestStats {
  /** Answers by code (the catalog name, or "OK"). */
  readonly codes = new Map<string, number>();
  /** Requests per bucket of DURATION_BUCKETS_SECONDS (not cumulative); the last one is +Inf. */
  readonly buckets = new Float64Array(DURATION_BUCKETS_SECONDS.length + 1);
  sumSeconds = 0;
  count = 0;

  constructor(
    readonly protocol: RequestProtocol,
    readonly api: string,
  ) {}
}

/** One topic's traffic through this broker. */
export interface TopicTraffic {
  bytesIn: number;
  recordsIn: number;
  bytesOut: number;
  /** Offsets answered to consumers (records, counting a compacted log's gaps): no per-record work. */
  recordsOut: number;
}

/** The request counters of one broker. */
export class RequestMetrics {
  /** By `protocol/api`. */
  readonly requests = new Map<string, RequestStats>();
  readonly topics = new Map<string, TopicTraffic>();
  /** Whether anything is counted (the broker turns it on when it serves the metrics). */
  enabled = false;
  /** Connections open now, by listener ("grpc", "kafka", "http"), read at scrape time. */
  readonly listeners = new Map<string, () => number>();

  /** A listener's open connections, read at scrape time (`rill_connections{listener}`); a second call for the same listener replaces the first. */
  countConnections(listener: string, open: () => number): void {
    this.listeners.set(listener, open);
  }

  /** One request answered by `protocol`: its api (e.g. "Produce"), its code ("OK" or a catalog name), how long it took. */
  observeRequest(api: string, protocol: RequestProtocol, code: string, seconds: number): void {
    if (!this.enabled) return;
    const key = `${protocol}/${api}`;
    let s = this.requests.get(key);
    if (!s) {
      s = new RequestStats(protocol, api);
      this.requests.set(key, s);
    }
    s.codes.set(code, (s.codes.get(code) ?? 0) + 1);
    let i = 0;
    while (i < DURATION_BUCKETS_SECONDS.length && seconds > DURATION_BUCKETS_SECONDS[i]!) i++;
    s.buckets[i]!++;
    s.sumSeconds += seconds;
    s.count++;
  }

  /** `bytes` in `records` records appended to `topic` as its leader. */
  bytesIn(topic: string, bytes: number, records: number): void {
    if (!this.enabled) return;
    const t = this.topic(topic);
    t.bytesIn += bytes;
    t.recordsIn += records;
  }

  /** `bytes` of `topic` answered to a consumer (fetch, subscribe, consume), spanning `offsets` offsets. */
  bytesOut(topic: string, bytes: number, offsets = 0): void {
    if (!this.enabled) return;
    const t = this.topic(topic);
    t.bytesOut += bytes;
    t.recordsOut += offsets;
  }

  /** Forgets a deleted topic's counters (its series go away). */
  forgetTopic(topic: string): void {
    this.topics.delete(topic);
  }

  private topic(name: string): TopicTraffic {
    let t = this.topics.get(name);
    if (t) return t;
    const key = this.topics.size < TOPICS_COUNTED_MAX ? name : OTHER_TOPICS;
    t = this.topics.get(key);
    if (!t) {
      t = { bytesIn: 0, recordsIn: 0, bytesOut: 0, recordsOut: 0 };
      this.topics.set(key, t);
    }
    return t;
  }
}

const bySource = new WeakMap<object, RequestMetrics>();

/** The counters of `source` (a broker's ReplicaManager), made on first use. */
export function requestMetricsOf(source: object): RequestMetrics {
  let m = bySource.get(source);
  if (!m) {
    m = new RequestMetrics();
    bySource.set(source, m);
  }
  return m;
}
