/**
 * Golden bytes of the transaction APIs (AddPartitionsToTxn v0–5, AddOffsetsToTxn v0–4,
 * TxnOffsetCommit v0–5, EndTxn v0–5, DescribeTransactions v0, ListTransactions v0–1, and
 * FindCoordinator's key type 1 and InitProducerId with a transactional id), every version, laid
 * out field by field from Kafka's message definitions (clients/src/main/resources/common/
 * message/*.json) with golden.ts, independently of src/kafka/schema.ts.
 */
import { describe, expect, it } from "vitest";
import { AddOffsetsToTxnRequest, AddOffsetsToTxnResponse } from "../../../src/kafka/apis/add-offsets-to-txn.ts";
import { AddPartitionsToTxnRequest, AddPartitionsToTxnResponse } from "../../../src/kafka/apis/add-partitions-to-txn.ts";
import { DescribeTransactionsRequest, DescribeTransactionsResponse } from "../../../src/kafka/apis/describe-transactions.ts";
import { EndTxnRequest, EndTxnResponse } from "../../../src/kafka/apis/end-txn.ts";
import { FindCoordinatorRequest } from "../../../src/kafka/apis/find-coordinator.ts";
import { KAFKA_APIS } from "../../../src/kafka/apis/index.ts";
import { InitProducerIdRequest } from "../../../src/kafka/apis/init-producer-id.ts";
import { ListTransactionsRequest, ListTransactionsResponse } from "../../../src/kafka/apis/list-transactions.ts";
import { TxnOffsetCommitRequest, TxnOffsetCommitResponse } from "../../../src/kafka/apis/txn-offset-commit.ts";
import { arr, bool, cat, dec, golden, i8, i16, i32, i64, str, tags } from "./golden.ts";

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe("golden bytes: AddPartitionsToTxn v0-5", () => {
  const topic = (f: boolean) => cat(str("t", f), arr([i32(0), i32(2)], f), tags(f));
  const result = (f: boolean) => cat(str("t", f), arr([cat(i32(0), i16(0), tags(f)), cat(i32(2), i16(48), tags(f))], f), tags(f));

  it.each(range(0, 3))("v%i: one transaction, its topics at the top level", (v) => {
    const f = v >= 3;
    const q = golden(
      AddPartitionsToTxnRequest,
      {
        v3AndBelowTransactionalId: "tx",
        v3AndBelowProducerId: 7n,
        v3AndBelowProducerEpoch: 2,
        v3AndBelowTopics: [{ name: "t", partitions: [0, 2] }],
      },
      v,
      cat(str("tx", f), i64(7n), i16(2), arr([topic(f)], f), tags(f)),
    );
    expect(q.transactions).toEqual([]);
    golden(
      AddPartitionsToTxnResponse,
      {
        throttleTimeMs: 5,
        resultsByTopicV3AndBelow: [
          {
            name: "t",
            resultsByPartition: [
              { partitionIndex: 0, partitionErrorCode: 0 },
              { partitionIndex: 2, partitionErrorCode: 48 },
            ],
          },
        ],
      },
      v,
      cat(i32(5), arr([result(f)], f), tags(f)),
    );
  });

  it.each([4, 5])("v%i: batched transactions with verify_only", (v) => {
    const q = golden(
      AddPartitionsToTxnRequest,
      {
        transactions: [
          { transactionalId: "tx", producerId: 7n, producerEpoch: 2, verifyOnly: true, topics: [{ name: "t", partitions: [0, 2] }] },
        ],
      },
      v,
      cat(arr([cat(str("tx", true), i64(7n), i16(2), bool(true), arr([topic(true)], true), tags(true))], true), tags(true)),
    );
    expect(q.v3AndBelowTopics).toEqual([]);
    golden(
      AddPartitionsToTxnResponse,
      {
        throttleTimeMs: 0,
        errorCode: 0,
        resultsByTransaction: [
          {
            transactionalId: "tx",
            topicResults: [
              {
                name: "t",
                resultsByPartition: [
                  { partitionIndex: 0, partitionErrorCode: 0 },
                  { partitionIndex: 2, partitionErrorCode: 48 },
                ],
              },
            ],
          },
        ],
      },
      v,
      cat(i32(0), i16(0), arr([cat(str("tx", true), arr([result(true)], true), tags(true))], true), tags(true)),
    );
  });
});

describe("golden bytes: AddOffsetsToTxn v0-4", () => {
  it.each(range(0, 4))("v%i", (v) => {
    const f = v >= 3;
    golden(
      AddOffsetsToTxnRequest,
      { transactionalId: "tx", producerId: 9n, producerEpoch: 1, groupId: "g" },
      v,
      cat(str("tx", f), i64(9n), i16(1), str("g", f), tags(f)),
    );
    golden(AddOffsetsToTxnResponse, { throttleTimeMs: 0, errorCode: 47 }, v, cat(i32(0), i16(47), tags(f)));
  });
});

