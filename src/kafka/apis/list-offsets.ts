/**
 * ListOffsets (key 2), versions 1–9 (6+ flexible), over `listOffsets` (src/service/list-offsets.ts,
 * what gRPC's FetchService.ListOffsets calls), authorized per topic as gRPC does (DESCRIBE; a
 * denied topic's partitions answer TOPIC_AUTHORIZATION_FAILED).
 *
 * Kafka's timestamps: -2 earliest (the log start), -1 latest (the high watermark), -4 earliest
 * local (v8+; Rill has no tiered storage, so the log start), -5 latest tiered (v9+; none: -1, as
 * Kafka answers without tiered storage), any other value ≥ 0 the first offset at or after that
 * time. -3 max timestamp (v7+) is not implemented by the service: that partition answers
 * UNSUPPORTED_VERSION. Isolation level (v2+): READ_COMMITTED (1) answers latest with the last
 * stable offset and finds timestamps only below it, as Kafka; READ_UNCOMMITTED (0) the high
 * watermark.
 * current_leader_epoch (v4+) is checked by the service (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH).
 * A new leader that does not know its high watermark yet answers latest (and a timestamp past
 * what it knows) with OFFSET_NOT_AVAILABLE from v5, LEADER_NOT_AVAILABLE before, as Kafka (KIP-207).
 */
import { IsolationLevel, type ListedOffset, type ListOffsetsPartitionInput, OffsetSpec } from "../../service/fetch-types.ts";
import { listOffsets as serviceListOffsets } from "../../service/list-offsets.ts";
import { api } from "../api.ts";
import { kafkaErrorCode, offsetNotAvailableFor } from "../error-codes.ts";
import { int8, int16, int32, int64, message, string, structs } from "../schema.ts";

export const ListOffsetsRequest = message("ListOffsetsRequest", "1-9", "6+", {
  replicaId: int32(),
  isolationLevel: int8().since(2),
  topics: structs({
    name: string(),
    partitions: structs({
      partitionIndex: int32(),
      currentLeaderEpoch: int32().since(4).default(-1),
      timestamp: int64(),
    }),
  }),
});

export const ListOffsetsResponse = message("ListOffsetsResponse", "1-9", "6+", {
  throttleTimeMs: int32().since(2),
  topics: structs({
    name: string(),
    partitions: structs({
      partitionIndex: int32(),
      errorCode: int16(),
      timestamp: int64().default(-1n),
      offset: int64().default(-1n),
      leaderEpoch: int32().since(4).default(-1),
    }),
  }),
});

const EARLIEST = -2n;
const LATEST = -1n;
const MAX_TIMESTAMP = -3n;
const EARLIEST_LOCAL = -4n;
const LATEST_TIERED = -5n;
/** Kafka's UNSUPPORTED_VERSION: the answer to -3 until the service can find the record with the largest timestamp. */
const UNSUPPORTED_VERSION = 35;

/** What the service is asked for one Kafka timestamp; "none": answered -1; "unsupported": UNSUPPORTED_VERSION. */
function specOf(ts: bigint): { spec: number; timestampMs: bigint } | "none" | "unsupported" {
  if (ts === EARLIEST || ts === EARLIEST_LOCAL) return { spec: OffsetSpec.EARLIEST, timestampMs: 0n };
  if (ts === LATEST) return { spec: OffsetSpec.LATEST, timestampMs: 0n };
  if (ts === LATEST_TIERED) return "none";
  if (ts === MAX_TIMESTAMP) return "unsupported";
  return { spec: OffsetSpec.TIMESTAMP, timestampMs: ts };
}

export const listOffsets = api(2, "1-9", ListOffsetsRequest, ListOffsetsResponse, async (req, ctx) => {
  const who = ctx.session.requester;
  const rm = ctx.deps.services.replicas;
  const isolation = req.isolationLevel === 1 ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED;
  // Every partition in request order; those the service answers are looked up in one call.
  type Slot = { topic: string; partition: number; answer: ListedOffset | null; unsupported?: true };
  const slots: Slot[] = [];
  const asked: ListOffsetsPartitionInput[] = [];
  const askedSlots: Slot[] = [];
  for (const t of req.topics) {
    for (const p of t.partitions) {
      const slot: Slot = { topic: t.name, partition: p.partitionIndex, answer: null };
      slots.push(slot);
      const s = specOf(p.timestamp);
      const base = { topic: t.name, partition: p.partitionIndex, offset: -1, timestampMs: -1, leaderEpoch: null };
      if (s === "none") slot.answer = { ...base, error: null };
      else if (s === "unsupported") {
        slot.answer = { ...base, error: null };
        slot.unsupported = true;
      } else {
        asked.push({ topic: t.name, partition: p.partitionIndex, ...s, currentLeaderEpoch: p.currentLeaderEpoch });
        askedSlots.push(slot);
      }
    }
  }
  if (asked.length > 0) {
    const split = ctx.deps.access.listOffsets(who, asked);
    const answers = split.merge(split.all || split.allowed.length > 0 ? serviceListOffsets(rm, split.allowed, isolation) : []);
    answers.forEach((a, i) => {
      (askedSlots[i] as Slot).answer = a;
    });
  }
  const topics = new Map<string, { name: string; partitions: object[] }>();
  for (const s of slots) {
    let t = topics.get(s.topic);
    if (!t) topics.set(s.topic, (t = { name: s.topic, partitions: [] }));
    const a = s.answer as ListedOffset;
    t.partitions.push({
      partitionIndex: s.partition,
      errorCode: s.unsupported ? UNSUPPORTED_VERSION : offsetNotAvailableFor(kafkaErrorCode(a.error), ctx.apiVersion >= 5),
      timestamp: BigInt(a.timestampMs),
      offset: BigInt(a.offset),
      leaderEpoch: a.leaderEpoch ?? -1,
    });
  }
  return { throttleTimeMs: 0, topics: [...topics.values()] };
});
