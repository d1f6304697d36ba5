/**
 * Produce (key 0) v3–v11: request and response bytes of every version, laid out from Kafka's
 * ProduceRequest.json / ProduceResponse.json (golden.ts), against src/kafka/apis/produce.ts.
 */
import { describe, expect, it } from "vitest";
import { ProduceRequest, ProduceResponse } from "../../../src/kafka/apis/produce.ts";
import { arr, bytes, cat, golden, i16, i32, i64, str, tags, uvar } from "./golden.ts";

const batch = Buffer.from("000000000000000000000031ffffffff02", "hex"); // any bytes: RECORDS are opaque here

describe("ProduceRequest", () => {
  for (let v = 3; v <= 11; v++) {
    it(`v${v}: transactional id, acks, timeout, topics of partitions with their records`, () => {
      const flex = v >= 9;
      const partition = cat(i32(2), bytes(batch, flex), tags(flex));
      const topic = cat(str("orders", flex), arr([partition], flex), tags(flex));
      const expected = cat(str(null, flex), i16(-1), i32(30000), arr([topic], flex), tags(flex));
      const back = golden(
        ProduceRequest,
        {
          transactionalId: null,
          acks: -1,
          timeoutMs: 30000,
          topicData: [{ name: "orders", partitionData: [{ index: 2, records: batch }] }],
        },
        v,
        expected,
      );
      // The records are a view of the request's bytes, not a copy.
      const rec = back.topicData[0]?.partitionData[0]?.records as Buffer;
      expect(rec.equals(batch)).toBe(true);
    });
  }

  it("a transactional id and null records", () => {
    golden(
      ProduceRequest,
      { transactionalId: "tx", acks: 1, timeoutMs: 5, topicData: [{ name: "t", partitionData: [{ index: 0, records: null }] }] },
      3,
      cat(str("tx", false), i16(1), i32(5), i32(1), str("t", false), i32(1), i32(0), i32(-1)),
    );
  });
});

describe("ProduceResponse", () => {
  const value = {
    responses: [
      {
        name: "orders",
        partitionResponses: [
          {
            index: 2,
            errorCode: 0,
            baseOffset: 42n,
            logAppendTimeMs: -1n,
            logStartOffset: 7n,
            recordErrors: [{ batchIndex: 0, batchIndexErrorMessage: "bad" }],
            errorMessage: "msg",
          },
        ],
      },
    ],
    throttleTimeMs: 9,
  };
  for (let v = 3; v <= 11; v++) {
    it(`v${v}: base offset, log append time, log start (5+), record errors and message (8+), throttle`, () => {
      const flex = v >= 9;
      const none = Buffer.alloc(0);
      const recordErr = cat(i32(0), str("bad", flex), tags(flex));
      const partition = cat(
        i32(2),
        i16(0),
        i64(42n),
        i64(-1n),
        v >= 5 ? i64(7n) : none,
        v >= 8 ? arr([recordErr], flex) : none,
        v >= 8 ? str("msg", flex) : none,
        tags(flex),
      );
      const topic = cat(str("orders", flex), arr([partition], flex), tags(flex));
      golden(ProduceResponse, value, v, cat(arr([topic], flex), i32(9), tags(flex)));
    });
  }

  it("v10+: the current leader (tag 0 of a partition) and node endpoints (tag 0 of the body) when set", () => {
    const leader = cat(i32(3), i32(5), uvar(0));
    const partition = cat(i32(0), i16(6), i64(-1n), i64(-1n), i64(-1n), uvar(1), uvar(0), uvar(1), uvar(0), uvar(leader.length), leader);
    const endpoint = cat(i32(3), str("h3", true), i32(9092), uvar(0), uvar(0));
    const endpoints = cat(uvar(2), endpoint);
    const expected = cat(uvar(2), str("t", true), uvar(2), partition, uvar(0), i32(0), uvar(1), uvar(0), uvar(endpoints.length), endpoints);
    golden(
      ProduceResponse,
      {
        responses: [
          {
            name: "t",
            partitionResponses: [
              {
                index: 0,
                errorCode: 6,
                baseOffset: -1n,
                logStartOffset: -1n,
                errorMessage: null,
                currentLeader: { leaderId: 3, leaderEpoch: 5 },
              },
            ],
          },
        ],
        throttleTimeMs: 0,
        nodeEndpoints: [{ nodeId: 3, host: "h3", port: 9092, rack: null }],
      },
      10,
      expected,
    );
  });
});
