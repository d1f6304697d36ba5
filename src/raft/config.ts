/**
 * The voter set (the configuration) as it lives in the log: a `config` entry carries the whole
 * set of voters that takes effect on every node as soon as the entry is appended to its log
 * (Ongaro's thesis 4.1), not when it commits. A snapshot carries the set in effect at its index.
 *
 * Each voter has an id and a directory id: the random id its data directory was created with
 * ("" when unknown, as for the static voters of a fresh cluster). The core only counts ids; the
 * shell uses directory ids to refuse a node that lost its disk and came back under the same id.
 *
 * Entry data: u8 version (1), varlong count, count x { varlong id, varlong length, utf-8 dir }.
 */
import { rillError } from "../base/errors.ts";
import { readVarlong, varintSize, writeVarint, type Cursor } from "../base/varint.ts";
import type { Entry, NodeId, Snapshot } from "./types.ts";

/** The reads of a RaftStorage that `storedConfigAt` needs (storage.ts imports this file). */
interface StoredLog {
  snapshot(): Snapshot;
  firstIndex(): number;
  lastIndex(): number;
  entries(lo: number, hi: number, maxBytes: number): Entry[];
}

/** One voter of a configuration. */
export interface VoterInfo {
  readonly id: NodeId;
  /** The voter's data-directory id; "" when not known (a static voter). */
  readonly directoryId: string;
}

/** A configuration and the log index of the entry (or snapshot) that set it. */
export interface Configuration {
  readonly index: number;
  readonly voters: readonly VoterInfo[];
}

/** A single-server membership change (thesis 4.2, KIP-853): one voter added or removed. */
export type ConfChange =
  | { readonly type: "add-voter"; readonly id: NodeId; readonly directoryId: string }
  | { readonly type: "remove-voter"; readonly id: NodeId };

const VERSION = 1;
const MAX_DIR_BYTES = 64;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Encodes a voter set as the data of a `config` entry. */
export function encodeVoterSet(voters: readonly VoterInfo[]): Uint8Array {
  const dirs = voters.map((v) => utf8.encode(v.directoryId));
  let size = 1 + varintSize(voters.length);
  voters.forEach((v, k) => {
    size += varintSize(v.id) + varintSize(dirs[k]!.length) + dirs[k]!.length;
  });
  const b = new Uint8Array(size);
  b[0] = VERSION;
  let p = writeVarint(b, 1, voters.length);
  voters.forEach((v, k) => {
    p = writeVarint(b, p, v.id);
    p = writeVarint(b, p, dirs[k]!.length);
    b.set(dirs[k]!, p);
    p += dirs[k]!.length;
  });
  return b;
}

function bad(what: string): never {
  throw rillError("INVALID_REQUEST", `raft voter set: ${what}`);
}

/** Decodes a `config` entry's data; throws RillError(INVALID_REQUEST) if it is not a valid voter set. */
export function decodeVoterSet(data: Uint8Array): VoterInfo[] {
  if (data.length < 2 || data[0] !== VERSION) bad(`version ${String(data[0])} is not supported`);
  const c: Cursor = { pos: 1 };
  const num = (field: string): number => {
    let v: number;
    try {
      v = readVarlong(data, c);
    } catch {
      return bad(`${field}: truncated varint`);
    }
    if (!Number.isSafeInteger(v) || v < 0) bad(`${field}: ${v} is out of range`);
    return v;
  };
  const n = num("count");
  if (n < 1 || n * 2 > data.length) bad(`count ${n} is invalid`);
  const out: VoterInfo[] = [];
  for (let k = 0; k < n; k++) {
    const id = num("id");
    if (id < 1) bad("voter ids must be positive");
    if (out.some((v) => v.id === id)) bad(`voter ${id} appears twice`);
    const len = num("directoryId.length");
    if (len > MAX_DIR_BYTES || c.pos + len > data.length) bad("directoryId runs past the end");
    let directoryId: string;
    try {
      directoryId = fromUtf8.decode(data.subarray(c.pos, c.pos + len));
    } catch {
      return bad("directoryId is not utf-8");
    }
    c.pos += len;
    out.push({ id, directoryId });
  }
  if (c.pos !== data.length) bad(`${data.length - c.pos} trailing bytes`);
  return out;
}

/** The voter set a snapshot carries (directory ids "" where the snapshot has none). */
export function snapshotVoters(s: Snapshot): VoterInfo[] {
  const dirs = s.meta.directoryIds;
  return s.meta.voters.map((id, k) => ({ id, directoryId: dirs?.[k] ?? "" }));
}

/** The snapshot metadata fields for a voter set. */
export function voterMeta(voters: readonly VoterInfo[]): { voters: NodeId[]; directoryIds?: string[] } {
  const ids = voters.map((v) => v.id);
  return voters.some((v) => v.directoryId !== "") ? { voters: ids, directoryIds: voters.map((v) => v.directoryId) } : { voters: ids };
}

/**
 * The configuration in effect at `index` in `storage` (which must hold the log up to it): the
 * last config entry at or before `index`, else the snapshot's. Used when a snapshot is taken.
 */
export function storedConfigAt(storage: StoredLog, index: number): VoterInfo[] {
  const snap = storage.snapshot();
  let voters = snapshotVoters(snap);
  let lo = Math.max(storage.firstIndex(), snap.meta.index + 1);
  const hi = Math.min(index, storage.lastIndex()) + 1;
  while (lo < hi) {
    const ents = storage.entries(lo, hi, 1 << 20);
    for (const e of ents) if (e.kind === "config") voters = decodeVoterSet(e.data);
    lo = ents[ents.length - 1]!.index + 1;
  }
  return voters;
}

/**
 * Applies a change to a voter set, or explains why it cannot be applied. Voters whose directory
 * id is unknown ("") take the one in `known`, if any (the shell learns them from its peers).
 */
export function applyConfChange(
  voters: readonly VoterInfo[],
  cc: ConfChange,
  known: ReadonlyMap<NodeId, string> = new Map(),
): VoterInfo[] | string {
  const has = voters.some((v) => v.id === cc.id);
  const filled = voters.map((v) => (v.directoryId === "" && known.get(v.id) ? { id: v.id, directoryId: known.get(v.id)! } : v));
  if (cc.type === "add-voter") {
    if (has) return `node ${cc.id} is already a voter`;
    return [...filled, { id: cc.id, directoryId: cc.directoryId }].sort((a, b) => a.id - b.id);
  }
  if (!has) return `node ${cc.id} is not a voter`;
  if (voters.length === 1) return `node ${cc.id} is the last voter; a quorum cannot be empty`;
  return filled.filter((v) => v.id !== cc.id);
}
