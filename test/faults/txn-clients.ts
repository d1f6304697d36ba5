/**
 * Raw gRPC calls of the transactional fault scenario, as a generated client in any language
 * makes them (DESIGN.md "Transactions"): InitProducerId with a transactional id, Produce with
 * `transactional_id` (TV2: a partition joins the transaction on its first produce), CommitOffsets
 * with the transaction, EndTransaction (answering the id and epoch of the next transaction), and
 * READ_COMMITTED Fetch. Every call has a deadline; a failed call rejects with the grpc error (the
 * catalog code is in its `rill-error-code` trailer).
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ErrorDetailSchema, IsolationLevel, RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, FetchService, type FetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { CommitOffsetsRequestSchema, GroupService, type CommitOffsetsResponse } from "../../src/gen/rill/v1/group_service_pb.ts";
import {
  Acks,
  EndTransactionRequestSchema,
  type EndTransactionResponse,
  InitProducerIdRequestSchema,
  ProduceRequestSchema,
  ProduceService,
  type ProduceResponse,
  ProduceStreamRequestSchema,
  type ProduceStreamResponse,
} from "../../src/gen/rill/v1/produce_service_pb.ts";
import type { ErrorDetail } from "../../src/gen/rill/v1/common_pb.ts";
import { clientConstructor, type ServiceClient } from "../../src/protocol/grpc-service.ts";
import { unaryCall } from "../integration/cluster-harness.ts";
import { CHANNEL_OPTIONS } from "./clients.ts";

const ProduceClient = clientConstructor(ProduceService);
const FetchClient = clientConstructor(FetchService);
const GroupClient = clientConstructor(GroupService);

/** A transactional producer's identity. */
export interface TxnProducer {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

/** The transactional calls of one node (addressed directly). */
export class TxnNodeClients {
  private readonly produceClient: ServiceClient<typeof ProduceService>;
  private readonly fetchClient: ServiceClient<typeof FetchService>;
  private readonly groupClient: ServiceClient<typeof GroupService>;

  constructor(
    readonly nodeId: number,
    readonly address: string,
  ) {
    const creds = grpc.credentials.createInsecure();
    this.produceClient = new ProduceClient(address, creds, CHANNEL_OPTIONS);
    this.fetchClient = new FetchClient(address, creds, CHANNEL_OPTIONS);
    this.groupClient = new GroupClient(address, creds, CHANNEL_OPTIONS);
  }

  /** InitProducerId with a transactional id: fences an older instance and aborts its open transaction. */
  async initProducerId(transactionalId: string, transactionTimeoutMs: number, deadlineMs: number): Promise<TxnProducer> {
    const req = create(InitProducerIdRequestSchema, { transactionalId, transactionTimeoutMs });
    const res = await unaryCall<{ producerId: bigint; producerEpoch: number }>(
      (o, cb) => this.produceClient.initProducerId(req, new grpc.Metadata(), o, cb),
      deadlineMs,
    );
    return { transactionalId, producerId: res.producerId, producerEpoch: res.producerEpoch };
  }

  /** Produces `values` to one partition in `p`'s transaction (acks=ALL, sequence from `baseSequence`). */
  produce(
    p: TxnProducer,
    topic: string,
    partition: number,
    values: readonly string[],
    baseSequence: number,
    timeoutMs: number,
    deadlineMs: number,
  ): Promise<ProduceResponse> {
    const req = create(ProduceRequestSchema, {
      topic,
      partition,
      records: values.map((v) => ({ value: Buffer.from(v, "utf8") })),
      acks: Acks.ALL,
      timeoutMs,
      producerId: p.producerId,
      producerEpoch: p.producerEpoch,
      baseSequence,
      transactionalId: p.transactionalId,
    });
    return unaryCall((o, cb) => this.produceClient.produce(req, new grpc.Metadata(), o, cb), deadlineMs);
  }

