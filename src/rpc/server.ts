/**
 * The broker's gRPC server: the six services Rill serves (admin, produce, fetch, groups,
 * replication, controller) registered with their codecs, the standard health service and
 * server reflection listing them, bound to one address, and a graceful stop. The broker shell
 * hands it the domain objects the services need; `src/gen` stays behind this edge.
 */
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { rillError } from "../base/errors.ts";
import type { Timers } from "../base/timers.ts";
import type { GroupRuntime } from "../coordinator/group-runtime.ts";
import { AdminService } from "../gen/rill/v1/admin_service_pb.ts";
import { ControllerService } from "../gen/rill/v1/controller_service_pb.ts";
import { FetchService } from "../gen/rill/v1/fetch_service_pb.ts";
import { GroupService } from "../gen/rill/v1/group_service_pb.ts";
import { ProduceService } from "../gen/rill/v1/produce_service_pb.ts";
import { ReplicationService } from "../gen/rill/v1/replication_service_pb.ts";
import type { ProduceChecks } from "../protocol/record-batch.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { FetchMemory } from "../service/fetch.ts";
import { QuotaThrottle } from "../service/quota-throttle.ts";
import { type AdminDeps, adminService } from "./admin-service.ts";
import { type ControllerServiceDeps, controllerService } from "./controller-service.ts";
import { fetchService } from "./fetch-service.ts";
import type { ControllerRoute } from "./forward.ts";
import { type Authenticate, requesterInterceptor } from "./call-context.ts";
import { INTERNAL_SERVICES, type MemberPolicy, memberDefinition, memberInterceptor, trustMembers } from "./member-auth.ts";
import type { MemberSigner } from "../security/member-auth.ts";
import { RequestAccess } from "../service/authorize.ts";
import { Access } from "../service/access.ts";
import { addService } from "./grpc-service.ts";
import { InternalClients } from "./internal-clients.ts";
import type { TxnService } from "../service/txn-service.ts";
import type { TxnInternalDeps } from "./txn-rpc.ts";
import { groupService } from "./group-service.ts";
import { produceService } from "./produce-service.ts";
import { addReflection } from "./reflection.ts";
import { metricsInterceptor } from "./metrics-interceptor.ts";
import { type RequestMetrics, requestMetricsOf } from "../service/request-metrics.ts";
import { replicationService } from "./replication-service.ts";
import { ConnectionLimit, createServer, defaultTransportConfig, shutdownGracefully } from "./server-options.ts";
import { fetchServiceCodecs, groupServiceCodecs, produceServiceCodecs } from "./wire-codec.ts";
import { replicationServiceCodecs } from "./replica-fetch-codec.ts";

/** The services a broker serves, by full name (health and reflection list them). */
export const SERVED_SERVICES: readonly string[] = [
  AdminService.typeName,
  ProduceService.typeName,
  FetchService.typeName,
  GroupService.typeName,
  ControllerService.typeName,
  ReplicationService.typeName,
];

/** What the services are built from. */
export interface ServiceDeps {
  readonly admin: AdminDeps;
  /** The partitions this broker holds (produce, fetch, groups and replication read them). */
  readonly replicas: ReplicaManager;
  /** The budget of Fetch responses, Subscribe and Consume messages and replica-fetch responses (fetch.memory.max.bytes); none: unbounded. */
  readonly fetchMemory?: FetchMemory;
  /** Where produce requests for partitions led elsewhere, and metadata changes, go. */
  readonly route: ControllerRoute;
  readonly groups: GroupRuntime;
  /** Timers of the group service's long polls. */
  readonly timers: Timers;
  readonly controller: ControllerServiceDeps;
  /** How deeply producers' batches are validated (`produce.validation`); default full. */
  readonly produceChecks?: ProduceChecks;
  /** How long a leader waits for its metadata to learn a producer id (`producer.id.metadata.wait.ms`); default 5 s. */
  readonly producerIdMetadataWaitMs?: number;
  /** Client quotas (issue 13); default: the replicas' image and clock with `timers`. */
  readonly quotas?: QuotaThrottle;
  /** Who may do what (authorizer.enable); default: everyone everything. */
  readonly access?: RequestAccess;
  /** Transactions (issue 17): the service, and what the internal calls run on; none: not served. */
  readonly transactions?: { readonly service: TxnService; readonly internal: TxnInternalDeps } | undefined;
}

/** Which services `registerServices` adds, and how (cluster membership, member-auth.ts). */
export interface RegisterOptions {
  /** Whether ControllerService and ReplicationService are served (not on `listen` once `internal.listen` is set). Default true. */
  readonly internal?: boolean;
  /** Applied to each service definition (`memberDefinition`: requests stay raw until membership is settled). */
  readonly wrap?: (definition: grpc.ServiceDefinition) => grpc.ServiceDefinition;
}

