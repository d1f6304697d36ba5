/**
 * DeleteTopics (key 20), v0-6 (v4+ flexible): the admin service's DeleteTopics
 * (src/service/admin.ts) — on the active controller, each topic deleted or refused on its own.
 *
 * Up to v5 topics are named; v6 names each by name or by topic id (a name, when given, wins; an
 * id no topic has is UNKNOWN_TOPIC_ID). Each topic needs the DeleteTopics permission of
 * src/service/authorize.ts; a denied topic is answered TOPIC_AUTHORIZATION_FAILED and the others
 * are deleted.
 */
import { type RillError, rillError } from "../../base/errors.ts";
import type { DeletedTopic } from "../../service/admin-types.ts";
import { api } from "../api.ts";
import { answerOrError, authorizeEach, controllerPort, errorFields, kafkaAdmin, onAllowed, topicIdBytes } from "../admin.ts";
import { arrayOf, int16, int32, message, string, structs, uuid } from "../schema.ts";

export const DeleteTopicsRequest = message("DeleteTopicsRequest", "0-6", "4+", {
  topics: structs({ name: string().nullable("6+").default(null), topicId: uuid() }).since(6),
  topicNames: arrayOf(string()).versions("0-5"),
  timeoutMs: int32(),
});

export const DeleteTopicsResponse = message("DeleteTopicsResponse", "0-6", "4+", {
  throttleTimeMs: int32().since(1),
  responses: structs({
    name: string().nullable("6+"),
    topicId: uuid().since(6),
    errorCode: int16(),
    errorMessage: string().since(5).nullable("5+").default(null),
  }),
});

/** The topic names a request names: by name, or (v6) by id in this node's image. */
function namesOf(
  req: { topics: { name: string | null; topicId: Buffer }[]; topicNames: string[] },
  version: number,
  topicById: (id: string) => string | undefined,
): (string | RillError)[] {
  if (version < 6) return req.topicNames;
  return req.topics.map((t) => {
    if (t.name !== null) return t.name;
    const id = t.topicId.toString("hex");
    return topicById(id) ?? rillError("UNKNOWN_TOPIC_ID", `topics: no topic has id ${id}`);
  });
}

export const deleteTopics = api(20, "0-6", DeleteTopicsRequest, DeleteTopicsResponse, async (req, ctx) => {
  const { admin, access } = kafkaAdmin(ctx.deps);
  const who = ctx.session.requester;
  const image = ctx.deps.services.replicas.image;
  const topicById = (id: string) => [...image.topics.values()].find((t) => t.topicId === id)?.name;
  const names = namesOf(req, ctx.apiVersion, topicById);
  const refusals = authorizeEach(names, (n) => {
    if (typeof n !== "string") throw n;
    access.deleteTopics(who, { topics: [n], timeoutMs: req.timeoutMs });
  });
  const ids = new Map(names.map((n) => [n, typeof n === "string" ? image.topics.get(n)?.topicId : undefined]));
  const results = await onAllowed(
    names as string[],
    refusals,
    (topics) =>
      answerOrError(
        async () =>
          (await admin.deleteTopics({ topics, timeoutMs: Math.max(0, req.timeoutMs) }, controllerPort(ctx, req.timeoutMs))).topics,
        (error) => topics.map((name): DeletedTopic => ({ name, error })),
      ),
    (name, error): DeletedTopic => ({ name: typeof name === "string" ? name : "", error }),
  );
  return {
    throttleTimeMs: 0,
    responses: results.map((r, i) => {
      const asked = req.topics[i];
      const name = typeof names[i] === "string" ? (names[i] as string) : null;
      const id = ctx.apiVersion >= 6 && asked && asked.name === null ? asked.topicId : topicIdBytes(ids.get(names[i] as string));
      return { name: ctx.apiVersion >= 6 ? name : (name ?? ""), topicId: id, ...errorFields(r.error) };
    }),
  };
});
