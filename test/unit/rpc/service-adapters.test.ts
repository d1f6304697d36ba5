import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { rillError } from "../../../src/base/errors.ts";
import { OffsetSpec as ProtoOffsetSpec, RecordFormat as ProtoRecordFormat, TimestampType } from "../../../src/gen/rill/v1/common_pb.ts";
import { AlterPartitionRequestSchema } from "../../../src/gen/rill/v1/controller_service_pb.ts";
import { FetchResponseSchema } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceRequestSchema } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { controllerService } from "../../../src/rpc/controller-service.ts";
import { decodeFetched, toFetchOutput } from "../../../src/rpc/fetch-service.ts";
import { toProduceInput, toProduceResponse } from "../../../src/rpc/produce-service.ts";
import { encodeProduceRequest } from "../../../src/client/wire-codec.ts";
import { decodeProduceRequest, encodeFetchResponse } from "../../../src/rpc/wire-codec.ts";
import { OffsetSpec, RecordFormat } from "../../../src/service/fetch-types.ts";
import { ProduceAcks } from "../../../src/service/produce-types.ts";

describe("the service's request enums are the wire contract's numbers", () => {
  it("acks, record format and offset spec", () => {
    expect(ProduceAcks).toEqual({ UNSPECIFIED: Acks.UNSPECIFIED, NONE: Acks.NONE, LEADER: Acks.LEADER, ALL: Acks.ALL });
    expect(RecordFormat).toEqual({
      UNSPECIFIED: ProtoRecordFormat.UNSPECIFIED,
      RECORDS: ProtoRecordFormat.RECORDS,
      BATCHES: ProtoRecordFormat.BATCHES,
    });
    expect(OffsetSpec).toEqual({
      UNSPECIFIED: ProtoOffsetSpec.UNSPECIFIED,
      EARLIEST: ProtoOffsetSpec.EARLIEST,
      LATEST: ProtoOffsetSpec.LATEST,
      TIMESTAMP: ProtoOffsetSpec.TIMESTAMP,
    });
  });
});

describe("produce adapter", () => {
  it("keeps record_batch a view of the received bytes and maps absent fields to null", () => {
    const batch = encodeBatch([{ value: "x" }], { nowMs: 1 });
    const wire = encodeProduceRequest({ topic: "t", recordBatch: batch, acks: Acks.ALL });
    const input = toProduceInput(decodeProduceRequest(wire));
    expect(input.recordBatch!.buffer).toBe(wire.buffer);
    expect(input.recordBatch!.equals(batch)).toBe(true);
    expect(input).toMatchObject({ topic: "t", partition: undefined, acks: Acks.ALL, producerId: undefined, records: [] });

    const req = create(ProduceRequestSchema, {
      topic: "t",
      partition: 0,
      records: [
        { value: Buffer.from("v"), headers: [{ key: "h" }] },
        { key: Buffer.from("k"), timestampMs: 7n },
      ],
    });
    const withRecords = toProduceInput(req);
    expect(withRecords.recordBatch).toBeNull();
    expect(withRecords.records).toEqual([
      { key: null, value: Buffer.from("v"), headers: [{ key: "h", value: null }], timestampMs: null },
      { key: Buffer.from("k"), value: null, headers: [], timestampMs: 7n },
    ]);
  });

  it("answers offsets as int64 and a partition's error as an ErrorDetail", () => {
    const res = toProduceResponse({
      topic: "t",
      partitions: [
        { partition: 0, baseOffset: 5, logAppendTimeMs: -1, error: null },
        { partition: 1, baseOffset: -1, logAppendTimeMs: -1, error: rillError("NOT_LEADER_OR_FOLLOWER", "moved") },
      ],
      records: [{ partition: 0, offset: 5 }],
    });
    expect(res.partitions[0]).toMatchObject({ partition: 0, baseOffset: 5n, logAppendTimeMs: -1n, logStartOffset: 0n });
    expect(res.partitions[0]!.error).toBeUndefined();
    expect(res.partitions[1]!.error).toMatchObject({ name: "NOT_LEADER_OR_FOLLOWER", message: "moved", retriable: true });
    expect(res.records).toMatchObject([{ partition: 0, offset: 5n }]);
  });
});

