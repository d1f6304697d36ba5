/**
 * The message browser: a topic's records, read with the service's `fetch` (the same reads a
 * gRPC Fetch makes: the fetch memory budget, checked batches, partitions with no replica here
 * read from their leaders), and the ACL of a Fetch (READ on the topic).
 *
 * `GET /api/v1/topics/{name}/messages` with
 * - `partition`: one partition, or absent for every partition of the topic;
 * - where to start, one of: `offset=N` (from offset N of each partition), `timestamp=MS` (from
 *   the first record at or after that time), `newest=N` (the newest N of the topic) — default
 *   `newest=50`;
 * - `limit`: at most this many records in the answer (default 50, at most 500);
 * - `format`: how keys, values and header values are shown: `text` (UTF-8; `binary: true` when
 *   the bytes are not valid UTF-8), `json` (parsed; the text when it does not parse, with
 *   `json: false`), `hex`, or `base64`.
 * The answer lists records by time (oldest first) and each partition's `nextOffset` (where a
 * "load more" goes on) and high watermark.
 */
import { RillError, rillError } from "../../base/errors.ts";
import { TimestampType } from "../../protocol/record-batch.ts";
import {
  type FetchedHeader,
  type FetchedRecord,
  type FetchInput,
  type FetchPartitionInput,
  type FetchPartitionResult,
  type ListedOffset,
  OffsetSpec,
  RecordFormat,
} from "../../service/fetch-types.ts";
import { fetch } from "../../service/fetch.ts";
import { listOffsets } from "../../service/list-offsets.ts";
import type { ApiCall, ApiContext } from "./deps.ts";
import { badRequest, intParam } from "./http-io.ts";

/** Most records one answer carries. */
export const MESSAGES_LIMIT_MAX = 500;
/** Bytes read per partition for one answer. */
const PARTITION_READ_BYTES = 1 << 20;
/** Bytes read for one answer. */
const READ_BYTES = 4 << 20;

/** How bytes are shown. */
export type BytesFormat = "text" | "json" | "hex" | "base64";
const FORMATS: readonly BytesFormat[] = ["text", "json", "hex", "base64"];

/** Bytes as the API shows them (null for absent). */
export type ShownBytes =
  | { readonly text: string; readonly binary?: true }
  | { readonly json: unknown }
  | { readonly hex: string }
  | { readonly base64: string }
  | { readonly text: string; readonly json: false };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** `bytes` shown in `format`. */
export function showBytes(bytes: Uint8Array | null, format: BytesFormat): ShownBytes | null {
  if (bytes === null) return null;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === "hex") return { hex: buf.toString("hex") };
  if (format === "base64") return { base64: buf.toString("base64") };
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return format === "json" ? { text: buf.toString("latin1"), json: false } : { text: buf.toString("latin1"), binary: true };
  }
  if (format === "text") return { text };
  try {
    return { json: JSON.parse(text) };
  } catch {
    return { text, json: false };
  }
}

interface Start {
  readonly partition: number;
  readonly offset: number;
  /** Why the partition is not read (its start could not be found). */
  readonly error?: RillError;
}

/** GET /topics/{name}/messages. */
export async function browseMessages(ctx: ApiContext, call: ApiCall) {
  const topic = call.params[0]!;
  const q = call.query;
  const format = (q.get("format") ?? "text") as BytesFormat;
  if (!FORMATS.includes(format)) throw badRequest(`format: "${q.get("format")}" is not one of ${FORMATS.join(", ")}`);
  const limit = intParam(q, "limit", 50, 1, MESSAGES_LIMIT_MAX);
  const modes = ["offset", "timestamp", "newest"].filter((m) => q.has(m));
  if (modes.length > 1) throw badRequest(`${modes.join(", ")}: give one of offset, timestamp and newest, not several`);
  ctx.access.fetch(call.who, "FetchService/Fetch", [{ topic }]);
  const t = ctx.rm.image.topics.get(topic);
  if (!t) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${topic}" does not exist`);
  const partitions = q.has("partition") ? [intParam(q, "partition", 0, 0, t.partitions.length - 1)] : t.partitions.map((p) => p.partition);
  const mode = modes[0] ?? "newest";
  const starts =
    mode === "offset"
      ? partitions.map((partition) => ({ partition, offset: intParam(q, "offset", 0, 0, Number.MAX_SAFE_INTEGER) }))
      : mode === "timestamp"
        ? await fromTimestamp(ctx, call, topic, partitions, intParam(q, "timestamp", 0, 0, Number.MAX_SAFE_INTEGER))
        : await newest(ctx, topic, partitions, intParam(q, "newest", 50, 1, MESSAGES_LIMIT_MAX));
  return { topic, format, ...(await read(ctx, call, topic, starts, limit, format, mode === "newest")) };
}

