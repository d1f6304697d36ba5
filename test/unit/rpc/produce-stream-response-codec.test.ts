/**
 * The hand-written ProduceStreamResponse codecs (the broker's encoder, src/rpc/wire-codec.ts; the
 * SDK's decoder, src/client/wire-codec.ts): byte for byte against protobuf-es on fixed and seeded
 * random messages (every oneof case, the end's outcome, errors, negative and extreme offsets),
 * unknown fields skipped, truncations refused.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { decodeProduceStreamResponse } from "../../../src/client/wire-codec.ts";
import { ProduceStreamResponseSchema } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { encodeProduceStreamResponse } from "../../../src/rpc/wire-codec.ts";
import {
  concat,
  dec,
  enc,
  expectSameBytes,
  expectTruncationsFail,
  randomInt32,
  randomInt64,
  rnd,
  seed,
  unknownFields,
} from "../protocol/wire-fixtures.ts";
import { create } from "@bufbuild/protobuf";

type Init = MessageInitShape<typeof ProduceStreamResponseSchema>;

const error = { code: 51, name: "CONCURRENT_TRANSACTIONS", message: "the previous transaction… is still being completed", retriable: true };

const cases: Array<[string, Init]> = [
  [
    "a produce answer",
    {
      requestId: 7n,
      result: {
        case: "response",
        value: { topic: "orders", partitions: [{ partition: 3, baseOffset: 1234n, logAppendTimeMs: -1n, logStartOffset: 0n }] },
      },
    },
  ],
  [
    "a partition error, records, a throttle",
    {
      requestId: 1n,
      result: {
        case: "response",
        value: {
          topic: "ñ-topic",
          partitions: [
            { partition: 0, baseOffset: -1n, logAppendTimeMs: -1n, error },
            { partition: 2, baseOffset: 9_007_199_254_740_993n, logAppendTimeMs: 1_700_000_000_000n, logStartOffset: 5n },
          ],
          records: [
            { partition: 2, offset: 9_007_199_254_740_993n },
            { partition: 0, offset: -1n },
          ],
          throttleTimeMs: 250,
        },
      },
    },
  ],
  ["an empty produce answer (request id 0)", { result: { case: "response", value: {} } }],
  ["a whole-request error", { requestId: 2n ** 64n - 1n, result: { case: "error", value: error } }],
  ["an end's answer", { requestId: 3n, result: { case: "endTransaction", value: { producerId: 2n ** 40n, producerEpoch: 32_767 } } }],
  [
    "a produce answer with the end's outcome",
    {
      requestId: 4n,
      result: { case: "response", value: { topic: "t", partitions: [{ partition: 1, baseOffset: 10n, logAppendTimeMs: -1n }] } },
      endTransactionOutcome: { result: { case: "response", value: { producerId: 5n, producerEpoch: 2 } } },
    },
  ],
  [
    "a refused end with a failed request",
    {
      requestId: 5n,
      result: { case: "error", value: error },
      endTransactionOutcome: { result: { case: "error", value: { ...error, name: "INVALID_TXN_STATE", code: 48 } } },
    },
  ],
  ["no result at all", { requestId: 6n }],
];

function randomInit(): Init {
  const kind = rnd.int(4);
  const init: Init = { requestId: rnd.int(3) === 0 ? 0n : BigInt.asUintN(64, randomInt64()) };
  if (kind === 0 || kind === 3)
    init.result = {
      case: "response",
      value: {
        topic: ["", "t", "ñ".repeat(rnd.int(40))][rnd.int(3)]!,
        partitions: Array.from({ length: rnd.int(3) }, () => ({
          partition: randomInt32(),
          baseOffset: randomInt64(),
          logAppendTimeMs: randomInt64(),
          logStartOffset: randomInt64(),
          ...(rnd.int(3) === 0 ? { error: { ...error, code: randomInt32() } } : {}),
        })),
        records: Array.from({ length: rnd.int(3) }, () => ({ partition: randomInt32(), offset: randomInt64() })),
        throttleTimeMs: randomInt32(),
      },
    };
  else if (kind === 1) init.result = { case: "error", value: { ...error, retriable: rnd.int(2) === 0 } };
  else init.result = { case: "endTransaction", value: { producerId: randomInt64(), producerEpoch: randomInt32() } };
  if (rnd.int(3) === 0)
    init.endTransactionOutcome =
      rnd.int(2) === 0
        ? { result: { case: "response", value: { producerId: randomInt64(), producerEpoch: randomInt32() } } }
        : { result: { case: "error", value: error } };
  return init;
}

describe(`ProduceStreamResponse codecs (SEED=${seed})`, () => {
  it.each(cases)("the broker encodes like toBinary and the SDK decodes like fromBinary: %s", (_name, init) => {
    const reference = enc(ProduceStreamResponseSchema, init);
    expectSameBytes(encodeProduceStreamResponse(create(ProduceStreamResponseSchema, init)), reference);
    expect(decodeProduceStreamResponse(reference)).toEqual(dec(ProduceStreamResponseSchema, reference));
  });

  it("matches protobuf-es on random messages", () => {
    for (let i = 0; i < 400; i++) {
      const init = randomInit();
      const reference = enc(ProduceStreamResponseSchema, init);
      expectSameBytes(encodeProduceStreamResponse(create(ProduceStreamResponseSchema, init)), reference);
      expect(decodeProduceStreamResponse(reference)).toEqual(dec(ProduceStreamResponseSchema, reference));
    }
  });

  it("skips unknown fields and refuses truncated messages, naming the field", () => {
    const init = cases[1]![1];
    const reference = enc(ProduceStreamResponseSchema, init);
    const withUnknown = concat([unknownFields(), reference, unknownFields()]);
    expect(decodeProduceStreamResponse(withUnknown)).toEqual(dec(ProduceStreamResponseSchema, reference));
    expectTruncationsFail(reference, decodeProduceStreamResponse, /^rill\.v1\.ProduceStreamResponse/);
  });
});