describe("fetch adapter", () => {
  it("decodeFetched materialises ConsumedRecords with the partition's topic and absent nulls", () => {
    const batch = encodeBatch(
      [
        { key: "k", value: "a", headers: [{ key: "h", value: null }] },
        { value: null, timestampMs: 9 },
      ],
      { nowMs: 3, baseOffset: 10 },
    );
    const recs = decodeFetched("t", 2, [batch], 10);
    expect(recs).toHaveLength(2);
    expect(recs[0]).toMatchObject({ topic: "t", partition: 2, offset: 10n, timestampMs: 3n, timestampType: TimestampType.CREATE_TIME });
    expect(Buffer.from(recs[0]!.key!).toString()).toBe("k");
    expect(recs[0]!.headers[0]!.key).toBe("h");
    expect(recs[0]!.headers[0]!.value).toBeUndefined();
    expect(recs[1]!.key).toBeUndefined();
    expect(recs[1]!.value).toBeUndefined();
    expect(decodeFetched("t", 2, [batch], 11).map((r) => r.offset)).toEqual([11n]);
  });

  it("encodes a result as protobuf-es would encode the same FetchResponse", () => {
    const batch = encodeBatch([{ value: "a" }], { nowMs: 3 });
    const out = toFetchOutput({
      partitions: [
        {
          topic: "t",
          partition: 1,
          highWatermark: 1,
          logStartOffset: 0,
          lastStableOffset: 1,
          nextOffset: 1,
          error: null,
          records: null,
          batches: [batch],
        },
        {
          topic: "u",
          partition: 0,
          highWatermark: -1,
          logStartOffset: -1,
          lastStableOffset: -1,
          nextOffset: 4,
          error: rillError("UNKNOWN_TOPIC_OR_PARTITION", "gone"),
          records: null,
          batches: null,
        },
      ],
    });
    const expected = create(FetchResponseSchema, {
      partitions: [
        { topic: "t", partition: 1, highWatermark: 1n, lastStableOffset: 1n, nextOffset: 1n, recordBatches: batch },
        {
          topic: "u",
          highWatermark: -1n,
          logStartOffset: -1n,
          lastStableOffset: -1n,
          nextOffset: 4n,
          error: { code: 3, name: "UNKNOWN_TOPIC_OR_PARTITION", message: "gone", retriable: true },
        },
      ],
    });
    expect(Buffer.from(encodeFetchResponse(out)).equals(Buffer.from(toBinary(FetchResponseSchema, expected)))).toBe(true);
  });
});

describe("controller adapter: AlterPartition", () => {
  it("passes new_isr_broker_epochs (KIP-903) to the controller by position, as numbers", async () => {
    const seen: unknown[] = [];
    const control = {
      register: () => Promise.reject(new Error("unused")),
      heartbeat: () => Promise.reject(new Error("unused")),
      alterPartition: (nodeId: number, brokerEpoch: number, partitions: readonly unknown[]) => {
        seen.push({ nodeId, brokerEpoch, partitions });
        return Promise.resolve([]);
      },
    };
    const svc = controllerService({ clusterId: "c", raft: null, control });
    const request = create(AlterPartitionRequestSchema, {
      nodeId: 1,
      brokerEpoch: 7n,
      partitions: [{ topic: "t", partition: 0, leaderEpoch: 2, partitionEpoch: 3, newIsr: [1, 3], newIsrBrokerEpochs: [-1n, 42n] }],
    });
    await new Promise<void>((resolve, reject) =>
      (svc.alterPartition as (call: unknown, cb: (e: unknown) => void) => void)({ request }, (e) => (e ? reject(e) : resolve())),
    );
    expect(seen).toEqual([
      {
        nodeId: 1,
        brokerEpoch: 7,
        partitions: [{ topic: "t", partition: 0, leaderEpoch: 2, partitionEpoch: 3, newIsr: [1, 3], newIsrBrokerEpochs: [-1, 42] }],
      },
    ]);
  });
});