/**
 * Each partition's first offset at or after `ts`, looked up at its leader (here, or asked of
 * it); where no record is that recent, the partition's high watermark. A leader that cannot be
 * reached is that partition's error.
 */
async function fromTimestamp(ctx: ApiContext, call: ApiCall, topic: string, partitions: readonly number[], ts: number): Promise<Start[]> {
  const me = ctx.rm.nodeIdOf();
  const byLeader = new Map<number, number[]>();
  for (const partition of partitions) {
    const leader = ctx.rm.image.topics.get(topic)?.partitions[partition]?.leader ?? -1;
    const key = leader < 0 || leader === me ? -1 : leader;
    byLeader.set(key, [...(byLeader.get(key) ?? []), partition]);
  }
  const found = new Map<number, ListedOffset>();
  await Promise.all(
    [...byLeader].map(async ([leader, parts]) => {
      const refs = parts.map((partition) => ({ topic, partition }));
      const answers =
        leader < 0
          ? listOffsets(
              ctx.rm,
              refs.map((r) => ({ ...r, spec: OffsetSpec.TIMESTAMP, timestampMs: BigInt(ts) })),
            )
          : await ctx.ports
              .offsetsForTimestamp(leader, refs, ts, call.who)
              .catch((e: unknown) => refs.map((r) => ({ ...r, offset: -1, timestampMs: -1, leaderEpoch: null, error: RillError.from(e) })));
      for (const a of answers) found.set(a.partition, a);
    }),
  );
  const ends = [...found.values()].some((f) => !f.error && f.offset < 0) ? await leaderEnds(ctx, topic) : new Map<number, number>();
  return partitions.map((partition) => {
    const f = found.get(partition)!;
    if (f.error) return { partition, offset: 0, error: f.error };
    return { partition, offset: f.offset >= 0 ? f.offset : (ends.get(partition) ?? 0) };
  });
}

/** Each partition's high watermark as its leader reports it. */
async function leaderEnds(ctx: ApiContext, topic: string): Promise<Map<number, number>> {
  const d = await ctx.ports.admin.describeTopics({ topics: [topic], excludeConfigs: true }, { forwarded: false });
  return new Map((d.topics[0]?.partitions ?? []).map((p) => [p.partition, p.highWatermark]));
}

/** Where to read each partition from so that the newest `n` records of the topic are read. */
async function newest(ctx: ApiContext, topic: string, partitions: readonly number[], n: number): Promise<Start[]> {
  const d = await ctx.ports.admin.describeTopics({ topics: [topic], excludeConfigs: true }, { forwarded: false });
  const parts = d.topics[0]?.partitions ?? [];
  return partitions.map((partition) => {
    const p = parts.find((x) => x.partition === partition);
    return { partition, offset: p ? Math.max(p.logStartOffset, p.highWatermark - n) : 0 };
  });
}

/**
 * Reads each partition at its leader — here when this node leads it, else through the fetch
 * forwarder (a follower's copy can be behind its leader's high watermark) — in input order.
 * A leader that cannot be reached is the error of its partitions.
 */
