/**
 * The wire format of Raft messages: compact, binary, versioned.
 *
 * ```
 * byte 0      version (1)
 * byte 1      type code: 1 prevote, 2 vote, 3 prevote-response, 4 vote-response, 5 append,
 *             6 append-response, 7 heartbeat, 8 heartbeat-response, 9 snapshot, 10 timeout-now
 * varlong     from, to, term            (every integer is a zig-zag varlong in [0, 2^52), src/base/varint.ts)
 * then by type:
 *   prevote             lastIndex, lastTerm
 *   vote                lastIndex, lastTerm, u8 transfer (0|1)
 *   *-response (votes)  u8 reject (0|1)
 *   append              prevIndex, prevTerm, commit, count,
 *                       count x { term, u8 kind (0 data | 1 noop | 2 config), length, length bytes }
 *                       (entry indexes are implied: prevIndex + 1, + 2, ...)
 *   append-response     index, u8 reject, hintIndex, hintTerm
 *   heartbeat           commit
 *   snapshot            index, term, voterCount, voterCount x id, length, length bytes,
 *                       then, only when the snapshot names directory ids: voterCount x { length, utf-8 }
 *   heartbeat-response, timeout-now: nothing more
 * ```
 * Nothing may follow the last field. `decode` rejects malformed input with
 * RillError(INVALID_REQUEST); byte fields it returns are views into the input (no copy).
 * Semantic checks (ids, term order) are the core's (validate.ts), done on every step.
 */
import { assert } from "../base/assert.ts";
import { rillError } from "../base/errors.ts";
import { readVarlong, varintSize, writeVarint, type Cursor } from "../base/varint.ts";
import type { Entry, EntryKind, Message, MessageType } from "./types.ts";

/** The codec version written in byte 0. */
export const RAFT_CODEC_VERSION = 1;

/**
 * Every integer field is below 2^52, on both sides: a decoded message must re-encode (a term
 * adopted from a peer is sent again), so the decoder refuses what the encoder would assert on.
 */
const NUM_LIMIT = 2 ** 52;

const TYPE_CODES: Record<MessageType, number> = {
  prevote: 1,
  vote: 2,
  "prevote-response": 3,
  "vote-response": 4,
  append: 5,
  "append-response": 6,
  heartbeat: 7,
  "heartbeat-response": 8,
  snapshot: 9,
  "timeout-now": 10,
};
const KIND_CODES: Record<EntryKind, number> = { data: 0, noop: 1, config: 2 };
const KINDS_BY_CODE: readonly EntryKind[] = ["data", "noop", "config"];
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

const TYPES_BY_CODE = new Map<number, MessageType>(Object.entries(TYPE_CODES).map(([t, c]) => [c, t as MessageType]));

/** Accumulates field sizes, then writes them; two passes over the same field list. */
class Writer {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  size = 0;
  sizing = true;

  num(v: number): void {
    assert(Number.isSafeInteger(v) && v >= 0 && v < NUM_LIMIT, `raft codec: ${v} is not encodable`);
    if (this.sizing) this.size += varintSize(v);
    else this.pos = writeVarint(this.buf, this.pos, v);
  }

  byte(v: number): void {
    if (this.sizing) this.size += 1;
    else this.buf[this.pos++] = v;
  }

  bytes(b: Uint8Array): void {
    this.num(b.length);
    if (this.sizing) this.size += b.length;
    else {
      this.buf.set(b, this.pos);
      this.pos += b.length;
    }
  }
}

/** Encodes a message into a new buffer. */
export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer();
  writeMessage(w, m);
  w.buf = new Uint8Array(w.size);
  w.sizing = false;
  writeMessage(w, m);
  assert(w.pos === w.size, "raft codec: size pass and write pass disagree");
  return w.buf;
}

function writeMessage(w: Writer, m: Message): void {
  w.byte(RAFT_CODEC_VERSION);
  w.byte(TYPE_CODES[m.type]);
  w.num(m.from);
  w.num(m.to);
  w.num(m.term);
  switch (m.type) {
    case "prevote":
      w.num(m.lastIndex);
      w.num(m.lastTerm);
      return;
    case "vote":
      w.num(m.lastIndex);
      w.num(m.lastTerm);
      w.byte(m.transfer ? 1 : 0);
      return;
    case "prevote-response":
    case "vote-response":
      w.byte(m.reject ? 1 : 0);
      return;
    case "append":
      w.num(m.prevIndex);
      w.num(m.prevTerm);
      w.num(m.commit);
      w.num(m.entries.length);
      for (const e of m.entries) {
        w.num(e.term);
        w.byte(KIND_CODES[e.kind]);
        w.bytes(e.data);
      }
      return;
    case "append-response":
      w.num(m.index);
      w.byte(m.reject ? 1 : 0);
      w.num(m.hintIndex);
      w.num(m.hintTerm);
      return;
    case "heartbeat":
      w.num(m.commit);
      return;
    case "snapshot": {
      const meta = m.snapshot.meta;
      w.num(meta.index);
      w.num(meta.term);
      w.num(meta.voters.length);
      for (const id of meta.voters) w.num(id);
      w.bytes(m.snapshot.data);
      if (meta.directoryIds !== undefined) for (const d of meta.directoryIds) w.bytes(utf8.encode(d));
      return;
    }
    case "heartbeat-response":
    case "timeout-now":
      return;
  }
}

