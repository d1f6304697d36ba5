/**
 * The `/api/v1/` JSON API of the console, path by path (see each handler's module):
 *
 * | path | methods |
 * |---|---|
 * | `session` | GET: who the caller is, whether authentication is on (answered without credentials too) |
 * | `cluster` | GET: the overview (cluster.ts) |
 * | `topics` | GET: list; POST: create (topics.ts) |
 * | `topics/{name}` | GET: partitions; DELETE: delete |
 * | `topics/{name}/configs` | GET: describe; PATCH: set and delete keys |
 * | `topics/{name}/messages` | GET: the message browser (messages.ts) |
 * | `traffic` | GET: records and bytes in/out per second per topic, last 15 minutes (traffic.ts) |
 * | `groups` | GET: list with total lag (groups.ts) |
 * | `groups/{id}` | GET: members, assignments, lag per partition, lag history |
 */
import { rillError } from "../../base/errors.ts";
import type { Endpoint } from "./api-router.ts";
import { clusterOverview } from "./cluster.ts";
import type { ApiCall, ApiContext } from "./deps.ts";
import { describeGroup, listGroups } from "./groups.ts";
import { browseMessages } from "./messages.ts";
import { alterTopicConfigs, createTopic, deleteTopic, describeTopic, describeTopicConfigs, listTopics } from "./topics.ts";

const NAME = "([^/]+)";

/** GET /traffic (`?topic=` for one topic). */
function traffic(ctx: ApiContext, call: ApiCall) {
  const one = call.query.get("topic");
  const visible = (name: string): boolean =>
    ctx.access.listTopics(call.who, { topics: [{ name, partitions: 0, replicationFactor: 0, internal: false }] }).topics.length > 0;
  if (one !== null) {
    if (!ctx.rm.image.topics.has(one)) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `topic: topic "${one}" does not exist`);
    if (!visible(one)) throw rillError("TOPIC_AUTHORIZATION_FAILED", `topic: ${call.who.principal} may not DESCRIBE topic "${one}"`);
  }
  const h = ctx.history;
  return {
    intervalMs: h.intervalMs,
    windowMs: h.windowMs,
    topics: one !== null ? [h.topic(one)] : h.topics((n) => !n.startsWith("__") && visible(n)),
  };
}

/** Every endpoint of the API over `ctx`. */
export function endpoints(ctx: ApiContext): Endpoint[] {
  const index = {
    paths: [
      "session",
      "cluster",
      "topics",
      "topics/{name}",
      "topics/{name}/configs",
      "topics/{name}/messages",
      "traffic",
      "groups",
      "groups/{id}",
    ],
  };
  return [
    { name: "", path: /^$/, methods: { GET: () => index } },
    {
      name: "session",
      path: /^session$/,
      open: true,
      methods: {
        GET: (c) =>
          c.authenticated
            ? { authenticated: true, principal: c.who.principal, authRequired: c.authRequired }
            : { authenticated: false, principal: null, authRequired: true, reason: c.authError },
      },
    },
    { name: "cluster", path: /^cluster$/, methods: { GET: (c) => clusterOverview(ctx, c) } },
    { name: "topics", path: /^topics$/, methods: { GET: (c) => listTopics(ctx, c), POST: (c, req) => createTopic(ctx, c, req) } },
    {
      name: "topics/{name}",
      path: new RegExp(`^topics/${NAME}$`),
      methods: { GET: (c) => describeTopic(ctx, c), DELETE: (c) => deleteTopic(ctx, c) },
    },
    {
      name: "topics/{name}/configs",
      path: new RegExp(`^topics/${NAME}/configs$`),
      methods: { GET: (c) => describeTopicConfigs(ctx, c), PATCH: (c, req) => alterTopicConfigs(ctx, c, req) },
    },
    { name: "topics/{name}/messages", path: new RegExp(`^topics/${NAME}/messages$`), methods: { GET: (c) => browseMessages(ctx, c) } },
    { name: "traffic", path: /^traffic$/, methods: { GET: (c) => traffic(ctx, c) } },
    { name: "groups", path: /^groups$/, methods: { GET: (c) => listGroups(ctx, c) } },
    { name: "groups/{id}", path: new RegExp(`^groups/${NAME}$`), methods: { GET: (c) => describeGroup(ctx, c) } },
  ];
}
