/**
 * What the console's JSON API is built from, and what each endpoint is handed.
 *
 * `ConsoleDeps` is what the broker passes: the same `ServiceDeps` its gRPC services are built
 * from (so the API calls the very handlers gRPC calls, with the same ACLs), its shared internal
 * clients, and optionally the per-topic traffic counters of the metrics module.
 */
import type { Timers } from "../../base/timers.ts";
import type { ReplicaManager } from "../../replication/replica-manager.ts";
import type { InternalClients } from "../../rpc/internal-clients.ts";
import type { ListenerPorts } from "../../rpc/listener-ports.ts";
import type { ServiceDeps } from "../../rpc/server.ts";
import type { RequestAccess } from "../../service/authorize.ts";
import type { FetchMemory } from "../../service/fetch.ts";
import type { GroupsService } from "../../service/groups.ts";
import type { Requester } from "../../security/requester.ts";
import type { TrafficHistory, TrafficSource } from "./traffic.ts";

/**
 * Told of every API request once answered: `api` is the method and the endpoint's name
 * (`GET topics/{name}`; `unknown` for a path the API does not serve), `code` "OK" or the catalog
 * name of the error answered.
 */
export type RequestObserver = (api: string, code: string, seconds: number) => void;

/** What the broker passes to `consoleRoutes`. */
export interface ConsoleDeps {
  /** The broker's service dependencies: the ones `registerServices` builds the gRPC services from. */
  readonly services: ServiceDeps;
  /** The broker's shared clients of other nodes (forwarding to the controller and to leaders); default: the API's own. */
  readonly clients?: InternalClients;
  /**
   * Cumulative per-topic traffic (records and bytes in and out), read every sample; default:
   * records and bytes in from the log end offsets and sizes of the partitions led here (no "out").
   */
  readonly traffic?: TrafficSource;
  /** How often the traffic and lag history is sampled; default 5000 ms. */
  readonly historyIntervalMs?: number;
  /** Timers of the sampling; default the services' timers. */
  readonly timers?: Timers;
  /** Told of every API request once answered (the metrics' `rill_requests_total{protocol="http"}`). */
  readonly observe?: RequestObserver;
}

/** What every endpoint is handed. */
export interface ApiContext {
  readonly rm: ReplicaManager;
  readonly ports: ListenerPorts;
  readonly groups: GroupsService;
  readonly access: RequestAccess;
  readonly history: TrafficHistory;
  readonly fetchMemory: FetchMemory | undefined;
}

/** One API call: its caller, path parameters and query. */
export interface ApiCall {
  /** The caller; on an `open` endpoint without valid credentials, User:ANONYMOUS with `authenticated` false. */
  readonly who: Requester;
  /** False only on an `open` endpoint called without valid credentials while authentication is on. */
  readonly authenticated: boolean;
  /** Why the credentials were refused (or "no credentials"), when `authenticated` is false. */
  readonly authError: string | null;
  /** The path's parameters, decoded, in pattern order. */
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  /** True when the API runs with authentication on (the session answer says so). */
  readonly authRequired: boolean;
}
