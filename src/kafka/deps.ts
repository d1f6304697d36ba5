/**
 * What the Kafka listener's handlers are built from: the same service dependencies the gRPC
 * services get (`ServiceDeps`), the clients that forward to other nodes, and what only Kafka
 * asks for (this node's advertised Kafka address, its log).
 */
import type { BrokerConfig } from "../config/schema.ts";
import type { InternalClients } from "../rpc/internal-clients.ts";
import type { ServiceDeps } from "../rpc/server.ts";
import type { Authenticator } from "../security/authenticator.ts";
import type { RequestAccess } from "../service/authorize.ts";
import type { QuotaThrottle } from "../service/quota-throttle.ts";

/** The few log calls the listener makes (pino's signature). */
export interface KafkaLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A host and port as Kafka's Metadata answers them. */
export interface KafkaAddress {
  readonly host: string;
  readonly port: number;
}

/** Everything a Kafka handler may use. */
export interface KafkaDeps {
  /** The services, exactly as the gRPC server gets them. */
  readonly services: ServiceDeps;
  /** Clients of the other nodes (forwarding to leaders and the controller); none on a single node built without them. */
  readonly clients: InternalClients | undefined;
  /** Who may do what (authorizer.enable); the same object the gRPC services use. */
  readonly access: RequestAccess;
  /** Client quotas, shared with gRPC. */
  readonly quotas: QuotaThrottle;
  readonly config: Readonly<BrokerConfig>;
  readonly nodeId: number;
  /** This node's Kafka address as clients should reach it (`kafka.advertised.address`, else the bound one). */
  readonly advertised: () => KafkaAddress;
  readonly log: KafkaLog;
  /** Who callers are (SASL PLAIN and SCRAM, mTLS): the gRPC listener's authenticator; none when auth.methods is empty. */
  readonly authenticator?: Authenticator | undefined;
}

/** Splits "host:port" (IPv6 in brackets) into a Kafka address. */
export function parseKafkaAddress(hostPort: string): KafkaAddress {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(hostPort);
  if (m === null) throw new RangeError(`"${hostPort}" is not HOST:PORT`);
  return { host: m[1] as string, port: Number(m[2]) };
}
