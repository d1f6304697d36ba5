import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import { ErrorDetailSchema } from "../../../src/gen/rill/v1/common_pb.ts";
import { ReplicaFetchResponseSchema } from "../../../src/gen/rill/v1/replication_service_pb.ts";
import {
  type ReplicaFetchPartitionOutput,
  encodeReplicaFetchResponse,
  encodeReplicaFetchResponseTransient,
} from "../../../src/rpc/replica-fetch-codec.ts";

/** The same partition as protobuf-es builds it (its batches joined into one buffer). */
function asMessage(parts: readonly ReplicaFetchPartitionOutput[], sessionKept = false) {
  return create(ReplicaFetchResponseSchema, {
    sessionKept,
    partitions: parts.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      highWatermark: BigInt(p.highWatermark),
      logStartOffset: BigInt(p.logStartOffset),
      recordBatches: Buffer.concat(p.recordBatches),
      ...(p.error ? { error: p.error } : {}),
      ...(p.divergingEpoch ? { divergingEpoch: { epoch: p.divergingEpoch.epoch, endOffset: BigInt(p.divergingEpoch.endOffset) } } : {}),
    })),
  });
}

describe("ReplicaFetchResponse hand encoder", () => {
  it("writes exactly protobuf-es's bytes for random partitions (chunks, errors, diverging epochs, defaults)", () => {
    const seed = Date.now() % 100_000;
    console.log(`seed ${seed}`);
    const random = new SeededRandom(seed);
    const rnd = { int: (lo: number, hi: number): number => lo + random.int(hi - lo + 1) };
    for (let round = 0; round < 200; round++) {
      const parts: ReplicaFetchPartitionOutput[] = Array.from({ length: rnd.int(0, 4) }, () => {
        const chunks = Array.from({ length: rnd.int(0, 3) }, () => {
          const b = Buffer.alloc(rnd.int(0, 300));
          for (let i = 0; i < b.length; i++) b[i] = rnd.int(0, 255);
          return b;
        });
        const kind = rnd.int(0, 3);
        return {
          topic: rnd.int(0, 5) === 0 ? "" : `tópico-${rnd.int(0, 1000)}`,
          partition: rnd.int(0, 3) === 0 ? 0 : rnd.int(1, 100_000),
          highWatermark: rnd.int(0, 3) === 0 ? 0 : rnd.int(1, 2 ** 40),
          logStartOffset: rnd.int(0, 1) === 0 ? 0 : rnd.int(1, 2 ** 33),
          recordBatches: chunks,
          ...(kind === 1
            ? { error: create(ErrorDetailSchema, { code: 6, name: "NOT_LEADER_OR_FOLLOWER", message: "moved", retriable: true }) }
            : {}),
          ...(kind === 2
            ? { divergingEpoch: { epoch: rnd.int(-1, 5), endOffset: rnd.int(0, 3) === 0 ? rnd.int(-1, 0) : rnd.int(1, 2 ** 35) } }
            : {}),
        } as ReplicaFetchPartitionOutput;
      });
      const sessionKept = rnd.int(0, 1) === 1; // fetch sessions (fetch-session.ts)
      const expected = Buffer.from(toBinary(ReplicaFetchResponseSchema, asMessage(parts, sessionKept)));
      expect(encodeReplicaFetchResponse({ partitions: parts, sessionKept }).equals(expected), `round ${round}`).toBe(true);
      expect(Buffer.from(encodeReplicaFetchResponseTransient({ partitions: parts, sessionKept })).equals(expected), `round ${round}`).toBe(
        true,
      );
      // And protobuf-es (the follower) reads back the joined batches.
      const back = fromBinary(ReplicaFetchResponseSchema, expected);
      back.partitions.forEach((p, i) => expect(Buffer.from(p.recordBatches).equals(Buffer.concat(parts[i]!.recordBatches))).toBe(true));
    }
  });
});
