/**
 * AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46), v0 (flexible):
 * the admin service's partition reassignment (src/service/admin-reassign.ts, issue 21, KIP-455),
 * as kafka-reassign-partitions.sh and the Admin clients send them. Null replicas cancel a
 * partition's move. Each partition succeeds or fails on its own; a refused call (authorization, a
 * malformed request) answers the top-level error and every partition with it. Needs ALTER
 * (Alter...) or DESCRIBE (List...) on the cluster.
 */
import type { RillError } from "../../base/errors.ts";
import type { ReassignOutcome } from "../../service/admin-reassign-types.ts";
import { ReassignmentHandlers } from "../../service/admin-reassign.ts";
import { api } from "../api.ts";
import { answerOrError, controllerPort, errorFields } from "../admin.ts";
import type { KafkaDeps } from "../deps.ts";
import { arrayOf, int16, int32, message, string, structs } from "../schema.ts";

export const AlterPartitionReassignmentsRequest = message("AlterPartitionReassignmentsRequest", "0", "0+", {
  timeoutMs: int32().default(60000),
  topics: structs({ name: string(), partitions: structs({ partitionIndex: int32(), replicas: arrayOf(int32()).nullable("0+") }) }),
});

export const AlterPartitionReassignmentsResponse = message("AlterPartitionReassignmentsResponse", "0", "0+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  errorMessage: string().nullable("0+").default(null),
  responses: structs({
    name: string(),
    partitions: structs({ partitionIndex: int32(), errorCode: int16(), errorMessage: string().nullable("0+").default(null) }),
  }),
});

export const ListPartitionReassignmentsRequest = message("ListPartitionReassignmentsRequest", "0", "0+", {
  timeoutMs: int32().default(60000),
  topics: structs({ name: string(), partitionIndexes: arrayOf(int32()) }).nullable("0+"),
});

export const ListPartitionReassignmentsResponse = message("ListPartitionReassignmentsResponse", "0", "0+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  errorMessage: string().nullable("0+").default(null),
  topics: structs({
    name: string(),
    partitions: structs({
      partitionIndex: int32(),
      replicas: arrayOf(int32()),
      addingReplicas: arrayOf(int32()),
      removingReplicas: arrayOf(int32()),
    }),
  }),
});

const handlers = new WeakMap<KafkaDeps, ReassignmentHandlers>();

function reassignment(deps: KafkaDeps): ReassignmentHandlers {
  let h = handlers.get(deps);
  if (h === undefined) handlers.set(deps, (h = new ReassignmentHandlers({ store: deps.services.admin.store })));
  return h;
}

/** Items grouped by topic, in first-seen order. */
function byTopic<T extends { topic: string }, U>(items: readonly T[], f: (t: T) => U): { name: string; partitions: U[] }[] {
  const topics = new Map<string, U[]>();
  for (const i of items) {
    let list = topics.get(i.topic);
    if (!list) topics.set(i.topic, (list = []));
    list.push(f(i));
  }
  return [...topics].map(([name, partitions]) => ({ name, partitions }));
}

export const alterPartitionReassignments = api(
  45,
  "0",
  AlterPartitionReassignmentsRequest,
  AlterPartitionReassignmentsResponse,
  async (req, ctx) => {
    const partitions = req.topics.flatMap((t) =>
      t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, replicas: p.replicas === null ? null : [...p.replicas] })),
    );
    const answer = (outcomes: readonly ReassignOutcome[], top: RillError | null) => ({
      throttleTimeMs: 0,
      ...errorFields(top),
      responses: byTopic(outcomes, (o) => ({ partitionIndex: o.partition, ...errorFields(o.error) })),
    });
    return answerOrError(
      async () => {
        ctx.deps.access.cluster(ctx.session.requester, "AdminService/AlterPartitionReassignments");
        const r = await reassignment(ctx.deps).alterPartitionReassignments({ partitions }, controllerPort(ctx, req.timeoutMs));
        return answer(r.results, null);
      },
      (e) =>
        answer(
          partitions.map((p) => ({ topic: p.topic, partition: p.partition, error: e })),
          e,
        ),
    );
  },
);

export const listPartitionReassignments = api(
  46,
  "0",
  ListPartitionReassignmentsRequest,
  ListPartitionReassignmentsResponse,
  async (req, ctx) =>
    answerOrError(
      () => {
        ctx.deps.access.cluster(ctx.session.requester, "AdminService/ListPartitionReassignments");
        const r = reassignment(ctx.deps).listPartitionReassignments({
          partitions: (req.topics ?? []).map((t) => ({ topic: t.name, partitions: [...t.partitionIndexes] })),
        });
        return {
          throttleTimeMs: 0,
          ...errorFields(null),
          topics: byTopic(r.reassignments, (x) => ({
            partitionIndex: x.partition,
            replicas: [...x.replicas],
            addingReplicas: [...x.addingReplicas],
            removingReplicas: [...x.removingReplicas],
          })),
        };
      },
      (e) => ({ throttleTimeMs: 0, ...errorFields(e), topics: [] }),
    ),
);
