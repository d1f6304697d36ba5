/**
 * How `rill consume` prints a record and how `rill produce` reads one: the byte encodings of keys
 * and values on the command line (text, base64, hex), the JSON line both commands share, and the
 * kcat/rpk-style format string of `consume -f`.
 *
 * Format string (`-f`): `%t` topic, `%p` partition, `%o` offset, `%k` key, `%v` (or `%s`) value,
 * `%h` headers as `k=v,k=v`, `%T` timestamp (ms since the epoch), `%d` timestamp as an ISO date,
 * `%K` key length and `%S` value length in bytes (-1 for null), `%%` a percent sign; escapes
 * `\n`, `\t`, `\r`, `\\`. A null key or value prints as nothing. Nothing is added: end the format
 * with `\n` for one record per line (as kcat).
 */

import { InvalidArgumentError } from "commander";
import type { ConsumerRecord } from "../client/consumer.ts";
import { CliError } from "./output.ts";

/** How bytes are written on the command line. */
export type Encoding = "text" | "base64" | "hex";

/** The encodings `--key-format` and `--value-format` take. */
export const ENCODINGS: readonly Encoding[] = ["text", "base64", "hex"];

/** `b` as `encoding`; null stays null. */
export function encodeBytes(b: Uint8Array | null, encoding: Encoding): string | null {
  if (b === null) return null;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return encoding === "text" ? buf.toString("utf8") : buf.toString(encoding);
}

/** `s`, written as `encoding`, as bytes; throws CliError naming `what` when it is not valid. */
export function decodeBytes(s: string, encoding: Encoding, what: string): Buffer {
  if (encoding === "text") return Buffer.from(s, "utf8");
  const valid = encoding === "hex" ? /^(?:[0-9a-fA-F]{2})*$/.test(s) : /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0;
  if (!valid) throw new CliError(`${what}: not ${encoding}: ${JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s)}`);
  return Buffer.from(s, encoding);
}

/** How records are printed. */
export interface PrintOptions {
  readonly format: "text" | "json";
  /** A `-f` format string (wins over `format`). */
  readonly formatString?: string | undefined;
  readonly printKey?: boolean | undefined;
  readonly keySeparator: string;
  readonly keyFormat: Encoding;
  readonly valueFormat: Encoding;
}

/** One printed record for `r` (its line, newline included, except with a format string). */
export function formatRecord(r: ConsumerRecord, o: PrintOptions): string {
  if (o.formatString !== undefined) return applyFormat(compileFormat(o.formatString), r, o);
  const key = encodeBytes(r.key, o.keyFormat);
  const value = encodeBytes(r.value, o.valueFormat);
  if (o.format === "json") {
    const headers = r.headers.map((h) => ({ key: h.key, value: encodeBytes(h.value, "text") }));
    return `${JSON.stringify({ topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestampMs, key, value, headers })}\n`;
  }
  return o.printKey ? `${key ?? "null"}${o.keySeparator}${value ?? "null"}\n` : `${value ?? "null"}\n`;
}

/** A parsed format string: literal text and field letters. */
export type CompiledFormat = readonly ({ readonly text: string } | { readonly field: string })[];

const FIELDS = new Set(["t", "p", "o", "k", "v", "s", "h", "T", "d", "K", "S"]);
const ESCAPES: Readonly<Record<string, string>> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "0": "\0" };
const compiled = new Map<string, CompiledFormat>();

/** Parses a `-f` format string; throws InvalidArgumentError naming an unknown `%x` or escape. */
export function compileFormat(format: string): CompiledFormat {
  const hit = compiled.get(format);
  if (hit !== undefined) return hit;
  const parts: ({ text: string } | { field: string })[] = [];
  let text = "";
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    const next = format[i + 1];
    if (c === "%") {
      if (next === "%") text += "%";
      else if (next !== undefined && FIELDS.has(next)) {
        if (text !== "") parts.push({ text });
        text = "";
        parts.push({ field: next });
      } else throw new InvalidArgumentError(`unknown field %${next ?? ""} (known: %t %p %o %k %v %s %h %T %d %K %S %%)`);
      i++;
    } else if (c === "\\" && next !== undefined && next in ESCAPES) {
      text += ESCAPES[next];
      i++;
    } else text += c;
  }
  if (text !== "") parts.push({ text });
  compiled.set(format, parts);
  return parts;
}

function applyFormat(parts: CompiledFormat, r: ConsumerRecord, o: PrintOptions): string {
  let out = "";
  for (const part of parts) {
    if ("text" in part) {
      out += part.text;
      continue;
    }
    switch (part.field) {
      case "t":
        out += r.topic;
        break;
      case "p":
        out += r.partition;
        break;
      case "o":
        out += r.offset;
        break;
      case "k":
        out += encodeBytes(r.key, o.keyFormat) ?? "";
        break;
      case "v":
      case "s":
        out += encodeBytes(r.value, o.valueFormat) ?? "";
        break;
      case "h":
        out += r.headers.map((h) => `${h.key}=${encodeBytes(h.value, "text") ?? ""}`).join(",");
        break;
      case "T":
        out += r.timestampMs;
        break;
      case "d":
        out += new Date(r.timestampMs).toISOString();
        break;
      case "K":
        out += r.key === null ? -1 : r.key.byteLength;
        break;
      case "S":
        out += r.value === null ? -1 : r.value.byteLength;
        break;
    }
  }
  return out;
}

/** A commander parser for `-f`: checks the string now, so a bad one is a usage error. */
export function formatString(value: string): string {
  compileFormat(value);
  return value;
}
