/**
 * Kafka messages described once, as data, and the encoder and decoder every version derives from
 * that description.
 *
 * Kafka publishes each request and response as a list of fields, each with the versions it exists
 * in, the versions it may be null in, and for flexible versions an optional tag (a tagged field is
 * written only when it differs from its default). A message here is the same list in our own
 * notation, written from those definitions:
 *
 * ```ts
 * const request = message("Metadata", "0-12", "9+", {
 *   topics: structs({ topicId: uuid().since(10), name: string().nullable("10+") }).nullable("1+"),
 *   allowAutoTopicCreation: bool().since(4).default(true),
 * });
 * type MetadataRequest = Decoded<typeof request>;   // { topics: {topicId, name}[] | null; ... }
 * decode(request, reader, 4);  encode(request, value, 4, writer);
 * ```
 *
 * Decoding fills every field: one absent from the version (or a tagged one not sent) gets its
 * default. Encoding takes any subset of the fields (the rest are their defaults) and writes only
 * the fields of the version asked for, so one response value serves every version. Keys keep
 * their order: a struct's fields are read and written in the order they are declared.
 *
 * A field's `since(n)` (or `versions("a-b")`), `nullable("a+")`, `tagged(tag, "a+")` and
 * `default(v)` say what the definition's `versions`, `nullableVersions`, `tag`/`taggedVersions`
 * and `default` say.
 */
import { KafkaDecodeError, type KafkaReader, KafkaWriter } from "./wire.ts";

/** Versions as [first, last] (last may be Infinity). */
export type Versions = readonly [number, number];

/** Parses Kafka's notation: "3+", "0-7", "5", or "none". */
export function versions(spec: string): Versions {
  if (spec === "none") return [1, 0];
  const plus = /^(\d+)\+$/.exec(spec);
  if (plus) return [Number(plus[1]), Number.POSITIVE_INFINITY];
  const range = /^(\d+)-(\d+)$/.exec(spec);
  if (range) return [Number(range[1]), Number(range[2])];
  if (/^\d+$/.test(spec)) return [Number(spec), Number(spec)];
  throw new Error(`versions "${spec}" is not "N+", "N-M", "N" or "none"`);
}

function within(v: number, r: Versions): boolean {
  return v >= r[0] && v <= r[1];
}

/** How one type is read and written (a primitive, a struct, an array). */
export interface WireType<T> {
  /** `nullable`: whether the field may be null in this version (types that write their own null check it). */
  read(r: KafkaReader, version: number, flexible: boolean, nullable?: boolean, name?: string): T;
  write(w: KafkaWriter, value: T, version: number, flexible: boolean): void;
  /** The value of an absent field of this type. */
  readonly zero: T;
  /** Fewest bytes one value takes (bounds an array's count against the bytes left). */
  readonly minBytes: number;
}

/** A field of a struct: its type and the versions it lives in. Immutable; each modifier returns a copy. */
export class Field<T> {
  constructor(
    readonly type: WireType<T>,
    readonly present: Versions = [0, Number.POSITIVE_INFINITY],
    readonly nullableIn: Versions = [1, 0],
    readonly tag: number | null = null,
    readonly taggedIn: Versions = [1, 0],
    readonly defaultValue: T = type.zero,
  ) {}

  /** Present from version `v` on. */
  since(v: number): Field<T> {
    return new Field(this.type, [v, Number.POSITIVE_INFINITY], this.nullableIn, this.tag, this.taggedIn, this.defaultValue);
  }

  /** Present in `spec` ("0-3", "4+"). */
  versions(spec: string): Field<T> {
    return new Field(this.type, versions(spec), this.nullableIn, this.tag, this.taggedIn, this.defaultValue);
  }

  /** May be null in `spec`; the value type gains null. */
  nullable(spec: string): Field<T | null> {
    return new Field<T | null>(this.type as WireType<T | null>, this.present, versions(spec), this.tag, this.taggedIn, this.defaultValue);
  }

  /** A tagged field with `tag` in `spec` (the field exists only as tagged there). */
  tagged(tag: number, spec: string): Field<T> {
    const tv = versions(spec);
    return new Field(this.type, tv, this.nullableIn, tag, tv, this.defaultValue);
  }

  /** The value when absent (Kafka's `default`). */
  default(v: T): Field<T> {
    return new Field(this.type, this.present, this.nullableIn, this.tag, this.taggedIn, v);
  }
}

