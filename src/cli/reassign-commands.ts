/**
 * `rill partitions reassign` (issue 21), as Kafka's kafka-reassign-partitions.sh over
 * AlterPartitionReassignments / ListPartitionReassignments (KIP-455):
 *
 * - `--plan FILE`: reads a plan (Kafka's reassignment JSON: `{"version":1,"partitions":
 *   [{"topic":"t","partition":0,"replicas":[1,2,3]}]}`) and shows each partition's replicas now and
 *   in the plan; changes nothing.
 * - `--plan FILE --execute`: starts the plan's moves (each partition on its own).
 * - `--status [--plan FILE]`: the ongoing moves; with a plan, each of its partitions as `done`
 *   (its replicas are the plan's), `moving` or `not started`.
 * - `--plan FILE --cancel`: cancels the plan's ongoing moves (back to the original replicas).
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { Admin, type PartitionReassignment } from "../client/admin.ts";
import type { RillError } from "../base/errors.ts";
import { type Context, clientOptions } from "./context.ts";
import { table } from "./group-commands.ts";
import { CliError, write } from "./output.ts";

/** One partition of a plan. */
export interface PlannedMove {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[];
}

/** Options of `partitions reassign`. */
export interface ReassignOptions {
  readonly plan?: string;
  readonly execute?: boolean;
  readonly status?: boolean;
  readonly cancel?: boolean;
  readonly json?: boolean;
}

/** `rill partitions reassign`. */
export function registerPartitions(program: Command, contextOf: (cmd: Command) => Context): void {
  const partitions = program.command("partitions").description("move partition replicas between brokers");
  partitions
    .command("reassign")
    .description("show (--plan FILE), start (--execute), follow (--status) or cancel (--cancel) partition moves")
    .option("--plan <file>", 'reassignment JSON: {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}')
    .option("--execute", "start the plan's moves")
    .option("--status", "show the ongoing moves (with --plan: each of the plan's partitions)")
    .option("--cancel", "cancel the plan's ongoing moves: back to the original replicas")
    .option("--json", "print JSON")
    .action(async (o: ReassignOptions, cmd: Command) => reassign(contextOf(cmd), o));
}

/** Parses a plan file's text; CliError naming the field at fault. */
export function parsePlan(text: string, file = "plan"): PlannedMove[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${file}: not JSON (${(e as Error).message})`);
  }
  const parts = (v as { partitions?: unknown })?.partitions;
  if (!Array.isArray(parts) || parts.length === 0) throw new CliError(`${file}: "partitions" must be a non-empty list`);
  return parts.map((p: unknown, i): PlannedMove => {
    const at = `${file}: partitions[${i}]`;
    const { topic, partition, replicas } = (p ?? {}) as { topic?: unknown; partition?: unknown; replicas?: unknown };
    if (typeof topic !== "string" || topic === "") throw new CliError(`${at}.topic: a topic name is required`);
    if (!Number.isInteger(partition) || (partition as number) < 0)
      throw new CliError(`${at}.partition: a partition index (>= 0) is required`);
    if (!Array.isArray(replicas) || !replicas.every((r) => Number.isInteger(r) && r >= 0))
      throw new CliError(`${at}.replicas: a list of broker ids is required`);
    return { topic, partition: partition as number, replicas: replicas as number[] };
  });
}

function readPlan(file: string): PlannedMove[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CliError(`--plan: cannot read ${file}: ${(e as Error).message}`);
  }
  return parsePlan(text, file);
}

async function reassign(ctx: Context, o: ReassignOptions): Promise<void> {
  const actions = [o.execute, o.status, o.cancel].filter(Boolean).length;
  if (actions > 1) throw new CliError("partitions reassign: give one of --execute, --status, --cancel");
  if (!o.status && o.plan === undefined) throw new CliError("partitions reassign: --plan FILE is required (except with --status)");
  const plan = o.plan === undefined ? null : readPlan(o.plan);
  const admin = new Admin(clientOptions(ctx));
  try {
    if (o.execute || o.cancel) {
      const results = await admin.alterPartitionReassignments(plan!.map((m) => ({ ...m, replicas: o.cancel ? null : m.replicas })));
      return await printResults(ctx, results, o);
    }
    if (o.status) return await printStatus(ctx, admin, plan, o);
    return await printPlan(ctx, admin, plan!, o);
  } finally {
    await admin.close();
  }
}

async function printResults(
  ctx: Context,
  results: ReadonlyArray<{ topic: string; partition: number; error: RillError | null }>,
  o: ReassignOptions,
): Promise<void> {
  const rows = results.map((r) => ({
    topic: r.topic,
    partition: r.partition,
    result: r.error === null ? (o.cancel ? "cancelled" : "accepted") : r.error.kind.name,
    error: r.error?.message ?? null,
  }));
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify(rows)}\n`);
  else
    await write(
      ctx.io.stdout,
      table(
        ["TOPIC", "PARTITION", "RESULT", "DETAIL"],
        rows.map((r) => [r.topic, r.partition, r.result, r.error ?? ""]),
      ),
    );
  const failed = rows.filter((r) => r.error !== null).length;
  if (failed > 0) throw new CliError(`${failed} of ${rows.length} partitions were refused; nothing of them changed`);
}

