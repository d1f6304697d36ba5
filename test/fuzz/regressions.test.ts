/**
 * The bugs the fuzzer found, each replayed from its printed minimal reproduction (seed and
 * target named in each test); each of these failed before its fix.
 */
import { describe, expect, it } from "vitest";
import { RillError } from "../../src/base/errors.ts";
import { decodeFetchResponse } from "../../src/client/wire-codec.ts";
import { decodeMetadataRecord } from "../../src/metadata/records.ts";
import { decodeMessage } from "../../src/raft/codec.ts";
import { toProduceInput } from "../../src/rpc/produce-service.ts";
import { decodeProduceRequest, WireFormatError } from "../../src/rpc/wire-codec.ts";
import { ProduceHandler } from "../../src/service/produce.ts";
import { openBroker, snapshotAll } from "./targets/produce.ts";

const hex = (h: string): Buffer => Buffer.from(h, "hex");

async function rejection(p: Promise<unknown>): Promise<RillError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RillError);
  return e as RillError;
}

describe("fuzz regressions", () => {
  it("produce (seed 3): a records request refused for a timestamp above 2^53 - 1 writes no partition first", async () => {
    // Two records: one keyed (""), one not, so they go to two partitions; the second has
    // timestamp_ms 2^53. Before: the first partition was appended, then the call failed.
    const req = decodeProduceRequest(hex("0a01741a001a0b0a00208080808080808010"));
    const broker = await openBroker({});
    try {
      const before = snapshotAll(broker.fs);
      const e = await rejection(new ProduceHandler(broker.rm).produce(toProduceInput(req)));
      expect(e.kind.name).toBe("INVALID_TIMESTAMP");
      expect(e.message).toContain("records[1].timestamp_ms: 9007199254740992");
      expect(snapshotAll(broker.fs)).toEqual(before);
    } finally {
      await broker.close();
    }
  });

  it("raft (seed 1): a term of 2^52, which the encoder cannot write, is refused on decode (it asserted on re-encode)", () => {
    // heartbeat-response from 3 to 2 at term 2^52. Before: it decoded and passed validateMessage,
    // so a node would adopt the term, then assert (crash) encoding its next message.
    const bytes = hex("01080604" + "8080808080808010");
    expect(() => decodeMessage(bytes)).toThrow(/term: 4503599627370496 is not a non-negative integer below 2\^52/);
    expect(() => decodeMessage(bytes)).toThrow(RillError);
  });

  it("raft: a metadata record that is not JSON is a CORRUPT_MESSAGE RillError, not a SyntaxError", () => {
    let e: unknown = null;
    try {
      decodeMetadataRecord(Buffer.from('{"type":"topic"'));
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind.name).toBe("CORRUPT_MESSAGE");
    expect((e as RillError).message).toMatch(/unknown metadata record: not JSON/);
  });

  it("wire (seed 14): a tag varint past 32 bits is refused, as protobuf-es does, not cut to its low bits", () => {
    // 5-byte tag 0x8a 80 80 80 10: the low 32 bits say field 1 (LEN), the 5th byte carries bits past 32.
    const bytes = hex("8a808080100000");
    expect(() => decodeProduceRequest(bytes)).toThrow(WireFormatError);
    expect(() => decodeProduceRequest(bytes)).toThrow(/tag varint overflows uint32/);
    expect(() => decodeFetchResponse(bytes)).toThrow(/tag varint overflows uint32/);
  });
});
