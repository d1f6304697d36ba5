/**
 * What encoding a RECORDS-format Fetch / Subscribe answer, and a Consume stream's records message,
 * costs: `--records` records of the soak's
 * shape (short keys and values) in one partition, encoded `--iterations` times per round, as the
 * broker did until issue 14's soak (a protobuf-es ConsumedRecord built and `toBinary`'d per record)
 * and as it does now (each record written by hand from the service's records, src/rpc/wire-codec.ts).
 * Prints the milliseconds per message of each and the ratio, per round (Consume: protobuf-es's
 * `toBinary` of the whole ConsumeResponse, as until issue 14's second soak session, against
 * `encodeConsumeRecords`).
 *
 *   bun bench/records-encode.ts [--records 20000] [--iterations 20] [--rounds 3]
 */
import { TimestampType } from "../src/protocol/record-batch.ts";
import { toConsumedRecord } from "../src/rpc/fetch-service.ts";
import { FetchedRecords } from "../src/service/fetched-records.ts";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConsumeResponseSchema } from "../src/gen/rill/v1/group_service_pb.ts";
import { encodeConsumeRecords, encodeFetchResponse } from "../src/rpc/wire-codec.ts";
import { parseArgs } from "./lib.ts";

const o = parseArgs(process.argv.slice(2), { records: 20_000, iterations: 20, rounds: 3 }, import.meta.url);
const records = Array.from({ length: o.records }, (_, i) => ({
  offset: 100_000 + i,
  timestampMs: 1_765_000_000_000 + i,
  timestampType: TimestampType.CREATE_TIME,
  leaderEpoch: 3,
  key: Buffer.from(`k${i % 97}`),
  value: Buffer.from(`p0-${i}`),
  headers: [],
}));

function msPerMessage(encode: () => unknown): number {
  const t0 = performance.now();
  for (let i = 0; i < o.iterations; i++) encode();
  return (performance.now() - t0) / o.iterations;
}

for (let round = 1; round <= o.rounds; round++) {
  const messages = msPerMessage(() =>
    encodeFetchResponse({
      partitions: [{ topic: "soak", partition: 1, nextOffset: 9, records: records.map((r) => toConsumedRecord("soak", 1, r)) }],
    }),
  );
  const byHand = msPerMessage(() =>
    encodeFetchResponse({ partitions: [{ topic: "soak", partition: 1, nextOffset: 9, fetchedRecords: FetchedRecords.of(records) }] }),
  );
  console.log(
    `round ${round}: ${o.records} records per message: protobuf-es per record ${messages.toFixed(1)} ms, by hand ${byHand.toFixed(1)} ms (x${(messages / byHand).toFixed(1)})`,
  );
  const base = { topic: "soak", partition: 1, highWatermark: 200_000, nextOffset: 120_000, firstOffset: 100_000 };
  const consumeMessages = msPerMessage(() =>
    toBinary(
      ConsumeResponseSchema,
      create(ConsumeResponseSchema, {
        kind: {
          case: "records",
          value: {
            topic: base.topic,
            partition: base.partition,
            highWatermark: BigInt(base.highWatermark),
            nextOffset: BigInt(base.nextOffset),
            firstOffset: BigInt(base.firstOffset),
            records: records.map((r) => toConsumedRecord("soak", 1, r)),
          },
        },
      }),
    ),
  );
  const consumeByHand = msPerMessage(() =>
    encodeConsumeRecords({ ...base, seekId: 0n, throttleTimeMs: 0, fetchedRecords: FetchedRecords.of(records) }),
  );
  console.log(
    `round ${round}: Consume, ${o.records} records per message: protobuf-es ${consumeMessages.toFixed(1)} ms, by hand ${consumeByHand.toFixed(1)} ms (x${(consumeMessages / consumeByHand).toFixed(1)})`,
  );
}