function malformed(what: string): never {
  throw rillError("INVALID_REQUEST", `raft message: ${what}`);
}

/** Reads fields from a buffer, failing with INVALID_REQUEST on anything out of place. */
class Reader {
  readonly c: Cursor = { pos: 0 };
  readonly buf: Uint8Array;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  num(field: string): number {
    let v: number;
    try {
      v = readVarlong(this.buf, this.c);
    } catch {
      return malformed(`${field}: truncated or overlong varint`);
    }
    if (v < 0 || !(v < NUM_LIMIT)) malformed(`${field}: ${v} is not a non-negative integer below 2^52`);
    return v;
  }

  byte(field: string): number {
    if (this.c.pos >= this.buf.length) malformed(`${field}: truncated`);
    return this.buf[this.c.pos++]!;
  }

  flag(field: string): boolean {
    const b = this.byte(field);
    if (b > 1) malformed(`${field}: ${b} is not 0 or 1`);
    return b === 1;
  }

  /** A count of items that each take at least `minBytes`, bounded by the bytes left. */
  count(field: string, minBytes: number): number {
    const n = this.num(field);
    if (n * minBytes > this.buf.length - this.c.pos) malformed(`${field}: ${n} items cannot fit`);
    return n;
  }

  bytes(field: string): Uint8Array {
    const n = this.num(`${field}.length`);
    if (n > this.buf.length - this.c.pos) malformed(`${field}: length ${n} runs past the end`);
    const b = this.buf.subarray(this.c.pos, this.c.pos + n);
    this.c.pos += n;
    return b;
  }
}

/** Decodes one message; throws RillError(INVALID_REQUEST) if `buf` is not exactly one. */
export function decodeMessage(buf: Uint8Array): Message {
  const r = new Reader(buf);
  const version = r.byte("version");
  if (version !== RAFT_CODEC_VERSION) malformed(`version ${version} is not supported`);
  const code = r.byte("type");
  const type = TYPES_BY_CODE.get(code);
  if (type === undefined) malformed(`type code ${code} is unknown`);
  const from = r.num("from");
  const to = r.num("to");
  const term = r.num("term");
  const m = readBody(r, type, from, to, term);
  if (r.c.pos !== buf.length) malformed(`${buf.length - r.c.pos} trailing bytes`);
  return m;
}

function readBody(r: Reader, type: MessageType, from: number, to: number, term: number): Message {
  const h = { from, to, term };
  switch (type) {
    case "prevote":
      return { type, ...h, lastIndex: r.num("lastIndex"), lastTerm: r.num("lastTerm") };
    case "vote":
      return { type, ...h, lastIndex: r.num("lastIndex"), lastTerm: r.num("lastTerm"), transfer: r.flag("transfer") };
    case "prevote-response":
    case "vote-response":
      return { type, ...h, reject: r.flag("reject") };
    case "append":
      return readAppend(r, h);
    case "append-response":
      return {
        type,
        ...h,
        index: r.num("index"),
        reject: r.flag("reject"),
        hintIndex: r.num("hintIndex"),
        hintTerm: r.num("hintTerm"),
      };
    case "heartbeat":
      return { type, ...h, commit: r.num("commit") };
    case "snapshot": {
      const index = r.num("snapshot.index");
      const sterm = r.num("snapshot.term");
      const n = r.count("snapshot.voters", 1);
      const voters: number[] = [];
      for (let k = 0; k < n; k++) voters.push(r.num("snapshot.voters"));
      const data = r.bytes("snapshot.data");
      if (r.c.pos === r.buf.length) return { type, ...h, snapshot: { meta: { index, term: sterm, voters }, data } };
      const directoryIds: string[] = [];
      for (let k = 0; k < n; k++) {
        try {
          directoryIds.push(fromUtf8.decode(r.bytes("snapshot.directoryIds")));
        } catch (e) {
          if (e instanceof TypeError) malformed("snapshot.directoryIds: not utf-8");
          throw e;
        }
      }
      return { type, ...h, snapshot: { meta: { index, term: sterm, voters, directoryIds }, data } };
    }
    case "heartbeat-response":
    case "timeout-now":
      return { type, ...h };
  }
}

function readAppend(r: Reader, h: { from: number; to: number; term: number }): Message {
  const prevIndex = r.num("prevIndex");
  const prevTerm = r.num("prevTerm");
  const commit = r.num("commit");
  const n = r.count("entries", 3);
  const entries: Entry[] = [];
  for (let k = 0; k < n; k++) {
    const term = r.num(`entries[${k}].term`);
    const kindByte = r.byte(`entries[${k}].kind`);
    const kind = KINDS_BY_CODE[kindByte];
    if (kind === undefined) malformed(`entries[${k}].kind: ${kindByte} is unknown`);
    entries.push({ index: prevIndex + 1 + k, term, kind, data: r.bytes(`entries[${k}].data`) });
  }
  return { type: "append", ...h, prevIndex, prevTerm, commit, entries };
}
