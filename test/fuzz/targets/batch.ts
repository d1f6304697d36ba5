/**
 * Fuzz target "batch": the record-batch codec of src/protocol/record-batch.ts on valid, lying and
 * byte-mutated batches of every codec (none, gzip, snappy, lz4, zstd; codecs 5-7 refused).
 *
 * Properties:
 * - validateBatch, validateBatchDeep, the records cursor (with headers()), decodeRecords and
 *   filterBatch throw nothing but catalog RillErrors, whatever the bytes;
 * - what validateBatchDeep accepts, validateBatch accepts, and the cursor reads every record of
 *   it (recordCount of them, each header) without an error;
 * - a truthful batch of a supported codec is accepted, reads back as its model, and equals
 *   encodeBatch's bytes for the same records; of codecs 5-7 it is refused with
 *   UNSUPPORTED_COMPRESSION_TYPE, and so is encodeBatch with those codecs;
 * - filterBatch keeping every record of an accepted batch gives a batch that validateBatchDeep
 *   accepts with the same records.
 */
import type { RillError } from "../../../src/base/errors.ts";
import { initCodecs, isSupportedCodec } from "../../../src/protocol/compression.ts";
import { decodeRecords, encodeBatch, filterBatch, records, validateBatch, validateBatchDeep } from "../../../src/protocol/record-batch.ts";
import { type BatchInput, type BatchModel, batchBytes, batchInput, truthful } from "../lib/batch-model.ts";
import { attempt, type FuzzTarget, hex, holds, showJson } from "../lib/harness.ts";

/** Codecs Rill stores: Kafka's five. */
export function supportedCodec(codec: number): boolean {
  return isSupportedCodec(codec);
}

/** Reads every record and header of `b` with the cursor; returns what it read. */
export function readAll(b: Buffer): Array<{ offset: number; ts: number; key: string | null; value: string | null; headers: string }> {
  const out: Array<{ offset: number; ts: number; key: string | null; value: string | null; headers: string }> = [];
  const c = records(b);
  while (c.next()) {
    out.push({
      offset: c.offset,
      ts: c.timestampMs,
      key: c.key()?.toString("hex") ?? null,
      value: c.value()?.toString("hex") ?? null,
      headers: JSON.stringify(c.headers().map((h) => [h.key, h.value?.toString("hex") ?? null])),
    });
  }
  return out;
}

/** What the model's records must read back as. */
export function expectedRecords(m: BatchModel): ReturnType<typeof readAll> {
  return m.records.map((r, i) => ({
    offset: i,
    ts: m.baseTimestamp + r.timestampDelta,
    key: r.key === null ? null : Buffer.from(r.key).toString("hex"),
    value: r.value === null ? null : Buffer.from(r.value).toString("hex"),
    headers: JSON.stringify(
      r.headers.map((h) => [Buffer.from(h.key).toString("utf8"), h.value === null ? null : Buffer.from(h.value).toString("hex")]),
    ),
  }));
}

function check(input: BatchInput): void {
  const b = batchBytes(input);
  const shallow = attempt(() => validateBatch(b));
  const deep = attempt(() => validateBatchDeep(b));
  // Reading unvalidated bytes is bounds-checked: catalog errors only.
  const cursor = attempt(() => readAll(b));
  attempt(() => decodeRecords(b));
  if ("ok" in deep) {
    holds("ok" in shallow, () => `validateBatchDeep accepted what validateBatch refused: ${(shallow as { err: Error }).err.message}`);
    holds("ok" in cursor, () => `validateBatchDeep accepted a batch the cursor cannot read: ${(cursor as { err: Error }).err.message}`);
    holds(cursor.ok.length === deep.ok.recordCount, `cursor read ${cursor.ok.length} records of recordCount ${deep.ok.recordCount}`);
    const filtered = attempt(() => filterBatch(b, 0, () => true));
    holds("ok" in filtered, () => `filterBatch failed on an accepted batch: ${(filtered as { err: Error }).err.message}`);
    const again = attempt(() => validateBatchDeep(filtered.ok));
    holds("ok" in again, () => `filterBatch's output is refused: ${(again as { err: Error }).err.message}`);
    holds(JSON.stringify(readAll(filtered.ok)) === JSON.stringify(cursor.ok), "filterBatch changed the records");
  }
  if (input.edits.length > 0 || !truthful(input.model)) return;
  const m = input.model;
  if (!supportedCodec(m.codec)) {
    for (const r of [shallow, deep])
      holds("err" in r && (r.err as RillError).kind?.name === "UNSUPPORTED_COMPRESSION_TYPE", "codec 5-7 not refused");
    const enc = attempt(() => encodeBatch([{ value: "x" }], { compression: m.codec, nowMs: 0 }));
    holds("err" in enc && (enc.err as RillError).kind?.name === "UNSUPPORTED_COMPRESSION_TYPE", "encodeBatch took codec 5-7");
    return;
  }
  holds("ok" in deep, () => `a valid batch was refused: ${(deep as { err: Error }).err.message}`);
  holds("ok" in cursor && JSON.stringify(cursor.ok) === JSON.stringify(expectedRecords(m)), "a valid batch did not read back as sent");
  const encoded = encodeBatch(
    m.records.map((r) => ({
      key: r.key,
      value: r.value,
      headers: r.headers.map((h) => ({ key: Buffer.from(h.key).toString("utf8"), value: h.value })),
      timestampMs: m.baseTimestamp + r.timestampDelta,
    })),
    { compression: m.codec },
  );
  // Header keys are strings to encodeBatch: only byte-compare when they survive UTF-8.
  const utf8Safe = m.records.every((r) => r.headers.every((h) => Buffer.from(Buffer.from(h.key).toString("utf8")).equals(h.key)));
  // encodeBatch's baseTimestamp is the first record's: compare when the model's is too.
  if (utf8Safe && m.records[0]?.timestampDelta === 0)
    holds(encoded.equals(b), () => `encodeBatch wrote ${hex(encoded)}, the model ${hex(b)}`);
}

/** The "batch" target. */
export const batchTarget: FuzzTarget<BatchInput> = {
  name: "batch",
  doc: "record batches (none/gzip/snappy/lz4/zstd; codecs 5-7 refused): valid, lying inside a consistent frame, byte-mutated",
  ciCases: 2500,
  arbitrary: batchInput,
  open: async () => {
    await initCodecs();
    return null;
  },
  check,
  show: (input) => `batch ${hex(batchBytes(input))}\nmodel ${showJson(input)}`,
};