describe("golden bytes: TxnOffsetCommit v0-5", () => {
  it.each(range(0, 5))("v%i", (v) => {
    const f = v >= 3;
    const part = cat(i32(1), i64(42n), v >= 2 ? i32(3) : Buffer.alloc(0), str(null, f), tags(f));
    const member = v >= 3 ? cat(i32(4), str("m-1", f), str(null, f)) : Buffer.alloc(0);
    const q = golden(
      TxnOffsetCommitRequest,
      {
        transactionalId: "tx",
        groupId: "g",
        producerId: 9n,
        producerEpoch: 1,
        generationId: 4,
        memberId: "m-1",
        groupInstanceId: null,
        topics: [
          { name: "in", partitions: [{ partitionIndex: 1, committedOffset: 42n, committedLeaderEpoch: 3, committedMetadata: null }] },
        ],
      },
      v,
      cat(str("tx", f), str("g", f), i64(9n), i16(1), member, arr([cat(str("in", f), arr([part], f), tags(f))], f), tags(f)),
    );
    // Absent from the version: their defaults (no membership, no leader epoch).
    if (v < 3) expect([q.generationId, q.memberId]).toEqual([-1, ""]);
    if (v < 2) expect(q.topics[0]?.partitions[0]?.committedLeaderEpoch).toBe(-1);
    golden(
      TxnOffsetCommitResponse,
      { throttleTimeMs: 0, topics: [{ name: "in", partitions: [{ partitionIndex: 1, errorCode: 22 }] }] },
      v,
      cat(i32(0), arr([cat(str("in", f), arr([cat(i32(1), i16(22), tags(f))], f), tags(f))], f), tags(f)),
    );
  });
});

describe("golden bytes: EndTxn v0-5", () => {
  it.each(range(0, 5))("v%i", (v) => {
    const f = v >= 3;
    golden(
      EndTxnRequest,
      { transactionalId: "tx", producerId: 9n, producerEpoch: 1, committed: true },
      v,
      cat(str("tx", f), i64(9n), i16(1), bool(true), tags(f)),
    );
    // v5 (TV2) answers the producer id and epoch to use next.
    golden(
      EndTxnResponse,
      { throttleTimeMs: 0, errorCode: 0, producerId: 10n, producerEpoch: 0 },
      v,
      cat(i32(0), i16(0), v >= 5 ? cat(i64(10n), i16(0)) : Buffer.alloc(0), tags(f)),
    );
  });
});

describe("golden bytes: DescribeTransactions v0 and ListTransactions v0-1", () => {
  it("DescribeTransactions v0", () => {
    golden(DescribeTransactionsRequest, { transactionalIds: ["a", "b"] }, 0, cat(arr([str("a", true), str("b", true)], true), tags(true)));
    const state = cat(
      i16(0),
      str("a", true),
      str("Ongoing", true),
      i32(60_000),
      i64(1_700_000_000_000n),
      i64(5n),
      i16(3),
      arr([cat(str("t", true), arr([i32(0), i32(1)], true), tags(true))], true),
      tags(true),
    );
    golden(
      DescribeTransactionsResponse,
      {
        throttleTimeMs: 0,
        transactionStates: [
          {
            errorCode: 0,
            transactionalId: "a",
            transactionState: "Ongoing",
            transactionTimeoutMs: 60_000,
            transactionStartTimeMs: 1_700_000_000_000n,
            producerId: 5n,
            producerEpoch: 3,
            topics: [{ topic: "t", partitions: [0, 1] }],
          },
        ],
      },
      0,
      cat(i32(0), arr([state], true), tags(true)),
    );
  });

  it.each([0, 1])("ListTransactions v%i", (v) => {
    golden(
      ListTransactionsRequest,
      { stateFilters: ["Ongoing"], producerIdFilters: [5n], durationFilter: 1000n },
      v,
      cat(arr([str("Ongoing", true)], true), arr([i64(5n)], true), v >= 1 ? i64(1000n) : Buffer.alloc(0), tags(true)),
    );
    // v0 has no duration filter: it reads as -1 (every transaction).
    if (v === 0) expect(dec(ListTransactionsRequest, cat(arr([], true), arr([], true), tags(true)), 0).durationFilter).toBe(-1n);
    golden(
      ListTransactionsResponse,
      {
        throttleTimeMs: 0,
        errorCode: 0,
        unknownStateFilters: ["Bogus"],
        transactionStates: [{ transactionalId: "a", producerId: 5n, transactionState: "Ongoing" }],
      },
      v,
      cat(
        i32(0),
        i16(0),
        arr([str("Bogus", true)], true),
        arr([cat(str("a", true), i64(5n), str("Ongoing", true), tags(true))], true),
        tags(true),
      ),
    );
  });
});

describe("golden bytes: FindCoordinator key type 1, InitProducerId with a transactional id", () => {
  it.each(range(1, 4))("FindCoordinator v%i with key type 1 (transaction)", (v) => {
    const f = v >= 3;
    const q = golden(
      FindCoordinatorRequest,
      { key: "tx", keyType: 1, coordinatorKeys: ["tx"] },
      v,
      cat(v <= 3 ? str("tx", f) : Buffer.alloc(0), i8(1), v >= 4 ? arr([str("tx", true)], true) : Buffer.alloc(0), tags(f)),
    );
    expect(q.keyType).toBe(1);
  });

  it.each(range(0, 5))("InitProducerId v%i with a transactional id and timeout", (v) => {
    const f = v >= 2;
    golden(
      InitProducerIdRequest,
      { transactionalId: "tx", transactionTimeoutMs: 60_000, producerId: 7n, producerEpoch: 3 },
      v,
      cat(str("tx", f), i32(60_000), v >= 3 ? cat(i64(7n), i16(3)) : Buffer.alloc(0), tags(f)),
    );
  });
});

describe("what ApiVersions advertises", () => {
  it("the transaction APIs at the versions this listener serves (TV1: EndTxn and TxnOffsetCommit below 5, Produce below 12)", () => {
    const v = (key: number) => KAFKA_APIS.find((a) => a.key === key)?.versions;
    expect(v(24)).toEqual([0, 5]);
    expect(v(25)).toEqual([0, 4]);
    expect(v(26)).toEqual([0, 4]);
    expect(v(28)).toEqual([0, 4]);
    expect(v(65)).toEqual([0, 0]);
    expect(v(66)).toEqual([0, 1]);
    expect(v(0)?.[1]).toBeLessThan(12);
  });
});
