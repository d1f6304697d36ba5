/**
 * The seam between the SDK and the network: every RPC the Producer, Consumer and Admin make goes
 * through a `Transport`. `GrpcTransport` (grpc-transport.ts) is the real one; tests use an
 * in-memory twin that answers like a broker and injects faults.
 *
 * Requests are protobuf-es init shapes (plain objects); responses are protobuf-es messages.
 * Every method rejects with a client error (errors.ts): a RillError carrying the broker's
 * catalog code, or a ConnectionError naming the address.
 */

import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { AdminService } from "../gen/rill/v1/admin_service_pb.ts";
import type { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import type { ProduceService, ProduceStreamResponse } from "../gen/rill/v1/produce_service_pb.ts";
import type { EndTransactionStreamInput, ProduceStreamRequestInput } from "./wire-codec.ts";

/** Options of one call. */
export interface CallOptions {
  /** Deadline of the call, from now. Absent: no deadline. */
  readonly timeoutMs?: number | undefined;
  /** Cancels the call; the promise then rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
}

type Methods = (typeof AdminService)["method"] & (typeof FetchService)["method"] & (typeof ProduceService)["method"];

/** A unary RPC of service method `K`, as a promise. */
export type UnaryCall<K extends keyof Methods> = (
  request: MessageInitShape<Methods[K]["input"]>,
  options?: CallOptions,
) => Promise<MessageShape<Methods[K]["output"]>>;

/** Receives what a ProduceStream sends back. After `onError` or `onEnd`, nothing more arrives. */
export interface ProduceStreamListener {
  /** One response, in request order. */
  onResponse(response: ProduceStreamResponse): void;
  /** The stream failed (a ConnectionError or RillError); requests without a response are lost. */
  onError(error: Error): void;
  /** The broker ended the stream cleanly (after the client's `end()`). */
  onEnd(): void;
}

/** The client's half of an open ProduceStream. */
export interface ProduceStream {
  /** Sends one request (a produce, or the end of a transaction); the response comes to the listener, in order. */
  write(request: ProduceStreamRequestInput | EndTransactionStreamInput): void;
  /** Half-closes: no more requests; the broker answers the outstanding ones and ends. */
  end(): void;
  /** Abandons the stream; the listener hears nothing more. */
  cancel(): void;
}

/** The RPCs the SDK uses, over some connection to a broker. */
export interface Transport {
  /** "host:port" of the broker this transport talks to (for messages). */
  readonly address: string;
  readonly createTopics: UnaryCall<"createTopics">;
  readonly deleteTopics: UnaryCall<"deleteTopics">;
  readonly listTopics: UnaryCall<"listTopics">;
  readonly describeTopics: UnaryCall<"describeTopics">;
  readonly createPartitions: UnaryCall<"createPartitions">;
  readonly describeConfigs: UnaryCall<"describeConfigs">;
  readonly alterConfigs: UnaryCall<"alterConfigs">;
  readonly describeCluster: UnaryCall<"describeCluster">;
  // security (issue 13): ACLs and SCRAM users
  readonly createAcls: UnaryCall<"createAcls">;
  readonly describeAcls: UnaryCall<"describeAcls">;
  readonly deleteAcls: UnaryCall<"deleteAcls">;
  readonly alterUserScramCredentials: UnaryCall<"alterUserScramCredentials">;
  readonly describeUserScramCredentials: UnaryCall<"describeUserScramCredentials">;
  // client quotas (issue 13)
  readonly alterClientQuotas: UnaryCall<"alterClientQuotas">;
  readonly describeClientQuotas: UnaryCall<"describeClientQuotas">;
  // delete records (issue 15)
  readonly deleteRecords: UnaryCall<"deleteRecords">;
  // leader election (issue 18)
  readonly electLeaders: UnaryCall<"electLeaders">;
  // transactions (issue 17)
  readonly listTransactions: UnaryCall<"listTransactions">;
  readonly describeTransactions: UnaryCall<"describeTransactions">;
  readonly abortTransaction: UnaryCall<"abortTransaction">;
  // dynamic controller quorum (issue 21)
  readonly addRaftVoter: UnaryCall<"addRaftVoter">;
  readonly removeRaftVoter: UnaryCall<"removeRaftVoter">;
  // partition reassignment (issue 21)
  readonly alterPartitionReassignments: UnaryCall<"alterPartitionReassignments">;
  readonly listPartitionReassignments: UnaryCall<"listPartitionReassignments">;
  // cordoned brokers (issue 21)
  readonly alterBrokerCordons: UnaryCall<"alterBrokerCordons">;
  /** Fetch with RECORD_FORMAT_BATCHES: `record_batches` are views of the received bytes. */
  readonly fetch: UnaryCall<"fetch">;
  readonly listOffsets: UnaryCall<"listOffsets">;
  /** A producer id and epoch for the idempotent producer (a new id, or the given one's epoch bumped). */
  readonly initProducerId: UnaryCall<"initProducerId">;
  /** Ends the producer's transaction (issue 17): commits or aborts; answers the id and epoch to go on with. */
  readonly endTransaction: UnaryCall<"endTransaction">;
  /** Opens a pipelined ProduceStream (record_batch requests carrying already encoded batches). */
  openProduceStream(listener: ProduceStreamListener): ProduceStream;
  /** Closes the connection; calls in progress fail. */
  close(): void;
}
