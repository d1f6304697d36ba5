/** `rill topic create|list|describe|alter|delete|delete-records`. */

import { Admin, type TopicDescription } from "../client/admin.ts";
import { Errors, RillError } from "../base/errors.ts";
import { type Context, clientOptions } from "./context.ts";
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
}

/** Creates a topic and says so. */
export async function createTopic(ctx: Context, name: string, o: CreateOptions): Promise<void> {
  await withAdmin(ctx, async (admin) => {
    try {
      const [t] = await admin.createTopics([{ name, partitions: o.partitions, replicationFactor: o.replicationFactor, configs: o.config }]);
      const partitions = `${t!.partitions} partition${t!.partitions === 1 ? "" : "s"}`;
      await write(ctx.io.stdout, `Created topic ${name} (${partitions}, replication factor ${t!.replicationFactor}).\n`);
    } catch (e) {
      if (o.ifNotExists && e instanceof RillError && e.kind === Errors.TOPIC_ALREADY_EXISTS) return;
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

/** Describes one topic: its overridden configs and each partition's leader, replicas and offsets. */
export async function describeTopic(ctx: Context, name: string, o: { json?: boolean }): Promise<void> {
  const { topic, overrides } = await withAdmin(ctx, async (admin) => {
    const [described] = await admin.describeTopics([name], { includeConfigs: false });
    const [configs] = await admin.describeConfigs([{ type: "topic", name }]);
    const set = configs!.entries.filter((e) => e.source === "dynamic-topic");
    return { topic: described!, overrides: Object.fromEntries(set.map((e) => [e.name, e.value ?? ""])) };
  });
  if (o.json) {
    await write(ctx.io.stdout, `${JSON.stringify({ ...topic, configs: overrides })}\n`);
    return;
  }
  await write(ctx.io.stdout, formatDescription(topic, overrides));
}

function formatDescription(t: TopicDescription, overrides: Record<string, string>): string {
  const rf = t.partitions[0]?.replicas.length ?? 0;
  const configs = Object.entries(overrides)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const lines = [`Topic: ${t.name}\tPartitions: ${t.partitions.length}\tReplicationFactor: ${rf}\tConfigs: ${configs}`];
  for (const p of t.partitions) {
    lines.push(
      `\tPartition: ${p.partition}\tLeader: ${p.leader}\tReplicas: ${p.replicas.join(",")}\tIsr: ${p.isr.join(",")}` +
        `\tLogStartOffset: ${p.logStartOffset}\tHighWatermark: ${p.highWatermark}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Sets and deletes topic config keys. */
export async function alterTopic(ctx: Context, name: string, o: { config: Record<string, string>; deleteConfig: string[] }): Promise<void> {
  if (Object.keys(o.config).length === 0 && o.deleteConfig.length === 0) {
    throw new CliError("topic alter: give at least one --config key=value or --delete-config key");
  }
  await withAdmin(ctx, (admin) => admin.alterConfigs([{ resource: { type: "topic", name }, set: o.config, delete: o.deleteConfig }]));
  await write(ctx.io.stdout, `Altered topic ${name}.\n`);
}

/** Deletes a topic. */
export async function deleteTopic(ctx: Context, name: string): Promise<void> {
  await withAdmin(ctx, (admin) => admin.deleteTopics([name]));
  await write(ctx.io.stdout, `Deleted topic ${name}.\n`);
}

/**
 * Deletes a topic's records below `offset` (-1: the high watermark) in one partition or all of
 * them, and prints each partition's log start offset afterwards.
 */
export async function deleteRecords(ctx: Context, name: string, o: { offset: number; partition?: number }): Promise<void> {
  const results = await withAdmin(ctx, async (admin) => {
    const [t] = await admin.describeTopics([name], { includeConfigs: false });
    const count = t!.partitions.length;
    if (o.partition !== undefined) checkPartition(name, o.partition, count);
    const partitions = o.partition !== undefined ? [o.partition] : Array.from({ length: count }, (_, p) => p);
    return admin.deleteRecords(partitions.map((partition) => ({ topic: name, partition, offset: o.offset })));
  });
  for (const r of results) await write(ctx.io.stdout, `${r.topic}-${r.partition}: log start offset ${r.lowWatermark}\n`);
}

/** Throws when `partition` is beyond the topic's `count` partitions. */
export function checkPartition(topic: string, partition: number, count: number): void {
  if (partition >= count)
    throw new CliError(`--partition: ${partition} is not in [0, ${count}) (topic "${topic}" has ${count} partitions)`);
}
