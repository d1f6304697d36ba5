/**
 * FindCoordinator (key 10): which node coordinates a group — key type 0, the leader of the
 * group's `__consumer_offsets` partition (GroupsService.coordinatorOf; DESCRIBE on the group) —
 * or a transactional id — key type 1, the leader of its `__transaction_state` partition
 * (TransactionsService.coordinatorOf; DESCRIBE on the TRANSACTIONAL_ID, else
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED). v4 batches keys. Any other key type (2, share groups)
 * is answered INVALID_REQUEST per key, as Kafka answers a key type it does not serve.
 */
import { rillError } from "../../base/errors.ts";
import { api } from "../api.ts";
import { arrayOf, int8, int16, int32, message, string, structs } from "../schema.ts";
import { errorCode, groupsOf, kafkaAddressOf, outcome } from "./group-common.ts";
import { mayDescribeTxn, transactionsOf } from "./txn-common.ts";
import type { KafkaRequestContext } from "../api.ts";

export const FindCoordinatorRequest = message("FindCoordinatorRequest", "0-4", "3+", {
  key: string().versions("0-3"),
  keyType: int8().since(1),
  coordinatorKeys: arrayOf(string()).since(4),
});

export const FindCoordinatorResponse = message("FindCoordinatorResponse", "0-4", "3+", {
  throttleTimeMs: int32().since(1),
  errorCode: int16().versions("0-3"),
  errorMessage: string().versions("1-3").nullable("1-3").default(null),
  nodeId: int32().versions("0-3"),
  host: string().versions("0-3"),
  port: int32().versions("0-3"),
  coordinators: structs({
    key: string(),
    nodeId: int32(),
    host: string(),
    port: int32(),
    errorCode: int16(),
    errorMessage: string().nullable("4+").default(null),
  }).since(4),
});

/** The coordinator of one key: its node and address, or the error. */
async function find(ctx: KafkaRequestContext, key: string, keyType: number) {
  const r = await outcome(() => {
    let nodeId: number;
    if (keyType === 0) {
      ctx.deps.access.describeGroups(ctx.session.requester, [key]);
      nodeId = groupsOf(ctx).coordinatorOf(key);
    } else if (keyType === 1) {
      if (key === "") throw rillError("INVALID_REQUEST", "key: an empty transactional id");
      if (!mayDescribeTxn(ctx, key))
        throw rillError("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", `key: no DESCRIBE on transactional id "${key}"`);
      nodeId = transactionsOf(ctx).coordinatorOf(key);
    } else {
      throw rillError("INVALID_REQUEST", `keyType: ${keyType} is not served (0: group, 1: transaction)`);
    }
    const address = kafkaAddressOf(ctx, nodeId);
    if (address === null)
      throw rillError("COORDINATOR_NOT_AVAILABLE", `key: node ${nodeId} coordinates "${key}" but has no Kafka address known here`);
    return { nodeId, ...address };
  });
  if (r.error !== null) return { key, nodeId: -1, host: "", port: -1, errorCode: errorCode(r.error), errorMessage: r.error.message };
  return { key, ...r.value, errorCode: 0, errorMessage: null };
}

export const findCoordinator = api(10, "0-4", FindCoordinatorRequest, FindCoordinatorResponse, async (req, ctx) => {
  if (ctx.apiVersion >= 4) {
    const coordinators = [];
    for (const key of req.coordinatorKeys) coordinators.push(await find(ctx, key, req.keyType));
    return { throttleTimeMs: 0, coordinators };
  }
  const c = await find(ctx, req.key, req.keyType);
  return { throttleTimeMs: 0, errorCode: c.errorCode, errorMessage: c.errorMessage, nodeId: c.nodeId, host: c.host, port: c.port };
});
