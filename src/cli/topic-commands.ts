/**
 * `rill topic create|list|describe|alter|delete|delete-records|add-partitions|elect-leaders`.
 * Every command takes `--json`: one JSON value on stdout instead of the sentence or table.
 */

import { Admin, type ConfigEntryDescription, type TopicDescription } from "../client/admin.ts";
import { Errors, RillError } from "../base/errors.ts";
import { type Context, clientOptions } from "./context.ts";
import { table } from "./group-commands.ts";
import { CliError, write } from "./output.ts";

async function withAdmin<T>(ctx: Context, f: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(clientOptions(ctx));
  try {
    return await f(admin);
  } finally {
    await admin.close();
  }
}

/** Options of `topic create`. */
export interface CreateOptions {
  readonly partitions?: number;
  readonly replicationFactor?: number;
  readonly config: Record<string, string>;
  readonly ifNotExists?: boolean;
  readonly json?: boolean;
}

/** Creates a topic and says so. */
export async function createTopic(ctx: Context, name: string, o: CreateOptions): Promise<void> {
  await withAdmin(ctx, async (admin) => {
    try {
      const [t] = await admin.createTopics([{ name, partitions: o.partitions, replicationFactor: o.replicationFactor, configs: o.config }]);
      if (o.json) return await write(ctx.io.stdout, `${JSON.stringify({ created: true, ...t! })}\n`);
      const partitions = `${t!.partitions} partition${t!.partitions === 1 ? "" : "s"}`;
      await write(ctx.io.stdout, `Created topic ${name} (${partitions}, replication factor ${t!.replicationFactor}).\n`);
    } catch (e) {
      if (o.ifNotExists && e instanceof RillError && e.kind === Errors.TOPIC_ALREADY_EXISTS) {
        if (o.json) await write(ctx.io.stdout, `${JSON.stringify({ created: false, name })}\n`);
        return;
      }
      throw e;
    }
  });
}

/** Lists topic names, one per line (or JSON). */
export async function listTopics(ctx: Context, o: { internal?: boolean; json?: boolean }): Promise<void> {
  const topics = await withAdmin(ctx, (admin) => admin.listTopics({ includeInternal: o.internal ?? false }));
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify(topics)}\n`);
  else await write(ctx.io.stdout, topics.map((t) => `${t.name}\n`).join(""));
}

/**
 * Describes one topic: each partition's leader, replicas and offsets, and every effective config
 * key with its value and where it comes from (`dynamic-topic`: set on the topic; `default`: the
 * broker's default). The header line's `Configs:` lists the keys set on the topic.
 */
export async function describeTopic(ctx: Context, name: string, o: { json?: boolean }): Promise<void> {
  const { topic, entries } = await withAdmin(ctx, async (admin) => {
    const [described] = await admin.describeTopics([name], { includeConfigs: false });
    const [configs] = await admin.describeConfigs([{ type: "topic", name }]);
    return { topic: described!, entries: [...configs!.entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
  });
  const set = entries.filter((e) => e.source === "dynamic-topic");
  const overrides = Object.fromEntries(set.map((e) => [e.name, e.value ?? ""]));
  if (o.json) {
    const allConfigs = entries.map((e) => ({
      name: e.name,
      value: e.value,
      source: e.source,
      readOnly: e.readOnly,
      sensitive: e.sensitive,
    }));
    await write(ctx.io.stdout, `${JSON.stringify({ ...topic, configs: overrides, allConfigs })}\n`);
    return;
  }
  await write(ctx.io.stdout, formatDescription(topic, overrides, entries));
}

function formatDescription(t: TopicDescription, overrides: Record<string, string>, entries: readonly ConfigEntryDescription[]): string {
  const rf = t.partitions[0]?.replicas.length ?? 0;
  const configs = Object.entries(overrides)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const lines = [`Topic: ${t.name}\tPartitions: ${t.partitions.length}\tReplicationFactor: ${rf}\tConfigs: ${configs}`];
  for (const p of t.partitions) {
    lines.push(
      `\tPartition: ${p.partition}\tLeader: ${p.leader}\tReplicas: ${p.replicas.join(",")}\tIsr: ${p.isr.join(",")}` +
        `\tElr: ${p.eligibleLeaderReplicas.join(",")}\tLastKnownElr: ${p.lastKnownElr.join(",")}` +
        `\tLogStartOffset: ${p.logStartOffset}\tHighWatermark: ${p.highWatermark}`,
    );
  }
  const rows = entries.map((e) => [e.name, e.sensitive ? "(sensitive)" : (e.value ?? "-"), e.source]);
  return `${lines.join("\n")}\n\n${table(["CONFIG", "VALUE", "SOURCE"], rows)}`;
}

/** Sets and deletes topic config keys. */
export async function alterTopic(
  ctx: Context,
  name: string,
  o: { config: Record<string, string>; deleteConfig: string[]; json?: boolean | undefined },
): Promise<void> {
  if (Object.keys(o.config).length === 0 && o.deleteConfig.length === 0) {
    throw new CliError("topic alter: give at least one --config key=value or --delete-config key");
  }
  await withAdmin(ctx, (admin) => admin.alterConfigs([{ resource: { type: "topic", name }, set: o.config, delete: o.deleteConfig }]));
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify({ altered: name, set: o.config, deleted: o.deleteConfig })}\n`);
  else await write(ctx.io.stdout, `Altered topic ${name}.\n`);
}

