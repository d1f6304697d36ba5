/**
 * DescribeCluster (key 60), v0-1 (flexible): the admin service's DescribeCluster
 * (src/service/admin.ts) with each broker's Kafka address — this node's advertised one, another
 * node's as it registered it (a node whose Kafka address this image does not know is left out:
 * a client must not be sent to its gRPC port). Authorization as gRPC's (src/service/authorize.ts):
 * any authenticated caller; a refusal is the answer's error. When asked, the operations the caller
 * may perform on the cluster are answered as Kafka's bit field.
 */
import { rillError } from "../../base/errors.ts";
import { CLUSTER_RESOURCE } from "../../metadata/security-types.ts";
import { api } from "../api.ts";
import { CLUSTER_OPERATIONS, OPERATIONS_NOT_ASKED, authorizedOperations } from "../authorized-operations.ts";
import { answerOrError, errorFields, kafkaAdmin } from "../admin.ts";
import { type KafkaAddress, type KafkaDeps, parseKafkaAddress } from "../deps.ts";
import { bool, int8, int16, int32, message, string, structs } from "../schema.ts";

export const DescribeClusterRequest = message("DescribeClusterRequest", "0-1", "0+", {
  includeClusterAuthorizedOperations: bool(),
  endpointType: int8().since(1).default(1),
});

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
        clusterAuthorizedOperations: req.includeClusterAuthorizedOperations
          ? authorizedOperations(access.access, who, "CLUSTER", CLUSTER_RESOURCE, CLUSTER_OPERATIONS)
          : OPERATIONS_NOT_ASKED,
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