async function fetchAtLeaders(
  ctx: ApiContext,
  call: ApiCall,
  input: FetchInput,
): Promise<{ partitions: FetchPartitionResult[]; release: () => void }> {
  const me = ctx.rm.nodeIdOf();
  const local: number[] = [];
  const remote = new Map<number, number[]>();
  input.partitions.forEach((p, i) => {
    const leader = ctx.rm.image.topics.get(p.topic)?.partitions[p.partition]?.leader ?? -1;
    if (leader < 0 || leader === me) local.push(i);
    else remote.set(leader, [...(remote.get(leader) ?? []), i]);
  });
  const only = (idx: readonly number[]): FetchInput => ({ ...input, partitions: idx.map((i) => input.partitions[i]!) });
  const forwarder = ctx.ports.fetchForwarder(call.who);
  const [here, ...there] = await Promise.all([
    local.length > 0 ? fetch(ctx.rm, only(local), { aborted: false, onabort: null }, null, ctx.fetchMemory) : null,
    ...[...remote].map(([leader, idx]) =>
      forwarder.fetch(leader, only(idx)).then(
        (r) => r.partitions,
        (e: unknown) => idx.map((i) => unread(input.partitions[i]!, RillError.from(e))),
      ),
    ),
  ]);
  const out = new Array<FetchPartitionResult>(input.partitions.length);
  local.forEach((i, k) => (out[i] = here!.partitions[k]!));
  [...remote.values()].forEach((idx, g) =>
    idx.forEach(
      (i, k) =>
        (out[i] =
          (there[g] as FetchPartitionResult[])[k] ??
          unread(input.partitions[i]!, rillError("NOT_LEADER_OR_FOLLOWER", "the leader answered no result for this partition"))),
    ),
  );
  return { partitions: out, release: () => here?.release() };
}

/** A partition that could not be read. */
function unread(p: FetchPartitionInput, error: RillError): FetchPartitionResult {
  const offset = Number(p.offset);
  return {
    topic: p.topic,
    partition: p.partition,
    highWatermark: -1,
    logStartOffset: -1,
    lastStableOffset: -1,
    nextOffset: offset,
    error,
    records: null,
    batches: null,
  };
}

async function read(
  ctx: ApiContext,
  call: ApiCall,
  topic: string,
  starts: readonly Start[],
  limit: number,
  format: BytesFormat,
  newestFirst: boolean,
) {
  const inputOf = (s: Start): FetchPartitionInput => ({
    topic,
    partition: s.partition,
    offset: BigInt(s.offset),
    maxBytes: PARTITION_READ_BYTES,
  });
  const readable = starts.filter((s) => !s.error);
  const res =
    readable.length === 0
      ? { partitions: [], release: () => {} }
      : await fetchAtLeaders(ctx, call, {
          partitions: readable.map(inputOf),
          maxWaitMs: 0,
          minBytes: 1,
          maxBytes: READ_BYTES,
          format: RecordFormat.RECORDS,
          isolationLevel: 0,
        });
  try {
    const read = new Map(res.partitions.map((p) => [p.partition, p]));
    const results = starts.map((s) => (s.error ? unread(inputOf(s), s.error) : read.get(s.partition)!));
    const all: Array<{ partition: number; r: FetchedRecord }> = [];
    const partitions = results.map((p) => {
      for (const r of p.records ?? []) all.push({ partition: p.partition, r });
      return {
        partition: p.partition,
        from: starts.find((s) => s.partition === p.partition)!.offset,
        highWatermark: p.highWatermark,
        logStartOffset: p.logStartOffset,
        nextOffset: p.nextOffset,
        error: p.error ? { name: p.error.kind.name, message: p.error.message } : null,
      };
    });
    all.sort((a, b) => a.r.timestampMs - b.r.timestampMs || a.partition - b.partition || a.r.offset - b.r.offset);
    const kept = newestFirst ? all.slice(Math.max(0, all.length - limit)) : all.slice(0, limit);
    if (!newestFirst && kept.length < all.length) {
      // Records read but not kept are read again by the next call: each partition goes on after its last kept one.
      for (const p of partitions) {
        const mine = kept.filter((k) => k.partition === p.partition);
        p.nextOffset = mine.length > 0 ? mine[mine.length - 1]!.r.offset + 1 : p.from;
      }
    }
    return { partitions, records: kept.map(({ partition, r }) => shown(partition, r, format)), truncated: kept.length < all.length };
  } finally {
    res.release();
  }
}

function shown(partition: number, r: FetchedRecord, format: BytesFormat) {
  return {
    partition,
    offset: r.offset,
    timestampMs: r.timestampMs,
    timestampType: r.timestampType === TimestampType.LOG_APPEND_TIME ? "log-append" : "create",
    key: showBytes(r.key, format),
    value: showBytes(r.value, format),
    sizeBytes: (r.key?.byteLength ?? 0) + (r.value?.byteLength ?? 0),
    headers: r.headers.map((h: FetchedHeader) => ({ key: h.key, value: showBytes(h.value, format) })),
  };
}
