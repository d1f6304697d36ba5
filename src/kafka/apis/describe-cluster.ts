/**
 * DescribeCluster (key 60), v0-1 (flexible): the admin service's DescribeCluster
 * (src/service/admin.ts) with each broker's Kafka address — this node's advertised one, another
 * node's as it registered it (a node whose Kafka address this image does not know is left out:
 * a client must not be sent to its gRPC port). Authorization as gRPC's (src/service/authorize.ts):
 * any authenticated caller; a refusal is the answer's error. When asked, the operations the caller
 * may perform on the cluster are answered as Kafka's bit field.
 */
import { rillError } from "../../base/errors.ts";
import { ACL_OPERATIONS, type AclOperation, CLUSTER_RESOURCE } from "../../metadata/security-types.ts";
import type { Requester } from "../../security/requester.ts";
import type { RequestAccess } from "../../service/authorize.ts";
import { api } from "../api.ts";
import { answerOrError, errorFields, kafkaAdmin } from "../admin.ts";
import { type KafkaAddress, type KafkaDeps, parseKafkaAddress } from "../deps.ts";
import { bool, int8, int16, int32, message, string, structs } from "../schema.ts";

export const DescribeClusterRequest = message("DescribeClusterRequest", "0-1", "0+", {
  includeClusterAuthorizedOperations: bool(),
  endpointType: int8().since(1).default(1),
});

/** Kafka's "authorized operations were not asked for". */
export const OPERATIONS_NOT_ASKED = -2147483648;

export const DescribeClusterResponse = message("DescribeClusterResponse", "0-1", "0+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  errorMessage: string().nullable("0+").default(null),
  endpointType: int8().since(1).default(1),
  clusterId: string(),
  controllerId: int32().default(-1),
  brokers: structs({ brokerId: int32(), host: string(), port: int32(), rack: string().nullable("0+").default(null) }),
  clusterAuthorizedOperations: int32().default(OPERATIONS_NOT_ASKED),
});

/** Kafka's AclOperation numbers of the operations Rill knows. */
export const ACL_OPERATION_CODES: Readonly<Record<AclOperation, number>> = {
  ALL: 2,
  READ: 3,
  WRITE: 4,
  CREATE: 5,
  DELETE: 6,
  ALTER: 7,
  DESCRIBE: 8,
  DESCRIBE_CONFIGS: 10,
  ALTER_CONFIGS: 11,
  IDEMPOTENT_WRITE: 12,
};

/** The operations on the cluster `who` may perform, as Kafka's bit field (bit n: operation n). */
function clusterOperations(access: RequestAccess, who: Requester): number {
  let bits = 0;
  for (const op of ACL_OPERATIONS) {
    if (op === "ALL") continue;
    if (access.access.allowed(who, op, "CLUSTER", CLUSTER_RESOURCE)) bits |= 1 << ACL_OPERATION_CODES[op];
  }
  return bits;
}

/** The Kafka address of broker `nodeId`, or null when this node does not know it. */
export function kafkaAddressOf(deps: KafkaDeps, nodeId: number): KafkaAddress | null {
  if (nodeId === deps.nodeId) return deps.advertised();
  const b = deps.services.replicas.image.brokers.get(nodeId) as { kafkaAddress?: string } | undefined;
  return b?.kafkaAddress ? parseKafkaAddress(b.kafkaAddress) : null;
}

export const describeCluster = api(60, "0-1", DescribeClusterRequest, DescribeClusterResponse, (req, ctx) => {
  const { admin, access } = kafkaAdmin(ctx.deps);
  const who = ctx.session.requester;
  return answerOrError(
    () => {
      if (req.endpointType !== 1)
        throw rillError(
          "INVALID_REQUEST",
          `endpointType ${req.endpointType}: only brokers (1) are described; controllers are not reachable over Kafka`,
        );
      const res = access.describeCluster(who, admin.describeCluster());
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        endpointType: 1,
        clusterId: res.clusterId,
        controllerId: res.controllerId,
        brokers: res.brokers.flatMap((b) => {
          const a = b.fenced ? null : kafkaAddressOf(ctx.deps, b.nodeId);
          return a === null ? [] : [{ brokerId: b.nodeId, host: a.host, port: a.port, rack: b.rack === "" ? null : b.rack }];
        }),
        clusterAuthorizedOperations: req.includeClusterAuthorizedOperations ? clusterOperations(access, who) : OPERATIONS_NOT_ASKED,
      };
    },
    (e) => ({
      throttleTimeMs: 0,
      ...errorFields(e),
      endpointType: req.endpointType,
      clusterId: "",
      controllerId: -1,
      brokers: [],
      clusterAuthorizedOperations: OPERATIONS_NOT_ASKED,
    }),
  );
});