/** Deletes a topic. */
export async function deleteTopic(ctx: Context, name: string, o: { json?: boolean } = {}): Promise<void> {
  await withAdmin(ctx, (admin) => admin.deleteTopics([name]));
  await write(ctx.io.stdout, o.json ? `${JSON.stringify({ deleted: name })}\n` : `Deleted topic ${name}.\n`);
}

/**
 * Deletes a topic's records below `offset` (-1: the high watermark) in one partition or all of
 * them, and prints each partition's log start offset afterwards.
 */
export async function deleteRecords(ctx: Context, name: string, o: { offset: number; partition?: number; json?: boolean }): Promise<void> {
  const results = await withAdmin(ctx, async (admin) => {
    const [t] = await admin.describeTopics([name], { includeConfigs: false });
    const count = t!.partitions.length;
    if (o.partition !== undefined) checkPartition(name, o.partition, count);
    const partitions = o.partition !== undefined ? [o.partition] : Array.from({ length: count }, (_, p) => p);
    return admin.deleteRecords(partitions.map((partition) => ({ topic: name, partition, offset: o.offset })));
  });
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify(results)}\n`);
  else for (const r of results) await write(ctx.io.stdout, `${r.topic}-${r.partition}: log start offset ${r.lowWatermark}\n`);
}

/** `topic add-partitions NAME --count N`: raises the partition count to N (the new total). */
export async function addPartitions(
  ctx: Context,
  name: string,
  o: { count: number; validateOnly?: boolean; json?: boolean },
): Promise<void> {
  const before = await withAdmin(ctx, async (admin) => {
    const [t] = await admin.describeTopics([name], { includeConfigs: false });
    const had = t!.partitions.length;
    if (o.count <= had)
      throw new CliError(`topic add-partitions: "${name}" has ${had} partitions; --count must be more (it is the new total)`);
    await admin.createPartitions([{ name, count: o.count }], { validateOnly: o.validateOnly ?? false });
    return had;
  });
  if (o.json)
    await write(
      ctx.io.stdout,
      `${JSON.stringify({ topic: name, partitions: o.count, previous: before, validateOnly: o.validateOnly ?? false })}\n`,
    );
  else if (o.validateOnly)
    await write(ctx.io.stdout, `Topic ${name} could grow from ${before} to ${o.count} partitions (validated only).\n`);
  else await write(ctx.io.stdout, `Topic ${name} now has ${o.count} partitions (was ${before}).\n`);
}

/**
 * `topic elect-leaders [NAME] [--partition N ...]`: moves leadership back to each partition's
 * preferred replica (the first replica); without NAME, every partition of the cluster. Prints
 * one row per partition: its leader after the election and whether it moved (ELECTION_NOT_NEEDED:
 * the preferred replica already leads).
 */
export async function electLeaders(ctx: Context, name: string | undefined, o: { partition?: number[]; json?: boolean }): Promise<void> {
  if (name === undefined && o.partition !== undefined) throw new CliError("topic elect-leaders: --partition needs a topic");
  const results = await withAdmin(ctx, async (admin) => {
    if (name !== undefined && o.partition !== undefined) {
      const [t] = await admin.describeTopics([name], { includeConfigs: false });
      for (const p of o.partition) checkPartition(name, p, t!.partitions.length);
    }
    return admin.electLeaders(name === undefined ? [] : [{ topic: name, partitions: o.partition ?? [] }]);
  });
  const rows = results.map((r) => ({
    topic: r.topic,
    partition: r.partition,
    leader: r.leader,
    result: r.error === null ? "elected" : r.error.kind.name,
    error: r.error?.message ?? null,
  }));
  if (o.json) return write(ctx.io.stdout, `${JSON.stringify(rows)}\n`);
  if (rows.length === 0) return write(ctx.io.stdout, "No leader moved: every partition is led by its preferred replica.\n");
  await write(
    ctx.io.stdout,
    table(
      ["TOPIC", "PARTITION", "LEADER", "RESULT"],
      rows.map((r) => [r.topic, r.partition, r.leader, r.result]),
    ),
  );
}

/** Throws when `partition` is beyond the topic's `count` partitions. */
export function checkPartition(topic: string, partition: number, count: number): void {
  if (partition >= count)
    throw new CliError(`--partition: ${partition} is not in [0, ${count}) (topic "${topic}" has ${count} partitions)`);
}
