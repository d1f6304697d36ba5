/**
 * `rill produce TOPIC`: one record per stdin line. With `--key-separator SEP` each line is
 * KEY SEP VALUE (split at the first SEP; a line without it is an error, as in Kafka's console
 * producer). With `--format json` each line is an object as `rill consume --format json` prints
 * it — `{"key", "value", "headers", "partition", "timestamp"}`, every field optional, headers a
 * list of `{key, value}` or an object (`topic` and `offset` are ignored) — so records (with their own headers) can be copied from
 * one topic to another. A null value is a tombstone: `"value": null` in JSON, and in text a value
 * equal to `--null-value STR`, or an empty one with `--empty-as-null` (kcat's -Z). Keys and
 * values can be written in base64 or hex (`--key-format`, `--value-format`) for binary data.
 *
 * Reading pauses while the producer's buffer is full, so a large input never sits in memory.
 * With `--print-offsets` each record's `TOPIC PARTITION OFFSET` is printed once stored, in input
 * order; with `--json` the same as one JSON object per record. The first failed record stops the
 * command: the error is printed and the exit is 1.
 */

import * as readline from "node:readline";
import { Producer, type ProducerHeader, type ProducerOptions, type RecordMetadata } from "../client/producer.ts";
import { type Context, clientOptions } from "./context.ts";
import { CliError, write } from "./output.ts";
import { type Encoding, decodeBytes } from "./record-format.ts";
import { checkPartition } from "./topic-commands.ts";

/** Options of `produce`. */
export interface ProduceOptions {
  readonly keySeparator?: string;
  readonly partition?: number;
  readonly acks: "all" | "leader" | "none";
  readonly compression: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  readonly lingerMs: number;
  readonly header: Record<string, string>;
  /** How a line is read: text (default) or a JSON object. */
  readonly format?: "text" | "json";
  readonly keyFormat?: Encoding;
  readonly valueFormat?: Encoding;
  /** Text: a value equal to this is sent as null (a tombstone). */
  readonly nullValue?: string;
  /** Text: an empty value is sent as null. */
  readonly emptyAsNull?: boolean;
  /** Print where each record was stored. */
  readonly printOffsets?: boolean;
  /** Print where each record was stored, as JSON lines. */
  readonly json?: boolean;
}

/** One record read from a line. */
interface LineRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: ProducerHeader[] | undefined;
  partition: number | undefined;
  timestampMs: number | undefined;
}

