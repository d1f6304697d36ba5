/**
 * Fuzz target "raft": Raft messages (src/raft/codec.ts, src/raft/validate.ts) and controller
 * metadata records (src/metadata/records.ts), encoded from generated values, then byte-edited
 * (or, for Raft, with a count or length varint replaced by an edge value).
 *
 * Properties: decodeMessage and decodeMetadataRecord throw nothing but catalog RillErrors; a
 * message that decodes either fails validateMessage with a catalog RillError or re-encodes
 * without an assertion and decodes again to the same message; an unedited message or record
 * decodes to what was encoded.
 */
import fc from "fast-check";
import { decodeMetadataRecord, encodeMetadataRecord, type MetadataRecord } from "../../../src/metadata/records.ts";
import { decodeMessage, encodeMessage } from "../../../src/raft/codec.ts";
import type { Message } from "../../../src/raft/types.ts";
import { validateMessage } from "../../../src/raft/validate.ts";
import { applyEdits, type ByteEdit, byteEdits, edgyInt, zigzag } from "../lib/batch-model.ts";
import { attempt, type FuzzTarget, hex, holds, showJson } from "../lib/harness.ts";

/** One case: a Raft message or a metadata record, and edits of its bytes. */
export type RaftCase =
  | { readonly kind: "raft"; readonly message: Message; readonly edits: readonly ByteEdit[] }
  | { readonly kind: "fields"; readonly type: number; readonly fields: readonly number[]; readonly edits: readonly ByteEdit[] }
  | { readonly kind: "record"; readonly record: MetadataRecord; readonly edits: readonly ByteEdit[] };

const id = fc.constantFrom(1, 2, 3, 4);
const num = fc.oneof(fc.nat({ max: 20 }), fc.constantFrom(0, 1, 127, 128, 2 ** 31, 2 ** 52 - 1));
const bytes = fc.uint8Array({ maxLength: 16 });
const env = { from: id, to: id, term: num };

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant("prevote" as const), ...env, lastIndex: num, lastTerm: num }),
  fc.record({ type: fc.constant("vote" as const), ...env, lastIndex: num, lastTerm: num, transfer: fc.boolean() }),
  fc.record({ type: fc.constantFrom("prevote-response" as const, "vote-response" as const), ...env, reject: fc.boolean() }),
  fc
    .record({
      type: fc.constant("append" as const),
      ...env,
      prevIndex: num,
      prevTerm: num,
      commit: num,
      entries: fc.array(fc.record({ term: num, kind: fc.constantFrom("data" as const, "noop" as const), data: bytes }), { maxLength: 3 }),
    })
    .map((m) => ({ ...m, entries: m.entries.map((e, k) => ({ ...e, index: m.prevIndex + 1 + k })) })),
  fc.record({ type: fc.constant("append-response" as const), ...env, index: num, reject: fc.boolean(), hintIndex: num, hintTerm: num }),
  fc.record({ type: fc.constant("heartbeat" as const), ...env, commit: num }),
  fc.record({ type: fc.constantFrom("heartbeat-response" as const, "timeout-now" as const), ...env }),
  fc.record({
    type: fc.constant("snapshot" as const),
    ...env,
    snapshot: fc.record({ meta: fc.record({ index: num, term: num, voters: fc.array(id, { minLength: 1, maxLength: 3 }) }), data: bytes }),
  }),
) as fc.Arbitrary<Message>;

const name = fc.string({ minLength: 1, maxLength: 8 });
const topicId = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString("hex"));
const record: fc.Arbitrary<MetadataRecord> = fc.oneof(
  fc.record({
    type: fc.constant("topic" as const),
    v: fc.constant(1 as const),
    name,
    topicId,
    configs: fc.dictionary(name, name, { maxKeys: 2 }),
  }),
  fc.record({
    type: fc.constant("partition" as const),
    v: fc.constant(1 as const),
    topic: name,
    partition: fc.nat(9),
    replicas: fc.array(id, { maxLength: 3 }),
    isr: fc.array(id, { maxLength: 3 }),
    leader: id,
    leaderEpoch: fc.nat(9),
    partitionEpoch: fc.nat(9),
  }),
  fc.record({ type: fc.constant("remove-topic" as const), v: fc.constant(1 as const), name, topicId: topicId }),
) as fc.Arbitrary<MetadataRecord>;

const edits = fc.oneof({ weight: 1, arbitrary: fc.constant([] as ByteEdit[]) }, { weight: 3, arbitrary: byteEdits });

/** Any value a varlong field may carry, the ones past what the encoder writes included. */
const anyNum = fc.oneof(num, edgyInt, fc.constantFrom(2 ** 52, 2 ** 53 - 1, -1));

const raftCase: fc.Arbitrary<RaftCase> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("raft" as const), message, edits }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("fields" as const),
      type: fc.integer({ min: 0, max: 11 }),
      // from and to mostly as node 2 accepts them, so the fields after them reach validateMessage.
      fields: fc
        .tuple(id, fc.constantFrom(2, 2, 2, 5), fc.array(fc.oneof(fc.constantFrom(0, 1, 2, 3), anyNum), { maxLength: 10 }))
        .map(([from, to, rest]) => [from, to, ...rest]),
      edits: fc.constant([] as ByteEdit[]),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("record" as const), record, edits }) },
);

/** Version 1, the type code, then each field as a zig-zag varlong (flags 0 and 1 are one byte too). */
function fieldBytes(type: number, fields: readonly number[]): Buffer {
  return Buffer.from([1, type, ...fields.flatMap((v) => zigzag(v))]);
}

function bytesOf(c: RaftCase): Buffer {
  const b =
    c.kind === "raft"
      ? Buffer.from(encodeMessage(c.message))
      : c.kind === "fields"
        ? fieldBytes(c.type, c.fields)
        : encodeMetadataRecord(c.record);
  return c.edits.length === 0 ? b : applyEdits(b, c.edits);
}

/** A value as comparable text: keys sorted, byte fields as hex. */
function text(v: unknown): string {
  return showJson(sorted(v));
}

function sorted(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
  if (Array.isArray(v)) return v.map(sorted);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

function check(c: RaftCase): void {
  const b = bytesOf(c);
  if (c.kind === "record") {
    const r = attempt(() => decodeMetadataRecord(b));
    if (c.edits.length === 0) holds("ok" in r && text(r.ok) === text(c.record), "a metadata record did not decode as encoded");
    return;
  }
  const m = attempt(() => decodeMessage(b));
  if (c.kind === "raft" && c.edits.length === 0)
    holds("ok" in m && text(m.ok) === text(c.message), "a Raft message did not decode as encoded");
  if ("err" in m) return;
  // As node 2 sees it.
  const valid = attempt(() => validateMessage(m.ok, 2));
  if ("err" in valid) return;
  const again = attempt(() => decodeMessage(encodeMessage(m.ok)));
  holds("ok" in again && text(again.ok) === text(m.ok), "a validated message did not re-encode to itself");
}

/** The "raft" target. */
export const raftTarget: FuzzTarget<RaftCase> = {
  name: "raft",
  doc: "Raft messages (codec + validate) and controller metadata records, encoded then byte-edited",
  ciCases: 1500,
  arbitrary: raftCase,
  open: () => null,
  check,
  show: (c) => `${c.kind} ${hex(bytesOf(c))}\ncase ${showJson(c)}`,
};