/** The replicas each named topic's partitions have now. */
async function currentReplicas(admin: Admin, topics: readonly string[]): Promise<Map<string, readonly number[]>> {
  const out = new Map<string, readonly number[]>();
  const described = await admin.describeTopics([...new Set(topics)], { includeConfigs: false });
  for (const t of described) for (const p of t.partitions) out.set(`${t.name}\u0000${p.partition}`, p.replicas);
  return out;
}

async function printPlan(ctx: Context, admin: Admin, plan: readonly PlannedMove[], o: ReassignOptions): Promise<void> {
  const now = await currentReplicas(
    admin,
    plan.map((m) => m.topic),
  );
  const rows = plan.map((m) => ({ ...m, current: now.get(`${m.topic}\u0000${m.partition}`) ?? null }));
  if (o.json) return write(ctx.io.stdout, `${JSON.stringify(rows)}\n`);
  await write(
    ctx.io.stdout,
    table(
      ["TOPIC", "PARTITION", "CURRENT", "PLANNED"],
      rows.map((r) => [r.topic, r.partition, r.current?.join(",") ?? "(no such partition)", r.replicas.join(",")]),
    ) + "Nothing changed; --execute starts these moves.\n",
  );
}

async function printStatus(ctx: Context, admin: Admin, plan: readonly PlannedMove[] | null, o: ReassignOptions): Promise<void> {
  const ongoing = await admin.listPartitionReassignments(
    plan === null ? [] : [...new Set(plan.map((m) => m.topic))].map((topic) => ({ topic })),
  );
  if (plan === null) {
    if (o.json) return write(ctx.io.stdout, `${JSON.stringify(ongoing)}\n`);
    if (ongoing.length === 0) return write(ctx.io.stdout, "No partition is being reassigned.\n");
    return write(ctx.io.stdout, table(["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"], ongoing.map(row)));
  }
  const moving = new Map<string, PartitionReassignment>(ongoing.map((r) => [`${r.topic}\u0000${r.partition}`, r]));
  const now = await currentReplicas(
    admin,
    plan.map((m) => m.topic),
  );
  const rows = plan.map((m) => {
    const key = `${m.topic}\u0000${m.partition}`;
    const current = now.get(key) ?? [];
    const state = moving.has(key) ? "moving" : sameList(current, m.replicas) ? "done" : "not started";
    return { topic: m.topic, partition: m.partition, state, replicas: current, planned: m.replicas, reassignment: moving.get(key) ?? null };
  });
  if (o.json) return write(ctx.io.stdout, `${JSON.stringify(rows)}\n`);
  await write(
    ctx.io.stdout,
    table(
      ["TOPIC", "PARTITION", "STATE", "REPLICAS", "PLANNED"],
      rows.map((r) => [r.topic, r.partition, r.state, r.replicas.join(","), r.planned.join(",")]),
    ),
  );
}

function row(r: PartitionReassignment): (string | number)[] {
  return [r.topic, r.partition, r.replicas.join(","), r.addingReplicas.join(","), r.removingReplicas.join(",")];
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