/** Sends stdin's lines to `topic`; resolves once all are acknowledged, rejects with the first failure. */
export async function produce(ctx: Context, topic: string, o: ProduceOptions): Promise<void> {
  const options: ProducerOptions = { ...clientOptions(ctx), acks: o.acks, compression: o.compression, lingerMs: o.lingerMs };
  const producer = new Producer(options);
  let failure: unknown = null;
  const headers = Object.entries(o.header).map(([key, value]) => ({ key, value }));
  // Where each record went, printed in input order as they are acknowledged.
  const report = o.json || o.printOffsets ? new OrderedReport(ctx, o.json === true) : null;
  try {
    const count = await producer.partitionCount(topic); // an unknown topic fails here, before reading
    if (o.partition !== undefined) checkPartition(topic, o.partition, count);
    const lines = readline.createInterface({ input: ctx.io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
    try {
      let lineNo = 0;
      for await (const line of lines) {
        lineNo++;
        const r = o.format === "json" ? jsonLine(line, lineNo, o) : textLine(line, lineNo, o);
        const partition = r.partition ?? o.partition;
        if (partition !== undefined && r.partition !== undefined) checkPartition(topic, partition, count);
        const all = headers.length > 0 || r.headers !== undefined ? [...headers, ...(r.headers ?? [])] : undefined;
        await producer.ready();
        if (failure !== null) break;
        const sent = producer.send({ topic, key: r.key, value: r.value, headers: all, partition, timestampMs: r.timestampMs });
        sent.catch((e: unknown) => {
          failure ??= e;
        });
        if (report !== null) await report.add(sent);
      }
    } finally {
      lines.close();
    }
    await producer.flush();
    if (report !== null && failure === null) await report.drain();
  } finally {
    await producer.close();
  }
  if (failure !== null) throw failure;
}

/** Prints records' metadata in the order they were sent, as each is acknowledged. */
class OrderedReport {
  private readonly pending: Promise<RecordMetadata>[] = [];
  /** Most sends awaiting their line at once: beyond it, reading waits for the oldest. */
  private static readonly PENDING_MAX = 10_000;

  constructor(
    private readonly ctx: Context,
    private readonly json: boolean,
  ) {}

  async add(sent: Promise<RecordMetadata>): Promise<void> {
    this.pending.push(sent);
    if (this.pending.length >= OrderedReport.PENDING_MAX) await this.printOne();
  }

  async drain(): Promise<void> {
    while (this.pending.length > 0) await this.printOne();
  }

  private async printOne(): Promise<void> {
    const m = await this.pending.shift()!;
    const line = this.json
      ? JSON.stringify({ topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestampMs })
      : `${m.topic} ${m.partition} ${m.offset}`;
    await write(this.ctx.io.stdout, `${line}\n`);
  }
}

function textLine(line: string, lineNo: number, o: ProduceOptions): LineRecord {
  let key: string | null = null;
  let value = line;
  if (o.keySeparator !== undefined) {
    const at = line.indexOf(o.keySeparator);
    if (at < 0) throw new CliError(`stdin line ${lineNo}: no key separator ${JSON.stringify(o.keySeparator)}`);
    key = line.slice(0, at);
    value = line.slice(at + o.keySeparator.length);
  }
  const isNull = (o.nullValue !== undefined && value === o.nullValue) || (o.emptyAsNull === true && value === "");
  return {
    key: key === null ? null : decodeBytes(key, o.keyFormat ?? "text", `stdin line ${lineNo}: key`),
    value: isNull ? null : decodeBytes(value, o.valueFormat ?? "text", `stdin line ${lineNo}: value`),
    headers: undefined,
    partition: undefined,
    timestampMs: undefined,
  };
}

const JSON_FIELDS = new Set(["topic", "partition", "offset", "timestamp", "key", "value", "headers"]);

function jsonLine(line: string, lineNo: number, o: ProduceOptions): LineRecord {
  const at = `stdin line ${lineNo}`;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new CliError(`${at}: not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new CliError(`${at}: expected a JSON object`);
  const obj = v as Record<string, unknown>;
  for (const k of Object.keys(obj))
    if (!JSON_FIELDS.has(k)) throw new CliError(`${at}: unknown field "${k}" (known: key, value, headers, partition, timestamp)`);
  const bytes = (field: "key" | "value", enc: Encoding): Buffer | null => {
    const x = obj[field];
    if (x === undefined || x === null) return null;
    if (typeof x !== "string") throw new CliError(`${at}: ${field} must be a string or null`);
    return decodeBytes(x, enc, `${at}: ${field}`);
  };
  const int = (field: "partition" | "timestamp", max: number): number | undefined => {
    const x = obj[field];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0 || x > max)
      throw new CliError(`${at}: ${field} must be an integer in [0, ${max}]`);
    return x;
  };
  return {
    key: bytes("key", o.keyFormat ?? "text"),
    value: bytes("value", o.valueFormat ?? "text"),
    headers: headersOf(obj["headers"], at),
    partition: int("partition", 0x7fffffff),
    timestampMs: int("timestamp", Number.MAX_SAFE_INTEGER),
  };
}

/** A JSON line's headers: a list of {key, value} (as consume prints them) or an object; values strings or null. */
function headersOf(h: unknown, at: string): ProducerHeader[] | undefined {
  if (h === undefined || h === null) return undefined;
  const bad = (): CliError => new CliError(`${at}: headers must be a list of {"key","value"} or an object of strings`);
  const entries: [unknown, unknown][] = Array.isArray(h)
    ? h.map((e: unknown) => {
        if (typeof e !== "object" || e === null) throw bad();
        return [(e as { key?: unknown }).key, (e as { value?: unknown }).value];
      })
    : typeof h === "object"
      ? Object.entries(h as Record<string, unknown>)
      : (() => {
          throw bad();
        })();
  return entries.map(([key, value]) => {
    if (typeof key !== "string" || (value !== null && value !== undefined && typeof value !== "string")) throw bad();
    return { key, value: (value as string | null | undefined) ?? null };
  });
}
