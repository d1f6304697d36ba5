/**
 * ListOffsets (key 2) v1–v9: request and response bytes of every version, laid out from Kafka's
 * ListOffsetsRequest.json / ListOffsetsResponse.json (golden.ts), against src/kafka/apis/list-offsets.ts.
 */
import { describe, it } from "vitest";
import { ListOffsetsRequest, ListOffsetsResponse } from "../../../src/kafka/apis/list-offsets.ts";
import { arr, cat, golden, i8, i16, i32, i64, str, tags } from "./golden.ts";

describe("ListOffsets", () => {
  for (let v = 1; v <= 9; v++) {
    it(`v${v} request: replica id, isolation level (2+), partitions with current leader epoch (4+) and timestamp`, () => {
      const flex = v >= 6;
      const none = Buffer.alloc(0);
      const partition = cat(i32(1), v >= 4 ? i32(3) : none, i64(-2n), tags(flex));
      const topic = cat(str("orders", flex), arr([partition], flex), tags(flex));
      golden(
        ListOffsetsRequest,
        {
          replicaId: -1,
          isolationLevel: 1,
          topics: [{ name: "orders", partitions: [{ partitionIndex: 1, currentLeaderEpoch: 3, timestamp: -2n }] }],
        },
        v,
        cat(i32(-1), v >= 2 ? i8(1) : none, arr([topic], flex), tags(flex)),
      );
    });

    it(`v${v} response: throttle (2+), per partition error, timestamp, offset, leader epoch (4+)`, () => {
      const flex = v >= 6;
      const none = Buffer.alloc(0);
      const partition = cat(i32(1), i16(0), i64(-1n), i64(17n), v >= 4 ? i32(3) : none, tags(flex));
      const topic = cat(str("orders", flex), arr([partition], flex), tags(flex));
      golden(
        ListOffsetsResponse,
        {
          throttleTimeMs: 4,
          topics: [{ name: "orders", partitions: [{ partitionIndex: 1, errorCode: 0, timestamp: -1n, offset: 17n, leaderEpoch: 3 }] }],
        },
        v,
        cat(v >= 2 ? i32(4) : none, arr([topic], flex), tags(flex)),
      );
    });
  }
});
