/**
 * The real Transport: grpc-js clients of AdminService, ProduceService and FetchService sharing
 * one channel (one HTTP/2 connection) to one broker, with the transport settings of
 * `clientChannelOptions()` (16 MiB windows, message limits, keepalive; src/protocol) and the
 * hand-written codecs of wire-codec.ts for the batch-carrying messages
 * (`encodeProduceStreamRequest` copies a batch once, `decodeFetchResponse` returns
 * `record_batches` as views).
 */

import { create } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminService } from "../gen/rill/v1/admin_service_pb.ts";
import { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import { ProduceService } from "../gen/rill/v1/produce_service_pb.ts";
import { clientChannelOptions, reconnectChannelOptions } from "../protocol/channel-options.ts";
import { clientConstructor } from "../protocol/grpc-service.ts";
import { type ChannelSecurity, plaintext } from "./channel-security.ts";
import { fromGrpcError } from "./errors.ts";
import type { CallOptions, ProduceStream, ProduceStreamListener, Transport, UnaryCall } from "./transport.ts";
import { type EndTransactionStreamInput, type ProduceStreamRequestInput, fetchClientCodecs, produceClientCodecs } from "./wire-codec.ts";

const AdminClient = clientConstructor(AdminService);
const ProduceClient = clientConstructor(ProduceService, produceClientCodecs);
const FetchClient = clientConstructor(FetchService, fetchClientCodecs);

/** The four-argument overload of a generated unary method. */
type UnaryWithOptions<Res> = (
  request: any,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

/** Options of `GrpcTransport`. */
export interface GrpcTransportOptions {
  /** Extra grpc-js channel options, applied over Rill's defaults. */
  readonly channelOptions?: grpc.ChannelOptions;
  /** TLS, credentials and client id (channel-security.ts). Default plaintext, no headers. */
  readonly security?: ChannelSecurity;
}

/** Checks "host:port" (IPv6 hosts in brackets); throws RangeError naming the address otherwise. */
export function checkAddress(address: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(address);
  if (m === null || Number(m[2]) > 65535) throw new RangeError(`bootstrap: "${address}" is not host:port`);
  return address;
}

/** A Transport over one grpc-js channel to `address` ("host:port"). */
export class GrpcTransport implements Transport {
  readonly address: string;
  /** The channel (one HTTP/2 connection); GroupService clients of the same broker share it. */
  readonly channel: grpc.Channel;
  /** How the channel was made; GroupService clients of the same broker use it too. */
  readonly security: ChannelSecurity;
  private readonly admin: InstanceType<typeof AdminClient>;
  private readonly producer: InstanceType<typeof ProduceClient>;
  private readonly fetcher: InstanceType<typeof FetchClient>;

  /** Creates the channel lazily connecting to `address`; no I/O happens until the first call. */
  constructor(address: string, options: GrpcTransportOptions = {}) {
    this.address = checkAddress(address);
    this.security = options.security ?? plaintext;
    const credentials = this.security.credentials;
    const channelOptions = {
      ...clientChannelOptions(),
      ...reconnectChannelOptions,
      ...this.security.channelOptions,
      ...options.channelOptions,
    };
    this.channel = new grpc.Channel(address, credentials, channelOptions);
    const clientOptions = { channelOverride: this.channel, interceptors: this.security.interceptors };
    this.admin = new AdminClient(address, credentials, clientOptions);
    this.producer = new ProduceClient(address, credentials, clientOptions);
    this.fetcher = new FetchClient(address, credentials, clientOptions);
  }

  readonly createTopics: UnaryCall<"createTopics"> = (r, o) =>
    this.unary(this.admin, this.admin.createTopics, AdminService.method.createTopics.input, r, o);
  readonly deleteTopics: UnaryCall<"deleteTopics"> = (r, o) =>
    this.unary(this.admin, this.admin.deleteTopics, AdminService.method.deleteTopics.input, r, o);
  readonly listTopics: UnaryCall<"listTopics"> = (r, o) =>
    this.unary(this.admin, this.admin.listTopics, AdminService.method.listTopics.input, r, o);
  readonly describeTopics: UnaryCall<"describeTopics"> = (r, o) =>
    this.unary(this.admin, this.admin.describeTopics, AdminService.method.describeTopics.input, r, o);
  readonly createPartitions: UnaryCall<"createPartitions"> = (r, o) =>
    this.unary(this.admin, this.admin.createPartitions, AdminService.method.createPartitions.input, r, o);
  readonly describeConfigs: UnaryCall<"describeConfigs"> = (r, o) =>
    this.unary(this.admin, this.admin.describeConfigs, AdminService.method.describeConfigs.input, r, o);
  readonly alterConfigs: UnaryCall<"alterConfigs"> = (r, o) =>
    this.unary(this.admin, this.admin.alterConfigs, AdminService.method.alterConfigs.input, r, o);
  readonly describeCluster: UnaryCall<"describeCluster"> = (r, o) =>
    this.unary(this.admin, this.admin.describeCluster, AdminService.method.describeCluster.input, r, o);
  // security (issue 13)
  readonly createAcls: UnaryCall<"createAcls"> = (r, o) =>
    this.unary(this.admin, this.admin.createAcls, AdminService.method.createAcls.input, r, o);
  readonly describeAcls: UnaryCall<"describeAcls"> = (r, o) =>
    this.unary(this.admin, this.admin.describeAcls, AdminService.method.describeAcls.input, r, o);
  readonly deleteAcls: UnaryCall<"deleteAcls"> = (r, o) =>
    this.unary(this.admin, this.admin.deleteAcls, AdminService.method.deleteAcls.input, r, o);
  readonly alterUserScramCredentials: UnaryCall<"alterUserScramCredentials"> = (r, o) =>
    this.unary(this.admin, this.admin.alterUserScramCredentials, AdminService.method.alterUserScramCredentials.input, r, o);
  readonly describeUserScramCredentials: UnaryCall<"describeUserScramCredentials"> = (r, o) =>
    this.unary(this.admin, this.admin.describeUserScramCredentials, AdminService.method.describeUserScramCredentials.input, r, o);
  // client quotas (issue 13)
  readonly alterClientQuotas: UnaryCall<"alterClientQuotas"> = (r, o) =>
    this.unary(this.admin, this.admin.alterClientQuotas, AdminService.method.alterClientQuotas.input, r, o);
  readonly describeClientQuotas: UnaryCall<"describeClientQuotas"> = (r, o) =>
    this.unary(this.admin, this.admin.describeClientQuotas, AdminService.method.describeClientQuotas.input, r, o);
  // delete records (issue 15)
  readonly deleteRecords: UnaryCall<"deleteRecords"> = (r, o) =>
    this.unary(this.admin, this.admin.deleteRecords, AdminService.method.deleteRecords.input, r, o);
  // leader election (issue 18)
  readonly electLeaders: UnaryCall<"electLeaders"> = (r, o) =>
    this.unary(this.admin, this.admin.electLeaders, AdminService.method.electLeaders.input, r, o);
  readonly listTransactions: UnaryCall<"listTransactions"> = (r, o) =>
    this.unary(this.admin, this.admin.listTransactions, AdminService.method.listTransactions.input, r, o);
  readonly describeTransactions: UnaryCall<"describeTransactions"> = (r, o) =>
    this.unary(this.admin, this.admin.describeTransactions, AdminService.method.describeTransactions.input, r, o);
  readonly abortTransaction: UnaryCall<"abortTransaction"> = (r, o) =>
    this.unary(this.admin, this.admin.abortTransaction, AdminService.method.abortTransaction.input, r, o);
  // dynamic controller quorum (issue 21)
  readonly addRaftVoter: UnaryCall<"addRaftVoter"> = (r, o) =>
    this.unary(this.admin, this.admin.addRaftVoter, AdminService.method.addRaftVoter.input, r, o);
  readonly removeRaftVoter: UnaryCall<"removeRaftVoter"> = (r, o) =>
    this.unary(this.admin, this.admin.removeRaftVoter, AdminService.method.removeRaftVoter.input, r, o);
  // partition reassignment (issue 21)
  readonly alterPartitionReassignments: UnaryCall<"alterPartitionReassignments"> = (r, o) =>
    this.unary(this.admin, this.admin.alterPartitionReassignments, AdminService.method.alterPartitionReassignments.input, r, o);
  readonly listPartitionReassignments: UnaryCall<"listPartitionReassignments"> = (r, o) =>
    this.unary(this.admin, this.admin.listPartitionReassignments, AdminService.method.listPartitionReassignments.input, r, o);
  // cordoned brokers (issue 21)
  readonly alterBrokerCordons: UnaryCall<"alterBrokerCordons"> = (r, o) =>
    this.unary(this.admin, this.admin.alterBrokerCordons, AdminService.method.alterBrokerCordons.input, r, o);
  readonly fetch: UnaryCall<"fetch"> = (r, o) => this.unary(this.fetcher, this.fetcher.fetch, FetchService.method.fetch.input, r, o);
  readonly listOffsets: UnaryCall<"listOffsets"> = (r, o) =>
    this.unary(this.fetcher, this.fetcher.listOffsets, FetchService.method.listOffsets.input, r, o);
  readonly initProducerId: UnaryCall<"initProducerId"> = (r, o) =>
    this.unary(this.producer, this.producer.initProducerId, ProduceService.method.initProducerId.input, r, o);
  readonly endTransaction: UnaryCall<"endTransaction"> = (r, o) =>
    this.unary(this.producer, this.producer.endTransaction, ProduceService.method.endTransaction.input, r, o);

  /** Opens a ProduceStream call; its failures reach `listener.onError` as client errors. */
  openProduceStream(listener: ProduceStreamListener): ProduceStream {
    return duplexStream(
      this.producer.produceStream(),
      listener,
      this.address,
      (request: ProduceStreamRequestInput | EndTransactionStreamInput) => request,
    );
  }

  /** Closes the channel; calls in progress fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.channel.close();
  }

  private unary<D extends DescMessage, Res>(
    client: grpc.Client,
    method: UnaryWithOptions<Res>,
    schema: D,
    request: MessageInitShape<D>,
    options: CallOptions = {},
  ): Promise<Res> {
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const callOptions: grpc.CallOptions = {};
    if (options.timeoutMs !== undefined) callOptions.deadline = Date.now() + options.timeoutMs;
    return new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => {
        call.cancel();
        reject(signal!.reason);
      };
      const call = method.call(client, create(schema, request), new grpc.Metadata(), callOptions, (err, res) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(fromGrpcError(err, this.address));
        else resolve(res!);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

/** What a listener of a bidirectional stream hears. */
export interface DuplexListener<Res> {
  onResponse(response: Res): void;
  onError(error: Error): void;
  onEnd(): void;
}

/**
 * Wraps a grpc-js bidirectional call: responses go to the listener until the stream fails (as a
 * client error naming `address`) or ends; after that the listener hears nothing more, and
 * `write`/`end` do nothing. `toWire` turns a request into what the call's serializer takes.
 */
export function duplexStream<Req, Wire, Res>(
  call: grpc.ClientDuplexStream<Wire, Res>,
  listener: DuplexListener<Res>,
  address: string,
  toWire: (request: Req) => Wire,
): { write(request: Req): void; end(): void; cancel(): void } {
  let done = false;
  const finish = (): boolean => {
    if (done) return false;
    done = true;
    return true;
  };
  call.on("data", (m: Res) => {
    if (!done) listener.onResponse(m);
  });
  call.on("error", (e: unknown) => {
    if (finish()) listener.onError(fromGrpcError(e, address));
  });
  call.on("end", () => {
    if (finish()) listener.onEnd();
  });
  return {
    write: (request) => {
      if (!done) call.write(toWire(request));
    },
    end: () => {
      if (!done) call.end();
    },
    cancel: () => {
      if (finish()) call.cancel();
    },
  };
}