/** Adds every Rill service to `server` (before it is bound); forwarding goes through `clients`. */
export function registerServices(server: grpc.Server, d: ServiceDeps, clients?: InternalClients, o: RegisterOptions = {}): void {
  const w = o.wrap;
  const access = d.access ?? new RequestAccess(Access.allowAll());
  addService(
    server,
    AdminService,
    adminService({ ...d.admin, ...(clients ? { clients } : {}), access, transactions: d.transactions?.service ?? null }),
    undefined,
    w,
  );
  const quotas = d.quotas ?? new QuotaThrottle(() => d.replicas.image, { nowMs: () => d.replicas.nowMs() }, d.timers);
  addService(
    server,
    ProduceService,
    produceService(
      d.replicas,
      d.route,
      clients,
      d.produceChecks,
      d.producerIdMetadataWaitMs,
      quotas,
      access,
      d.transactions?.service ?? null,
    ),
    produceServiceCodecs,
    w,
  );
  addService(server, FetchService, fetchService(d.replicas, clients, d.fetchMemory, quotas, access), fetchServiceCodecs, w);
  addService(
    server,
    GroupService,
    groupService(d.groups, d.replicas, d.timers, quotas, access, d.fetchMemory, d.transactions?.service ?? null, clients),
    groupServiceCodecs,
    w,
  );
  if (o.internal === false) return;
  addService(
    server,
    ReplicationService,
    replicationService(d.replicas, d.fetchMemory, d.transactions?.internal ?? null),
    replicationServiceCodecs,
    w,
  );
  addService(server, ControllerService, controllerService(d.controller), undefined, w);
}

/**
 * Cluster membership of a broker's listeners (member-auth.ts): how this server tells members
 * from clients, whether the internal services live on a separate internal listener, and how
 * this node signs its own calls to the others.
 */
export interface ServerMembership {
  /** The policy of the client listener (`membersOnly` false). */
  readonly policy: MemberPolicy;
  /** True when `internal.listen` serves ControllerService and ReplicationService (not this server). */
  readonly internalListener: boolean;
  /** Signs this node's internal calls (`cluster.secret`); none: unsigned. */
  readonly signer?: MemberSigner | undefined;
}

/** The membership of a server that nobody configured: a single node, serving no internal call. */
export const SINGLE_NODE: ServerMembership = {
  policy: {
    verifier: null,
    mtls: false,
    membersOnly: false,
    refuseInternal: "a single node serves no internal call (it has no cluster members)",
  },
  internalListener: false,
};

/**
 * The server of one broker: created empty (so that what its services need can ask for its
 * address), given its services once (`register`), then bound (`bind`). `stopServing` turns
 * health to NOT_SERVING; `shutdown` lets calls in flight finish for a grace period.
 */
export class RpcServer {
  private readonly server: grpc.Server;
  private readonly health: HealthImplementation;
  /** What this listener serves: not the internal services once `internal.listen` serves them. */
  private readonly served: readonly string[];
  private port = -1;
  /** One client per (service, peer) for every forwarded call of this server's services. */
  readonly clients: InternalClients;
  /** The listener's credentials (plaintext unless given). */
  private readonly credentials: grpc.ServerCredentials;

  /** `max.connections` of this server: open and refused connections, for metrics. */
  readonly connections: ConnectionLimit;
  /** Where calls are counted (`rill_requests_total`): the registered replicas' RequestMetrics. */
  private requestMetrics: RequestMetrics | null = null;

  /**
   * `listen`: HOST:PORT (port 0 picks a free one); `requestBytesMax`: largest message either way;
   * `maxConnections`: client and peer connections open at once (more are refused);
   * `tls`: the listener's credentials and those of its clients of other nodes (tls.ts; default plaintext).
   */
  constructor(
    private readonly listen: string,
    requestBytesMax: number,
    maxConnections = Number.MAX_SAFE_INTEGER,
    tls: { readonly listener?: grpc.ServerCredentials; readonly internal?: grpc.ChannelCredentials } = {},
    private readonly membership: ServerMembership = SINGLE_NODE,
    /** Authenticates a client's call (auth.methods); default: everyone is anonymous. A member's forwarded call keeps its original caller. */
    authenticate?: Authenticate,
  ) {
    this.credentials = tls.listener ?? grpc.ServerCredentials.createInsecure();
    this.clients = new InternalClients({ credentials: tls.internal, signer: membership.signer });
    this.served = membership.internalListener ? SERVED_SERVICES.filter((s) => !INTERNAL_SERVICES.includes(s)) : SERVED_SERVICES;
    this.health = new HealthImplementation(Object.fromEntries(["", ...this.served].map((s) => [s, "SERVING" as const])));
    this.connections = new ConnectionLimit(maxConnections);
    this.server = createServer(
      {
        ...defaultTransportConfig,
        receiveMessageBytesMax: requestBytesMax,
        sendMessageBytesMax: requestBytesMax,
      },
      [
        memberInterceptor(membership.policy),
        requesterInterceptor(trustMembers(authenticate)),
        metricsInterceptor(() => this.requestMetrics),
      ],
      this.connections,
    );
  }

  /** HOST:PORT as configured until bound, then with the port actually bound. */
  get address(): string {
    return this.port < 0 ? this.listen : this.listen.replace(/:\d+$/, `:${this.port}`);
  }

  /** Registers the services, health and reflection. */
  register(d: ServiceDeps): void {
    this.requestMetrics = requestMetricsOf(d.replicas);
    registerServices(this.server, d, this.clients, { internal: !this.membership.internalListener, wrap: memberDefinition });
    this.health.addToServer(this.server);
    addReflection(this.server, this.served);
  }

  /** Listens (TLS when the server was given credentials); INVALID_CONFIG naming `listen` when the address cannot be bound. Returns the port. */
  bind(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(this.listen, this.credentials, (err, port) => {
        if (err) return reject(rillError("INVALID_CONFIG", `listen: cannot listen on ${this.listen}: ${err.message}`));
        this.port = port;
        resolve(port);
      });
    });
  }

  /** Health answers NOT_SERVING for every service (load balancers stop sending). */
  stopServing(): void {
    for (const s of ["", ...this.served]) this.health.setStatus(s, "NOT_SERVING");
  }

  /** Stops taking calls, lets those in flight finish, and cuts them after `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    await shutdownGracefully(this.server, graceMs);
    this.clients.close();
  }
}
