import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, type FetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import {
  Acks,
  InitProducerIdRequestSchema,
  ProduceRequestSchema,
  type InitProducerIdResponse,
  type ProduceResponse,
} from "../../src/gen/rill/v1/produce_service_pb.ts";
import { encodeBatch } from "../../src/protocol/record-batch.ts";
import { call, clients, errorName, rmTmp, tmpDir } from "./rpc-helpers.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("idempotent producers over gRPC", () => {
  it("InitProducerId issues unique ids, bumps epochs for a stable id, and dedups retries across a restart", async () => {
    const dir = tmpDir();
    let b = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
    let c = clients(b.address);
    try {
      const init = (transactionalId = "", producerId?: bigint, producerEpoch = 0): Promise<InitProducerIdResponse> =>
        call(
          c.produce,
          "initProducerId",
          create(InitProducerIdRequestSchema, { transactionalId, ...(producerId !== undefined ? { producerId } : {}), producerEpoch }),
        );
      const a = await init();
      const a2 = await init();
      expect(a2.producerId).not.toBe(a.producerId);
      const t1 = await init("orders-writer");
      const t2 = await init("orders-writer");
      expect([t2.producerId, t2.producerEpoch]).toEqual([t1.producerId, t1.producerEpoch + 1]);
      const bumped = await init("", a.producerId, a.producerEpoch);
      expect([bumped.producerId, bumped.producerEpoch]).toEqual([a.producerId, 1]);

      await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "idem", partitions: 2 }] }));
      // timeoutMs also bounds how long the broker waits for an id or epoch its metadata lacks
      const produce = (seq: number, n: number, pid = t2.producerId, epoch = t2.producerEpoch, timeoutMs = 0): Promise<ProduceResponse> =>
        call(
          c.produce,
          "produce",
          create(ProduceRequestSchema, {
            topic: "idem",
            partition: 1,
            acks: Acks.ALL,
            producerId: pid,
            producerEpoch: epoch,
            baseSequence: seq,
            timeoutMs,
            records: Array.from({ length: n }, (_, i) => ({ value: enc(`s${seq + i}`) })),
          }),
        );
      const first = await produce(0, 3);
      expect(first.records.map((r) => r.offset)).toEqual([0n, 1n, 2n]);
      const retry = await produce(0, 3);
      expect(retry.records.map((r) => r.offset)).toEqual([0n, 1n, 2n]);
      expect((await produce(3, 2)).records.map((r) => r.offset)).toEqual([3n, 4n]);
      // a gap, the fenced epoch, an epoch from the future, an id never issued: errors, nothing appended
      expect((await produce(9, 1)).partitions[0]!.error!.name).toBe("OUT_OF_ORDER_SEQUENCE_NUMBER");
      expect((await produce(5, 1, t1.producerId, t1.producerEpoch)).partitions[0]!.error!.name).toBe("INVALID_PRODUCER_EPOCH");
      expect((await produce(0, 1, t2.producerId, t2.producerEpoch + 5, 300)).partitions[0]!.error!.name).toBe("INVALID_PRODUCER_EPOCH");
      expect((await produce(0, 1, 999_999n, 0, 300)).partitions[0]!.error!.name).toBe("UNKNOWN_PRODUCER_ID");
      // the record_batch path uses the batch's own producer fields
      const batch = encodeBatch([{ value: "via-batch" }], {
        producerId: Number(a.producerId),
        producerEpoch: 1,
        baseSequence: 0,
        nowMs: 1,
      });
      const viaBatch = (): Promise<ProduceResponse> =>
        call(c.produce, "produce", create(ProduceRequestSchema, { topic: "idem", partition: 1, recordBatch: Buffer.from(batch) }));
      expect((await viaBatch()).partitions[0]!.baseOffset).toBe(5n);
      expect((await viaBatch()).partitions[0]!.baseOffset).toBe(5n);
      // a producer id without a partition on the records path is a request error
      let err: grpc.ServiceError | undefined;
      try {
        await call(
          c.produce,
          "produce",
          create(ProduceRequestSchema, { topic: "idem", producerId: t2.producerId, records: [{ value: enc("x") }] }),
        );
      } catch (e) {
        err = e as grpc.ServiceError;
      }
      expect(errorName(err)).toBe("INVALID_REQUEST");
      expect(err!.details).toMatch(/^partition: required with producer_id/);

      c.close();
      await b.close();
      b = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
      c = clients(b.address);
      expect((await produce(3, 2)).records.map((r) => r.offset)).toEqual([3n, 4n]); // still a duplicate
      const after = await init();
      expect(after.producerId).toBeGreaterThan(t1.producerId); // unique across restarts
      const f: FetchResponse = await call(
        c.fetch,
        "fetch",
        create(FetchRequestSchema, { partitions: [{ topic: "idem", partition: 1, offset: 0n }], format: RecordFormat.RECORDS }),
      );
      expect(f.partitions[0]!.records.map((r) => Buffer.from(r.value!).toString())).toEqual(["s0", "s1", "s2", "s3", "s4", "via-batch"]);
    } finally {
      c.close();
      await b.close();
      rmTmp(dir);
    }
  });
});
