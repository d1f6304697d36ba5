/**
 * Structural checks on messages from the network, run before a message touches any state.
 * A message that fails them is rejected with INVALID_REQUEST naming the field at fault.
 */
import { RillError, rillError } from "../base/errors.ts";
import { decodeVoterSet } from "./config.ts";
import type { Entry, Message, NodeId, Snapshot } from "./types.ts";

function bad(m: { type: string }, what: string): never {
  throw rillError("INVALID_REQUEST", `raft ${m.type} message: ${what}`);
}

function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function checkIndex(m: { type: string }, field: string, v: unknown): void {
  if (!isIndex(v)) bad(m, `${field} must be a non-negative safe integer, got ${String(v)}`);
}

function checkBool(m: { type: string }, field: string, v: unknown): void {
  if (typeof v !== "boolean") bad(m, `${field} must be a boolean`);
}

/**
 * Throws RillError(INVALID_REQUEST) unless `m` is a well-formed message from another node to
 * `self`. Terms must be >= 1 and no claimed term may exceed the message's own term. The sender
 * need not be a voter of this node's configuration (thesis 4.1: a node catching up may not know
 * the current voters yet); the shell decides which nodes may talk to it.
 */
export function validateMessage(m: Message, self: NodeId): void {
  if (typeof m !== "object" || m === null) throw rillError("INVALID_REQUEST", "raft message: not an object");
  if (m.to !== self) bad(m, `to is ${String(m.to)}, not this node ${self}`);
  if (!isIndex(m.from) || m.from < 1 || m.from === self) bad(m, `from ${String(m.from)} is not another node`);
  checkIndex(m, "term", m.term);
  if (m.term < 1) bad(m, "term must be at least 1");
  checkBody(m);
}

function checkBody(m: Message): void {
  switch (m.type) {
    case "prevote":
    case "vote":
      checkIndex(m, "lastIndex", m.lastIndex);
      checkIndex(m, "lastTerm", m.lastTerm);
      if (m.lastTerm > m.term) bad(m, "lastTerm is above term");
      if ((m.lastIndex === 0) !== (m.lastTerm === 0)) bad(m, "lastIndex and lastTerm disagree on emptiness");
      if (m.type === "vote") checkBool(m, "transfer", m.transfer);
      return;
    case "prevote-response":
    case "vote-response":
      checkBool(m, "reject", m.reject);
      return;
    case "append":
      return checkAppend(m);
    case "append-response":
      checkIndex(m, "index", m.index);
      checkBool(m, "reject", m.reject);
      checkIndex(m, "hintIndex", m.hintIndex);
      checkIndex(m, "hintTerm", m.hintTerm);
      if (m.hintTerm > m.term) bad(m, "hintTerm is above term");
      return;
    case "heartbeat":
      checkIndex(m, "commit", m.commit);
      return;
    case "snapshot":
      return checkSnapshot(m, m.snapshot);
    case "heartbeat-response":
    case "timeout-now":
      return;
    default:
      return bad(m as { type: string }, "unknown type");
  }
}

function checkAppend(m: Message & { type: "append" }): void {
  checkIndex(m, "prevIndex", m.prevIndex);
  checkIndex(m, "prevTerm", m.prevTerm);
  checkIndex(m, "commit", m.commit);
  if (m.prevTerm > m.term) bad(m, "prevTerm is above term");
  if ((m.prevIndex === 0) !== (m.prevTerm === 0)) bad(m, "prevIndex and prevTerm disagree on emptiness");
  if (!Array.isArray(m.entries)) bad(m, "entries must be an array");
  let prevTerm = m.prevTerm;
  for (let k = 0; k < m.entries.length; k++) {
    const e: Entry = m.entries[k]!;
    if (e.index !== m.prevIndex + 1 + k) bad(m, `entries[${k}].index must be ${m.prevIndex + 1 + k}`);
    if (!isIndex(e.term) || e.term < prevTerm || e.term > m.term) bad(m, `entries[${k}].term out of order`);
    if (e.kind !== "data" && e.kind !== "noop" && e.kind !== "config") bad(m, `entries[${k}].kind is invalid`);
    if (!(e.data instanceof Uint8Array)) bad(m, `entries[${k}].data must be bytes`);
    if (e.kind === "config") checkVoterSet(m, `entries[${k}]`, e.data);
    prevTerm = e.term;
  }
}

function checkSnapshot(m: Message, s: Snapshot): void {
  if (typeof s !== "object" || s === null || typeof s.meta !== "object") bad(m, "snapshot is missing");
  checkIndex(m, "snapshot.index", s.meta.index);
  checkIndex(m, "snapshot.term", s.meta.term);
  if (s.meta.index < 1 || s.meta.term < 1) bad(m, "snapshot of an empty log");
  if (s.meta.term > m.term) bad(m, "snapshot.term is above term");
  const v = s.meta.voters;
  if (!Array.isArray(v) || v.length === 0) bad(m, "snapshot.voters must be a non-empty array");
  for (const id of v) if (!isIndex(id) || id < 1) bad(m, "snapshot.voters must be positive ids");
  if (new Set(v).size !== v.length) bad(m, "snapshot.voters has a duplicate");
  const dirs = s.meta.directoryIds;
  if (
    dirs !== undefined &&
    (!Array.isArray(dirs) || dirs.length !== v.length || !dirs.every((d) => typeof d === "string" && d.length <= 64))
  )
    bad(m, "snapshot.directoryIds must be one string (at most 64 characters) per voter");
  if (!(s.data instanceof Uint8Array)) bad(m, "snapshot.data must be bytes");
}

function checkVoterSet(m: Message, field: string, data: Uint8Array): void {
  try {
    decodeVoterSet(data);
  } catch (e) {
    if (e instanceof RillError) bad(m, `${field}: ${e.message}`);
    throw e;
  }
}
