/**
 * Topics over the JSON API: list, create, delete, describe (partitions with leader, replicas,
 * ISR, offsets and local size), and their configs (describe, alter). Each endpoint runs the ACL
 * check gRPC runs for the same request, then the same `AdminHandlers` call; a per-topic error of
 * the service is answered as the call's error (404 for an unknown topic, 409 for one that
 * exists, 400 for a bad name or config).
 */
import type { IncomingMessage } from "node:http";
import { z } from "zod";
import { rillError } from "../../base/errors.ts";
import type { AlterConfigOp } from "../../service/admin-types.ts";
import { created } from "./api-router.ts";
import type { ApiCall, ApiContext } from "./deps.ts";
import { badRequest, readJson } from "./http-io.ts";

/** POST /topics. */
const NewTopic = z
  .object({
    name: z.string().min(1, "a topic name is required"),
    partitions: z.number().int().min(0).optional(),
    replicationFactor: z.number().int().min(0).optional(),
    configs: z.record(z.string(), z.string()).optional(),
    validateOnly: z.boolean().optional(),
  })
  .strict();

/** PATCH /topics/{name}/configs. */
const ConfigChanges = z
  .object({
    set: z.record(z.string(), z.string()).optional(),
    delete: z.array(z.string()).optional(),
    validateOnly: z.boolean().optional(),
  })
  .strict();

/** UNKNOWN_TOPIC_OR_PARTITION (404) unless `name` exists. */
export function requireTopic(ctx: ApiContext, name: string): void {
  if (!ctx.rm.image.topics.has(name)) throw rillError("UNKNOWN_TOPIC_OR_PARTITION", `topic "${name}" does not exist`);
}

/** GET /topics: the topics the caller may describe (`?internal=true` adds Rill's own). */
export function listTopics(ctx: ApiContext, call: ApiCall) {
  const includeInternal = call.query.get("internal") === "true";
  const listed = ctx.access.listTopics(call.who, ctx.ports.admin.listTopics({ includeInternal }));
  return {
    topics: listed.topics.map((t) => {
      const parts = ctx.rm.image.topics.get(t.name)?.partitions ?? [];
      return {
        ...t,
        underReplicated: parts.filter((p) => p.isr.length < p.replicas.length).length,
        offline: parts.filter((p) => p.leader < 0).length,
      };
    }),
  };
}

/** POST /topics: creates one topic. */
export async function createTopic(ctx: ApiContext, call: ApiCall, req: IncomingMessage) {
  const body = await readJson(req, NewTopic);
  const input = {
    topics: [
      {
        name: body.name,
        partitions: body.partitions ?? 0,
        replicationFactor: body.replicationFactor ?? 0,
        configs: body.configs ?? {},
      },
    ],
    validateOnly: body.validateOnly ?? false,
    timeoutMs: 0,
  };
  ctx.access.createTopics(call.who, input);
  const res = await ctx.ports.admin.createTopics(input, ctx.ports.controllerPort(call.who));
  const t = res.topics[0]!;
  if (t.error) throw t.error;
  return created({ name: t.name, partitions: t.partitions, replicationFactor: t.replicationFactor, validateOnly: input.validateOnly });
}

/** DELETE /topics/{name}. */
export async function deleteTopic(ctx: ApiContext, call: ApiCall) {
  const name = call.params[0]!;
  const input = { topics: [name], timeoutMs: 0 };
  ctx.access.deleteTopics(call.who, input);
  const res = await ctx.ports.admin.deleteTopics(input, ctx.ports.controllerPort(call.who));
  const t = res.topics[0]!;
  if (t.error) throw t.error;
  return { deleted: name };
}

/** GET /topics/{name}: the topic's partitions (leader, replicas, ISR, offsets, size here). */
export async function describeTopic(ctx: ApiContext, call: ApiCall) {
  const name = call.params[0]!;
  const res = await ctx.ports.admin.describeTopics({ topics: [name], excludeConfigs: true }, { forwarded: false });
  const t = ctx.access.describeTopics(call.who, [name], res).topics[0]!;
  if (t.error) throw t.error;
  return {
    name: t.name,
    internal: t.internal,
    partitions: t.partitions.map((p) => {
      const replica = ctx.rm.replica(name, p.partition);
      const local = replica && replica.role !== "none" ? replica.log : null;
      return {
        partition: p.partition,
        leader: p.leader,
        replicas: p.replicas,
        isr: p.isr,
        leaderEpoch: p.leaderEpoch,
        logStartOffset: p.logStartOffset,
        highWatermark: p.highWatermark,
        /** This node's own replica: its log end offset and size on disk (null: no replica here). */
        logEndOffset: local ? local.logEndOffset : null,
        sizeBytes: local ? local.sizeBytes : null,
        underReplicated: p.isr.length < p.replicas.length,
      };
    }),
  };
}

/** GET /topics/{name}/configs: every key, its value, source and doc. */
export function describeTopicConfigs(ctx: ApiContext, call: ApiCall) {
  const name = call.params[0]!;
  const input = { resources: [{ type: "topic" as const, name }], names: [], includeDocumentation: true };
  ctx.access.describeConfigs(call.who, input);
  requireTopic(ctx, name);
  const r = ctx.ports.admin.describeConfigs(input).results[0]!;
  if (r.error) throw r.error;
  return {
    topic: name,
    configs: r.entries.map((e) => ({ name: e.name, value: e.value, source: e.source, sensitive: e.sensitive, doc: e.documentation })),
  };
}

/** PATCH /topics/{name}/configs: `set` keys to values and `delete` overrides, all or nothing. */
export async function alterTopicConfigs(ctx: ApiContext, call: ApiCall, req: IncomingMessage) {
  const name = call.params[0]!;
  const body = await readJson(req, ConfigChanges);
  const operations: AlterConfigOp[] = [
    ...Object.entries(body.set ?? {}).map(([k, v]) => ({ name: k, operation: "set" as const, value: v })),
    ...(body.delete ?? []).map((k) => ({ name: k, operation: "delete" as const, value: "" })),
  ];
  if (operations.length === 0) throw badRequest("request body: nothing to change (give `set` or `delete`)");
  const input = { resources: [{ resource: { type: "topic" as const, name }, operations }], validateOnly: body.validateOnly ?? false };
  ctx.access.alterConfigs(call.who, input);
  requireTopic(ctx, name);
  const res = await ctx.ports.admin.alterConfigs(input, ctx.ports.controllerPort(call.who));
  const r = res.results[0]!;
  if (r.error) throw r.error;
  return describeTopicConfigs(ctx, call);
}