  /**
   * The transaction's records for several partitions and its end on one ProduceStream, the end
   * written right behind the records without waiting for their answers (as the SDK sends a
   * commit, issue 17): the broker acts on the end once those requests are answered, and refuses a
   * commit when one of them failed (INVALID_TXN_STATE; the transaction stays open). Resolves with
   * each answer in order: a ProduceResponse or ErrorDetail per part, then the end's identity or
   * ErrorDetail. Rejects when the stream breaks before every answer came (the end's outcome is
   * then unknown). `together`: the end goes in the last part's message instead (one answer for
   * both: its `end_transaction_outcome`).
   */
  produceAndEnd(
    p: TxnProducer,
    parts: readonly { topic: string; partition: number; values: readonly string[] }[],
    commit: boolean,
    timeoutMs: number,
    deadlineMs: number,
    together = false,
  ): Promise<{ produced: (ProduceResponse | ErrorDetail)[]; end: TxnProducer | ErrorDetail }> {
    const expected = together ? parts.length : parts.length + 1;
    return new Promise((resolve, reject) => {
      const stream = this.produceClient.produceStream(new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
      const answers: ProduceStreamResponse[] = [];
      let settled = false;
      const done = (e: Error | null): void => {
        if (settled) return;
        settled = true;
        if (e !== null) {
          stream.cancel();
          reject(e);
          return;
        }
        stream.end();
        const produced = answers.slice(0, parts.length).map((a) => a.result.value as ProduceResponse | ErrorDetail);
        const last = together ? answers[parts.length - 1]!.endTransactionOutcome?.result : answers[parts.length]!.result;
        const end =
          last?.case === "endTransaction" || last?.case === "response"
            ? {
                transactionalId: p.transactionalId,
                producerId: (last.value as EndTransactionResponse).producerId,
                producerEpoch: (last.value as EndTransactionResponse).producerEpoch,
              }
            : last?.case === "error"
              ? last.value
              : create(ErrorDetailSchema, { name: "UNKNOWN_SERVER_ERROR", message: "no end_transaction_outcome in the answer" });
        resolve({ produced, end });
      };
      stream.on("data", (m: ProduceStreamResponse) => {
        answers.push(m);
        if (answers.length === expected) done(null);
      });
      stream.on("error", (e: Error) => done(e));
      stream.on("end", () => done(new Error(`ProduceStream ended after ${answers.length} of ${expected} answers`)));
      const end = create(EndTransactionRequestSchema, {
        transactionalId: p.transactionalId,
        producerId: p.producerId,
        producerEpoch: p.producerEpoch,
        commit,
      });
      parts.forEach((x, i) => {
        const request = create(ProduceRequestSchema, {
          topic: x.topic,
          partition: x.partition,
          records: x.values.map((v) => ({ value: Buffer.from(v, "utf8") })),
          acks: Acks.ALL,
          timeoutMs,
          producerId: p.producerId,
          producerEpoch: p.producerEpoch,
          baseSequence: 0,
          transactionalId: p.transactionalId,
        });
        const withEnd = together && i === parts.length - 1 ? { endTransaction: end } : {};
        stream.write(create(ProduceStreamRequestSchema, { requestId: BigInt(i + 1), request, ...withEnd }));
      });
      if (!together) stream.write(create(ProduceStreamRequestSchema, { requestId: BigInt(parts.length + 1), endTransaction: end }));
    });
  }

  /** Commits offsets (next to read) with `p`'s transaction, outside any group membership. */
  commitOffsets(
    p: TxnProducer,
    groupId: string,
    offsets: readonly { topic: string; partition: number; offset: number }[],
    deadlineMs: number,
  ): Promise<CommitOffsetsResponse> {
    const req = create(CommitOffsetsRequestSchema, {
      groupId,
      memberId: "",
      memberEpoch: -1,
      offsets: offsets.map((x) => ({ topic: x.topic, partition: x.partition, offset: BigInt(x.offset) })),
      transactionalId: p.transactionalId,
      producerId: p.producerId,
      producerEpoch: p.producerEpoch,
    });
    return unaryCall((o, cb) => this.groupClient.commitOffsets(req, new grpc.Metadata(), o, cb), deadlineMs);
  }

  /** Ends `p`'s transaction; resolves with the identity of its next transaction. */
  async endTransaction(p: TxnProducer, commit: boolean, deadlineMs: number): Promise<TxnProducer> {
    const req = create(EndTransactionRequestSchema, {
      transactionalId: p.transactionalId,
      producerId: p.producerId,
      producerEpoch: p.producerEpoch,
      commit,
    });
    const res = await unaryCall<{ producerId: bigint; producerEpoch: number }>(
      (o, cb) => this.produceClient.endTransaction(req, new grpc.Metadata(), o, cb),
      deadlineMs,
    );
    return { transactionalId: p.transactionalId, producerId: res.producerId, producerEpoch: res.producerEpoch };
  }

  /** Fetch RECORDS of several partitions of one topic at `isolation`. */
  fetch(
    topic: string,
    positions: ReadonlyMap<number, number>,
    o: { maxWaitMs: number; deadlineMs: number; maxBytes?: number; readCommitted: boolean },
  ): Promise<FetchResponse> {
    const req = create(FetchRequestSchema, {
      partitions: [...positions].map(([partition, offset]) => ({ topic, partition, offset: BigInt(offset) })),
      maxWaitMs: o.maxWaitMs,
      minBytes: 1,
      maxBytes: o.maxBytes ?? 0,
      format: RecordFormat.RECORDS,
      isolationLevel: o.readCommitted ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED,
    });
    return unaryCall((opts, cb) => this.fetchClient.fetch(req, new grpc.Metadata(), opts, cb), o.deadlineMs);
  }

  close(): void {
    this.produceClient.close();
    this.fetchClient.close();
    this.groupClient.close();
  }
}

/** "NAME: message" of a failed call (the catalog name when the broker sent one). */
export function callErrorText(e: unknown): string {
  const se = e as Partial<grpc.ServiceError>;
  const name = se.metadata?.get("rill-error-name")[0]?.toString();
  return `${name ?? `grpc status ${se.code ?? "?"}`}: ${se.details ?? (e instanceof Error ? e.message : String(e))}`;
}
