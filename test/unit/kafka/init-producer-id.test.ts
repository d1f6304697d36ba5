/**
 * InitProducerId (key 22) v0–v5: request and response bytes of every version, laid out from
 * Kafka's InitProducerIdRequest.json / InitProducerIdResponse.json (golden.ts).
 */
import { describe, it } from "vitest";
import { InitProducerIdRequest, InitProducerIdResponse } from "../../../src/kafka/apis/init-producer-id.ts";
import { cat, golden, i16, i32, i64, str, tags } from "./golden.ts";

describe("InitProducerId", () => {
  for (let v = 0; v <= 5; v++) {
    const flex = v >= 2;
    const none = Buffer.alloc(0);
    it(`v${v} request: transactional id (nullable), timeout, producer id and epoch (3+)`, () => {
      golden(
        InitProducerIdRequest,
        { transactionalId: null, transactionTimeoutMs: 60000, producerId: 12n, producerEpoch: 4 },
        v,
        cat(str(null, flex), i32(60000), v >= 3 ? cat(i64(12n), i16(4)) : none, tags(flex)),
      );
      golden(
        InitProducerIdRequest,
        { transactionalId: "tx-1", transactionTimeoutMs: 1 },
        v,
        cat(str("tx-1", flex), i32(1), v >= 3 ? cat(i64(-1n), i16(-1)) : none, tags(flex)),
      );
    });
    it(`v${v} response: throttle, error, producer id and epoch`, () => {
      golden(
        InitProducerIdResponse,
        { throttleTimeMs: 0, errorCode: 0, producerId: 1000n, producerEpoch: 2 },
        v,
        cat(i32(0), i16(0), i64(1000n), i16(2), tags(flex)),
      );
    });
  }
});