/** The fields of a struct, by name. */
export type Fields = Record<string, Field<unknown>>;
/** The decoded value of a struct with these fields. */
export type ValueOf<F extends Fields> = { [K in keyof F]: F[K] extends Field<infer T> ? T : never };

/** What an encoder accepts: any field may be left out (it is its default), at every depth. */
export type Input<T> = T extends Buffer | Uint8Array | bigint | string | number | boolean | null
  ? T
  : T extends readonly (infer E)[]
    ? readonly Input<E>[]
    : T extends object
      ? { readonly [K in keyof T]?: Input<T[K]> }
      : T;

/** A struct: an ordered list of fields (a message body, or an array's element). */
export class Struct<F extends Fields> implements WireType<ValueOf<F>> {
  /** Every struct of Kafka's definitions takes a byte at least (a count, a length, a tag count). */
  readonly minBytes = 1;
  private readonly entries: [string, Field<unknown>][];
  /** Tagged fields by tag. */
  private readonly byTag = new Map<number, [string, Field<unknown>]>();

  constructor(readonly fields: F) {
    this.entries = Object.entries(fields);
    for (const e of this.entries) {
      if (e[1].tag !== null) this.byTag.set(e[1].tag, e);
    }
  }

  get zero(): ValueOf<F> {
    const v: Record<string, unknown> = {};
    for (const [k, f] of this.entries) v[k] = f.defaultValue;
    return v as ValueOf<F>;
  }

  read(r: KafkaReader, version: number, flexible: boolean): ValueOf<F> {
    const out: Record<string, unknown> = {};
    for (const [k, f] of this.entries) {
      if (f.tag !== null || !within(version, f.present)) {
        out[k] = f.defaultValue;
        continue;
      }
      out[k] = readField(r, f, version, flexible, k);
    }
    if (flexible) this.readTagged(r, out, version);
    return out as ValueOf<F>;
  }

  private readTagged(r: KafkaReader, out: Record<string, unknown>, version: number): void {
    const n = r.uvarint();
    let last = -1;
    for (let i = 0; i < n; i++) {
      const tag = r.uvarint();
      if (tag <= last) throw new KafkaDecodeError(`tagged field ${tag} after ${last}: tags must increase`);
      last = tag;
      const size = r.uvarint();
      const known = this.byTag.get(tag);
      if (known === undefined || !within(version, known[1].taggedIn)) {
        r.skip(size);
        continue;
      }
      const start = r.offset;
      out[known[0]] = readField(r, known[1], version, true, known[0]);
      if (r.offset - start !== size) {
        throw new KafkaDecodeError(`tagged field ${tag} (${known[0]}) says ${size} bytes but holds ${r.offset - start}`);
      }
    }
  }

  write(w: KafkaWriter, value: ValueOf<F>, version: number, flexible: boolean): void {
    const v = value as Record<string, unknown>;
    for (const [k, f] of this.entries) {
      if (f.tag !== null || !within(version, f.present)) continue;
      writeField(w, f, k in v && v[k] !== undefined ? v[k] : f.defaultValue, version, flexible, k);
    }
    if (flexible) this.writeTagged(w, v, version);
  }

  private writeTagged(w: KafkaWriter, v: Record<string, unknown>, version: number): void {
    const sent: [string, Field<unknown>, unknown][] = [];
    for (const [, [k, f]] of [...this.byTag].sort((a, b) => a[0] - b[0])) {
      if (!within(version, f.taggedIn)) continue;
      const x = v[k];
      if (x === undefined || sameValue(x, f.defaultValue)) continue;
      sent.push([k, f, x]);
    }
    w.uvarint(sent.length);
    for (const [k, f, x] of sent) {
      const inner = new KafkaWriter();
      writeField(inner, f, x, version, true, k);
      const bytes = inner.toBuffer();
      w.uvarint(f.tag as number)
        .uvarint(bytes.length)
        .raw(bytes);
    }
  }
}

function readField(r: KafkaReader, f: Field<unknown>, version: number, flexible: boolean, name: string): unknown {
  const nullable = within(version, f.nullableIn);
  if (f.type instanceof Struct) {
    if (nullable) {
      const present = r.int8();
      if (present < 0) return null;
    }
    return f.type.read(r, version, flexible);
  }
  const v = f.type.read(r, version, flexible, nullable, name);
  if (v === null && !nullable) throw new KafkaDecodeError(`${name} is null, which version ${version} does not allow`);
  return v;
}

