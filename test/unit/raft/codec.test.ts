import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { decodeMessage, encodeMessage, RAFT_CODEC_VERSION } from "../../../src/raft/codec.ts";
import type { Message } from "../../../src/raft/types.ts";

const samples: Message[] = [
  { type: "prevote", from: 1, to: 2, term: 7, lastIndex: 100, lastTerm: 6 },
  { type: "vote", from: 1, to: 2, term: 7, lastIndex: 100, lastTerm: 6, transfer: true },
  { type: "prevote-response", from: 2, to: 1, term: 7, reject: false },
  { type: "vote-response", from: 2, to: 1, term: 7, reject: true },
  {
    type: "append",
    from: 1,
    to: 3,
    term: 9,
    prevIndex: 41,
    prevTerm: 8,
    commit: 40,
    entries: [
      { index: 42, term: 8, kind: "data", data: new Uint8Array([1, 2, 3]) },
      { index: 43, term: 9, kind: "noop", data: new Uint8Array(0) },
    ],
  },
  { type: "append", from: 1, to: 3, term: 9, prevIndex: 0, prevTerm: 0, commit: 0, entries: [] },
  { type: "append-response", from: 3, to: 1, term: 9, index: 41, reject: true, hintIndex: 30, hintTerm: 5 },
  { type: "heartbeat", from: 1, to: 2, term: 2 ** 40, commit: 2 ** 50 },
  { type: "heartbeat-response", from: 2, to: 1, term: 3 },
  {
    type: "snapshot",
    from: 1,
    to: 2,
    term: 4,
    snapshot: { meta: { index: 1000, term: 3, voters: [1, 2, 3, 4, 5] }, data: new Uint8Array([9, 8, 7]) },
  },
  { type: "timeout-now", from: 1, to: 2, term: 4 },
];

function expectInvalid(buf: Uint8Array, pattern: RegExp): void {
  let err: unknown;
  try {
    decodeMessage(buf);
  } catch (e: unknown) {
    err = e;
  }
  expect(err).toBeInstanceOf(RillError);
  expect((err as RillError).kind.name).toBe("INVALID_REQUEST");
  expect((err as RillError).message).toMatch(pattern);
}

describe("raft codec", () => {
  it.each(samples.map((m) => [m.type, m] as const))("round-trips %s", (_t, m) => {
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  it("writes the documented bytes (golden)", () => {
    const hb: Message = { type: "heartbeat", from: 1, to: 2, term: 3, commit: 70 };
    // version, type 7, zig-zag varlongs: 1->2, 2->4, 3->6, 70->140 (0x8c 0x01)
    expect([...encodeMessage(hb)]).toEqual([RAFT_CODEC_VERSION, 7, 2, 4, 6, 0x8c, 0x01]);
    const app: Message = {
      type: "append",
      from: 1,
      to: 2,
      term: 2,
      prevIndex: 1,
      prevTerm: 1,
      commit: 1,
      entries: [{ index: 2, term: 2, kind: "data", data: new Uint8Array([0xab]) }],
    };
    expect([...encodeMessage(app)]).toEqual([1, 5, 2, 4, 4, 2, 2, 2, 2, 4, 0, 2, 0xab]);
  });

  it("returns entry data as views of the input, without copying", () => {
    const buf = encodeMessage(samples[4]!);
    const m = decodeMessage(buf);
    expect(m.type === "append" && m.entries[0]!.data.buffer).toBe(buf.buffer);
  });

  it("rejects malformed input with INVALID_REQUEST", () => {
    const good = encodeMessage(samples[4]!);
    expectInvalid(new Uint8Array(0), /version: truncated/);
    expectInvalid(Uint8Array.of(2, 7, 2, 4, 6, 0), /version 2/);
    expectInvalid(Uint8Array.of(1, 99, 2, 4, 6), /type code 99/);
    expectInvalid(Uint8Array.of(1, 7, 2, 4, 6), /commit: truncated/);
    expectInvalid(Uint8Array.of(1, 7, 2, 4, 6, 0, 0), /trailing/);
    expectInvalid(Uint8Array.of(1, 7, 2, 4, 6, 1), /not a non-negative/);
    expectInvalid(Uint8Array.of(1, 4, 2, 4, 6, 2), /reject: 2 is not 0 or 1/);
    expectInvalid(Uint8Array.of(1, 7, 2, 4, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), /varint/);
    for (let cut = 0; cut < good.length; cut++) {
      expect(() => decodeMessage(good.subarray(0, cut))).toThrow(RillError);
    }
    // An entry count far beyond what the remaining bytes could hold.
    expectInvalid(Uint8Array.of(1, 5, 2, 4, 4, 0, 0, 0, 0xfe, 0xff, 0x03), /cannot fit/);
    // A data length running past the end.
    expectInvalid(Uint8Array.of(1, 5, 2, 4, 4, 0, 0, 0, 2, 4, 0, 100, 0), /runs past the end/);
    // An unknown entry kind.
    expectInvalid(Uint8Array.of(1, 5, 2, 4, 4, 0, 0, 0, 2, 4, 7, 0), /kind: 7/);
  });
});
