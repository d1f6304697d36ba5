/**
 * GroupService for the group clients: the `GroupTransport` seam (every call the GroupConsumer and
 * GroupAdmin make; unit tests use an in-memory twin) and `GrpcGroupTransport`, the real one over
 * grpc-js. The SDK's `Transport` (transport.ts) has no group calls: a GrpcGroupTransport shares
 * the broker's channel with it, or opens its own with the same settings.
 */

import { create } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ConsumeRequestSchema, type ConsumeResponse, GroupService } from "../gen/rill/v1/group_service_pb.ts";
import { clientChannelOptions, reconnectChannelOptions } from "../protocol/channel-options.ts";
import { clientConstructor } from "../protocol/grpc-service.ts";
import { type ChannelSecurity, plaintext } from "./channel-security.ts";
import { fromGrpcError } from "./errors.ts";
import { checkAddress, duplexStream } from "./grpc-transport.ts";

/** The method descriptors of GroupService, by localName. */
export type GroupMethods = (typeof GroupService)["method"];
type UnaryGroupMethod = Exclude<keyof GroupMethods, "consume">;

/** A unary GroupService call, as a promise. */
export type GroupUnaryCall<K extends UnaryGroupMethod> = (
  request: MessageInitShape<GroupMethods[K]["input"]>,
  options?: { readonly timeoutMs?: number | undefined },
) => Promise<MessageShape<GroupMethods[K]["output"]>>;

/** The request messages of a Consume stream, as init shapes. */
export type ConsumeRequestInit = MessageInitShape<typeof ConsumeRequestSchema>;

/** Receives what a Consume stream sends. After `onError` or `onEnd` nothing more arrives. */
export interface ConsumeListener {
  onResponse(response: ConsumeResponse): void;
  /** The stream failed: a RillError (status with a catalog code) or a ConnectionError. */
  onError(error: Error): void;
  /** The broker ended the stream with OK. */
  onEnd(): void;
}

/** The client's half of an open Consume stream. */
export interface ConsumeStream {
  write(request: ConsumeRequestInit): void;
  /** Half-closes: the broker removes the member and ends its side. */
  end(): void;
  /** Abandons the stream; the listener hears nothing more. */
  cancel(): void;
}

/** The GroupService calls the group clients make (a seam: unit tests use an in-memory twin). */
export interface GroupTransport {
  readonly address: string;
  openConsume(listener: ConsumeListener): ConsumeStream;
  readonly heartbeat: GroupUnaryCall<"heartbeat">;
  readonly commitOffsets: GroupUnaryCall<"commitOffsets">;
  readonly fetchOffsets: GroupUnaryCall<"fetchOffsets">;
  readonly listGroups: GroupUnaryCall<"listGroups">;
  readonly describeGroups: GroupUnaryCall<"describeGroups">;
  readonly deleteGroups: GroupUnaryCall<"deleteGroups">;
  readonly resetOffsets: GroupUnaryCall<"resetOffsets">;
  /** Kafka's OffsetDelete (issue 15). */
  readonly deleteOffsets: GroupUnaryCall<"deleteOffsets">;
  close(): void;
}

const GroupClient = clientConstructor(GroupService);

/**
 * GroupService over one grpc-js channel to `address`, connecting lazily: its own channel, or
 * `options.channel` shared with the broker's GrpcTransport (then `close()` leaves the channel to
 * its owner).
 */
export class GrpcGroupTransport implements GroupTransport {
  readonly address: string;
  private readonly client: InstanceType<typeof GroupClient>;
  private readonly ownsChannel: boolean;

  /** `options.security`: TLS, credentials and client id (channel-security.ts); default plaintext. */
  constructor(address: string, options: { readonly channel?: grpc.Channel; readonly security?: ChannelSecurity } = {}) {
    this.address = checkAddress(address);
    this.ownsChannel = options.channel === undefined;
    const security = options.security ?? plaintext;
    const interceptors = security.interceptors;
    this.client =
      options.channel !== undefined
        ? new GroupClient(address, security.credentials, { channelOverride: options.channel, interceptors })
        : new GroupClient(address, security.credentials, {
            ...clientChannelOptions(),
            // Rejoin quickly after a broker restart.
            ...reconnectChannelOptions,
            ...security.channelOptions,
            interceptors,
          });
  }

  readonly heartbeat: GroupUnaryCall<"heartbeat"> = (r, o) => this.unary("heartbeat", r, o);
  readonly commitOffsets: GroupUnaryCall<"commitOffsets"> = (r, o) => this.unary("commitOffsets", r, o);
  readonly fetchOffsets: GroupUnaryCall<"fetchOffsets"> = (r, o) => this.unary("fetchOffsets", r, o);
  readonly listGroups: GroupUnaryCall<"listGroups"> = (r, o) => this.unary("listGroups", r, o);
  readonly describeGroups: GroupUnaryCall<"describeGroups"> = (r, o) => this.unary("describeGroups", r, o);
  readonly deleteGroups: GroupUnaryCall<"deleteGroups"> = (r, o) => this.unary("deleteGroups", r, o);
  readonly resetOffsets: GroupUnaryCall<"resetOffsets"> = (r, o) => this.unary("resetOffsets", r, o);
  readonly deleteOffsets: GroupUnaryCall<"deleteOffsets"> = (r, o) => this.unary("deleteOffsets", r, o);

  openConsume(listener: ConsumeListener): ConsumeStream {
    return duplexStream(this.client.consume(), listener, this.address, (request: ConsumeRequestInit) =>
      create(ConsumeRequestSchema, request),
    );
  }

  close(): void {
    if (this.ownsChannel) this.client.close();
  }

  private unary<K extends UnaryGroupMethod>(
    method: K,
    request: MessageInitShape<GroupMethods[K]["input"]>,
    options: { readonly timeoutMs?: number | undefined } = {},
  ): Promise<MessageShape<GroupMethods[K]["output"]>> {
    const schema = GroupService.method[method].input as DescMessage;
    const callOptions: grpc.CallOptions = {};
    if (options.timeoutMs !== undefined) callOptions.deadline = Date.now() + options.timeoutMs;
    const fn = this.client[method] as unknown as (
      req: unknown,
      md: grpc.Metadata,
      o: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, r?: MessageShape<GroupMethods[K]["output"]>) => void,
    ) => grpc.ClientUnaryCall;
    return new Promise((resolve, reject) => {
      fn.call(this.client, create(schema, request as never), new grpc.Metadata(), callOptions, (e, r) => {
        if (e) reject(fromGrpcError(e, this.address));
        else resolve(r!);
      });
    });
  }
}
