/**
 * CreatePartitions (key 37), v0-3 (v2+ flexible): the admin service's CreatePartitions
 * (src/service/admin.ts) — on the active controller, each topic grown (or, with validateOnly,
 * checked) on its own. A manual assignment of the new partitions' replicas is refused for that
 * topic (Rill places replicas itself). Each topic needs ALTER (src/service/authorize.ts); a
 * denied topic is answered TOPIC_AUTHORIZATION_FAILED and the others are grown.
 */
import { type RillError, rillError } from "../../base/errors.ts";
import { api } from "../api.ts";
import { answerOrError, authorizeEach, controllerPort, errorFields, kafkaAdmin, onAllowed } from "../admin.ts";
import { arrayOf, bool, int16, int32, message, string, structs } from "../schema.ts";

export const CreatePartitionsRequest = message("CreatePartitionsRequest", "0-3", "2+", {
  topics: structs({
    name: string(),
    count: int32(),
    assignments: structs({ brokerIds: arrayOf(int32()) }).nullable("0+"),
  }),
  timeoutMs: int32(),
  validateOnly: bool(),
});

export const CreatePartitionsResponse = message("CreatePartitionsResponse", "0-3", "2+", {
  throttleTimeMs: int32(),
  results: structs({ name: string(), errorCode: int16(), errorMessage: string().nullable("0+").default(null) }),
});

type Grown = { name: string; error?: RillError };

export const createPartitions = api(37, "0-3", CreatePartitionsRequest, CreatePartitionsResponse, async (req, ctx) => {
  const { admin, access } = kafkaAdmin(ctx.deps);
  const who = ctx.session.requester;
  const topics = req.topics.map((t) => ({ name: t.name, count: t.count }));
  const refusals = authorizeEach(req.topics, (t) => {
    if (t.assignments !== null && t.assignments.length > 0)
      throw rillError("INVALID_REQUEST", `topic "${t.name}": manual replica assignments are not supported; Rill places replicas itself`);
    access.createPartitions(who, { topics: [{ name: t.name, count: t.count }], validateOnly: req.validateOnly, timeoutMs: 0 });
  });
  const results = await onAllowed(
    topics,
    refusals,
    (allowed) =>
      answerOrError(
        async () =>
          (
            await admin.createPartitions(
              { topics: allowed, validateOnly: req.validateOnly, timeoutMs: Math.max(0, req.timeoutMs) },
              controllerPort(ctx, req.timeoutMs),
            )
          ).topics as Grown[],
        (error) => allowed.map((t): Grown => ({ name: t.name, error })),
      ),
    (t, error): Grown => ({ name: t.name, error }),
  );
  return { throttleTimeMs: 0, results: results.map((r) => ({ name: r.name, ...errorFields(r.error) })) };
});