function writeField(w: KafkaWriter, f: Field<unknown>, value: unknown, version: number, flexible: boolean, name: string): void {
  const nullable = within(version, f.nullableIn);
  if (value === null && !nullable) {
    throw new RangeError(`${name} may not be null in version ${version}`);
  }
  if (f.type instanceof Struct) {
    if (nullable) {
      w.int8(value === null ? -1 : 1);
      if (value === null) return;
    }
    f.type.write(w, value as never, version, flexible);
    return;
  }
  f.type.write(w, value, version, flexible);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === 0 && b.length === 0;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  // A tagged struct equal to its default, field by field (a field left out is its default).
  if (isPlainObject(a) && isPlainObject(b)) return Object.keys(b).every((k) => a[k] === undefined || sameValue(a[k], b[k]));
  return false;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

/** ARRAY / COMPACT_ARRAY of one element type. */
class ArrayType<E> implements WireType<E[] | null> {
  readonly minBytes = 1;
  constructor(readonly element: WireType<E>) {}
  get zero(): E[] {
    return [];
  }
  read(r: KafkaReader, version: number, flexible: boolean, nullable = false, name = "array"): E[] | null {
    const n = r.count(flexible, this.element.minBytes);
    if (n < 0) {
      if (!nullable) throw new KafkaDecodeError(`${name} is null, which version ${version} does not allow`);
      return null;
    }
    const out = new Array<E>(n);
    for (let i = 0; i < n; i++) out[i] = this.element.read(r, version, flexible);
    return out;
  }
  write(w: KafkaWriter, value: E[] | null, version: number, flexible: boolean): void {
    if (value === null) {
      w.count(-1, flexible);
      return;
    }
    w.count(value.length, flexible);
    for (const e of value) {
      this.element.write(w, this.element instanceof Struct ? ((e ?? {}) as E) : e, version, flexible);
    }
  }
}

/** STRING / COMPACT_STRING. */
class StringType implements WireType<string | null> {
  readonly zero = "";
  readonly minBytes = 1;
  read(r: KafkaReader, version: number, flexible: boolean, nullable = false, name = "string"): string | null {
    const v = r.string(flexible);
    if (v === null && !nullable) throw new KafkaDecodeError(`${name} is null, which version ${version} does not allow`);
    return v;
  }
  write(w: KafkaWriter, value: unknown, _version: number, flexible: boolean): void {
    w.string(value as string | null, flexible);
  }
}

/** BYTES / COMPACT_BYTES (read as a view of the frame). */
class BytesType implements WireType<Buffer | null> {
  readonly zero = Buffer.alloc(0);
  readonly minBytes = 1;
  read(r: KafkaReader, version: number, flexible: boolean, nullable = false, name = "bytes"): Buffer | null {
    const v = r.bytes(flexible);
    if (v === null && !nullable) throw new KafkaDecodeError(`${name} is null, which version ${version} does not allow`);
    return v;
  }
  write(w: KafkaWriter, value: unknown, _version: number, flexible: boolean): void {
    w.bytes(value as Uint8Array | null, flexible);
  }
}

/** A record set as it travels: the received view, or the chunks read from a log. */
export type RecordSet = Buffer | readonly Buffer[];

/** RECORDS: BYTES holding record batches; written from one buffer or several chunks, never copied when large. */
class RecordsType implements WireType<RecordSet | null> {
  readonly zero = null;
  readonly minBytes = 1;
  read(r: KafkaReader, _version: number, flexible: boolean): Buffer | null {
    return r.bytes(flexible);
  }
  write(w: KafkaWriter, value: unknown, _version: number, flexible: boolean): void {
    if (value === null || value === undefined) w.bytes(null, flexible);
    else if (Buffer.isBuffer(value)) w.bytes(value, flexible);
    else w.chunked(value as readonly Buffer[], flexible);
  }
}

function primitive<T>(minBytes: number, zero: T, read: (r: KafkaReader) => T, write: (w: KafkaWriter, v: T) => void): () => Field<T> {
  const type: WireType<T> = { zero, minBytes, read: (r) => read(r), write: (w, v) => write(w, v) };
  return () => new Field(type);
}

export const int8 = primitive(
  1,
  0,
  (r) => r.int8(),
  (w, v) => w.int8(v),
);
export const int16 = primitive(
  2,
  0,
  (r) => r.int16(),
  (w, v) => w.int16(v),
);
export const uint16 = primitive(
  2,
  0,
  (r) => r.uint16(),
  (w, v) => w.uint16(v),
);
export const int32 = primitive(
  4,
  0,
  (r) => r.int32(),
  (w, v) => w.int32(v),
);
export const uint32 = primitive(
  4,
  0,
  (r) => r.uint32(),
  (w, v) => w.uint32(v),
);
export const int64 = primitive(
  8,
  0n,
  (r) => r.int64(),
  (w, v) => w.int64(v),
);
export const float64 = primitive(
  8,
  0,
  (r) => r.float64(),
  (w, v) => w.float64(v),
);
export const bool = primitive(
  1,
  false,
  (r) => r.bool(),
  (w, v) => w.bool(v),
);
const ZERO_UUID = Buffer.alloc(16);
export const uuid = primitive<Buffer>(
  16,
  ZERO_UUID,
  (r) => r.uuid(),
  (w, v) => w.uuid(v),
);

const STRING = new StringType() as WireType<string>;
const BYTES = new BytesType() as WireType<Buffer>;
const RECORDS = new RecordsType();

export const string = (): Field<string> => new Field<string>(STRING);
export const bytes = (): Field<Buffer> => new Field<Buffer>(BYTES);
/** Record batches (always nullable in Kafka's definitions). */
export const records = (): Field<RecordSet | null> => new Field<RecordSet | null>(RECORDS, undefined, [0, Number.POSITIVE_INFINITY]);

/** A struct from its fields, in order. */
export function struct<F extends Fields>(fields: F): Struct<F> {
  return new Struct(fields);
}

/** An array of structs with these fields (the common case, with its element type inferred). */
export function structs<F extends Fields>(fields: F): Field<ValueOf<F>[]> {
  return new Field<ValueOf<F>[]>(new ArrayType(new Struct(fields)) as unknown as WireType<ValueOf<F>[]>);
}

/** An array of a primitive. */
export function arrayOf<T>(element: Field<T>): Field<T[]> {
  return new Field<T[]>(new ArrayType(element.type) as unknown as WireType<T[]>);
}

/** A struct field (not an array). */
export function nested<F extends Fields>(fields: F): Field<ValueOf<F>> {
  return new Field<ValueOf<F>>(new Struct(fields));
}

/** One message (a request or a response body) of one API. */
export interface Message<F extends Fields> {
  readonly name: string;
  readonly versions: Versions;
  /** First flexible version (Infinity: none). */
  readonly flexibleFrom: number;
  readonly body: Struct<F>;
}

/** A message: `name`, its valid versions ("0-12"), its flexible versions ("9+" or "none"), its fields. */
export function message<F extends Fields>(name: string, valid: string, flexible: string, fields: F): Message<F> {
  const fv = versions(flexible);
  return { name, versions: versions(valid), flexibleFrom: fv[0] <= fv[1] ? fv[0] : Number.POSITIVE_INFINITY, body: new Struct(fields) };
}

/** The decoded value of a message. */
export type Decoded<M> = M extends Message<infer F> ? ValueOf<F> : never;
/** What encoding a message takes. */
export type Encodable<M> = M extends Message<infer F> ? Input<ValueOf<F>> : never;

/** Whether `version` of `m` is flexible. */
export function isFlexible(m: Message<Fields>, version: number): boolean {
  return version >= m.flexibleFrom;
}

/** Decodes version `version` of `m` from `r`. */
export function decode<F extends Fields>(m: Message<F>, r: KafkaReader, version: number): ValueOf<F> {
  if (!within(version, m.versions)) throw new KafkaDecodeError(`${m.name} has no version ${version}`);
  return m.body.read(r, version, version >= m.flexibleFrom);
}

/** Encodes `value` as version `version` of `m` into `w`. */
export function encode<F extends Fields>(m: Message<F>, value: Input<ValueOf<F>>, version: number, w: KafkaWriter): void {
  if (!within(version, m.versions)) throw new RangeError(`${m.name} has no version ${version}`);
  m.body.write(w, value as ValueOf<F>, version, version >= m.flexibleFrom);
}
