/**
 * The internal listener (`internal.listen`): where cluster members call each other. It serves
 * ControllerService and ReplicationService (Raft, registration, heartbeats, AlterPartition,
 * FetchMetadata, replica fetches) and the Admin, Produce, Fetch and Group calls that a member
 * forwards for a client — and nothing to anyone else: every call must come from an
 * authenticated member (member-auth.ts, `membersOnly`), refused UNAUTHENTICATED before its
 * request is decoded otherwise. A member's forwarded call keeps the original caller's principal
 * and client host, so it is authorized for that caller.
 */
import * as grpc from "@grpc/grpc-js";
import { rillError } from "../base/errors.ts";
import { requesterInterceptor } from "./call-context.ts";
import type { InternalClients } from "./internal-clients.ts";
import { type MemberPolicy, memberDefinition, memberInterceptor, trustMembers } from "./member-auth.ts";
import { registerServices, type ServiceDeps } from "./server.ts";
import { ConnectionLimit, createServer, defaultTransportConfig, shutdownGracefully } from "./server-options.ts";

/** The internal listener of one broker. */
export class InternalRpcServer {
  private readonly server: grpc.Server;
  private port = -1;

  /**
   * `listen`: HOST:PORT (port 0 picks a free one); `policy`: how members are told apart
   * (`membersOnly` is forced on); `credentials`: the listener's TLS (internal mutual TLS), or
   * plaintext when members sign their calls; `maxConnections`: peer connections open at once.
   */
  constructor(
    private readonly listen: string,
    requestBytesMax: number,
    policy: MemberPolicy,
    private readonly credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
    maxConnections = Number.MAX_SAFE_INTEGER,
  ) {
    this.connections = new ConnectionLimit(maxConnections);
    this.server = createServer(
      { ...defaultTransportConfig, receiveMessageBytesMax: requestBytesMax, sendMessageBytesMax: requestBytesMax },
      [memberInterceptor({ ...policy, membersOnly: true }), requesterInterceptor(trustMembers())],
      this.connections,
    );
  }

  /** Its own `max.connections` count (peer connections), like the client listener's. */
  readonly connections: ConnectionLimit;

  /** HOST:PORT as configured until bound, then with the port actually bound. */
  get address(): string {
    return this.port < 0 ? this.listen : this.listen.replace(/:\d+$/, `:${this.port}`);
  }

  /** Registers every service (requests raw until the caller is known to be a member). */
  register(d: ServiceDeps, clients: InternalClients): void {
    registerServices(this.server, d, clients, { internal: true, wrap: memberDefinition });
  }

  /** Listens; INVALID_CONFIG naming `internal.listen` when the address cannot be bound. Returns the port. */
  bind(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(this.listen, this.credentials, (err, port) => {
        if (err) return reject(rillError("INVALID_CONFIG", `internal.listen: cannot listen on ${this.listen}: ${err.message}`));
        this.port = port;
        resolve(port);
      });
    });
  }

  /** Stops taking calls, lets those in flight finish, and cuts them after `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    await shutdownGracefully(this.server, graceMs);
  }
}
