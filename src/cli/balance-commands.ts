/**
 * `rill cluster rebalance` and `rill broker decommission` (issue 21, item 2): a plan from
 * `planBalance` (src/metadata/balance.ts) over the cluster's unfenced brokers and every
 * partition (internal topics too), carried out as KIP-455 reassignments.
 *
 * - `cluster rebalance` shows the moves and the balance before and after them (replicas and
 *   preferred leaders per broker, partitions whose replicas share a rack); `--execute` starts them.
 * - `broker decommission N [M ...]` starts the moves that take every replica off N (and M ...: all
 *   drained at once, so nothing moves from one of them onto another), then waits until no
 *   partition is moving and none names them (`--no-wait`: only start them); they can then be
 *   stopped. A partition that would be left with fewer brokers than replicas is refused before
 *   anything moves.
 */
import type { Command } from "commander";
import { Admin } from "../client/admin.ts";
import { type Balance, type BalancePartition, type BalancePlan, planBalance } from "../metadata/balance.ts";
import { type Context, clientOptions } from "./context.ts";
import { table } from "./group-commands.ts";
import { CliError, write } from "./output.ts";
import { intIn } from "./parse.ts";

/** Options of `cluster rebalance`. */
export interface RebalanceOptions {
  readonly execute?: boolean;
  readonly json?: boolean;
}

/** Options of `broker decommission`. */
export interface DecommissionOptions {
  /** commander's `--no-wait`: false to return once the moves are started. */
  readonly wait: boolean;
  readonly timeoutMs: number;
  readonly json?: boolean;
}

/** `rill cluster rebalance`. */
export function registerRebalance(cluster: Command, contextOf: (cmd: Command) => Context): void {
  cluster
    .command("rebalance")
    .description("plan moves that spread replicas and preferred leaders evenly over the brokers (and racks); --execute starts them")
    .option("--execute", "start the planned moves")
    .option("--json", "print JSON")
    .action(async (o: RebalanceOptions, cmd: Command) => rebalance(contextOf(cmd), o));
}

/** `rill broker decommission <node...>`. */
export function registerDecommission(broker: Command, contextOf: (cmd: Command) => Context): void {
  broker
    .command("decommission <node...>")
    .description(
      "move every replica off one or more brokers (drained together), then wait until none is left there (they can then be stopped)",
    )
    .option("--no-wait", "return once the moves are started")
    .option("--timeout-ms <ms>", "longest wait for the moves", intIn(1, 2 ** 31 - 1), 600_000)
    .option("--json", "print JSON")
    .action(async (nodes: string[], o: DecommissionOptions, cmd: Command) => {
      const ids = nodes.map((node) => {
        const id = Number(node);
        if (node.trim() === "" || !Number.isSafeInteger(id) || id < 0)
          throw new CliError(`broker decommission: <node> must be a node id, got "${node}"`);
        return id;
      });
      const twice = ids.find((id, i) => ids.indexOf(id) !== i);
      if (twice !== undefined) throw new CliError(`broker decommission: node ${twice} is named twice`);
      await decommission(contextOf(cmd), ids, o);
    });
}

/** The brokers that may hold replicas and every partition, as the cluster describes them. */
async function snapshot(admin: Admin): Promise<{ brokers: { id: number; rack: string }[]; partitions: BalancePartition[] }> {
  const cluster = await admin.describeCluster();
  const brokers = cluster.brokers.filter((b) => !b.fenced && b.roles.includes("broker")).map((b) => ({ id: b.nodeId, rack: b.rack }));
  const names = (await admin.listTopics({ includeInternal: true })).map((t) => t.name);
  const described = names.length === 0 ? [] : await admin.describeTopics(names, { includeConfigs: false });
  const partitions = described.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition, replicas: p.replicas })));
  return { brokers, partitions };
}

function balanceLine(label: string, b: Balance): string {
  const per = (m: Readonly<Record<number, number>>) =>
    Object.entries(m)
      .map(([id, n]) => `${id}:${n}`)
      .join(" ");
  return (
    `${label}: replicas per broker ${per(b.replicas)} (spread ${b.replicaSpread}); preferred leaders ${per(b.leaders)} (spread ${b.leaderSpread}); ` +
    `partitions with replicas sharing a rack ${b.rackViolations}${b.onDrained > 0 ? `; replicas on the broker drained ${b.onDrained}` : ""}\n`
  );
}

async function printPlan(ctx: Context, plan: BalancePlan, current: readonly BalancePartition[], json: boolean): Promise<void> {
  const now = new Map(current.map((p) => [`${p.topic}\u0000${p.partition}`, p.replicas]));
  const rows = plan.moves.map((m) => ({ ...m, current: now.get(`${m.topic}\u0000${m.partition}`) ?? [] }));
  if (json) return write(ctx.io.stdout, `${JSON.stringify({ moves: rows, before: plan.before, after: plan.after })}\n`);
  const moves =
    rows.length === 0
      ? "No partition needs to move.\n"
      : table(
          ["TOPIC", "PARTITION", "CURRENT", "PLANNED"],
          rows.map((r) => [r.topic, r.partition, r.current.join(","), r.replicas.join(",")]),
        );
  await write(ctx.io.stdout, moves + balanceLine("before", plan.before) + balanceLine("after", plan.after));
}

/** Starts `moves`; CliError naming each refused partition. */
async function start(admin: Admin, moves: readonly BalancePartition[]): Promise<void> {
  if (moves.length === 0) return;
  const results = await admin.alterPartitionReassignments(
    moves.map((m) => ({ topic: m.topic, partition: m.partition, replicas: [...m.replicas] })),
  );
  const refused = results.filter((r) => r.error !== null);
  if (refused.length > 0)
    throw new CliError(
      `${refused.length} of ${results.length} moves were refused: ${refused.map((r) => `${r.topic}-${r.partition}: ${r.error!.message}`).join("; ")}`,
    );
}

async function rebalance(ctx: Context, o: RebalanceOptions): Promise<void> {
  const admin = new Admin(clientOptions(ctx));
  try {
    const { brokers, partitions } = await snapshot(admin);
    const plan = planBalance(brokers, partitions);
    await printPlan(ctx, plan, partitions, o.json === true);
    if (o.execute) {
      await start(admin, plan.moves);
      if (o.json !== true)
        await write(ctx.io.stdout, `Started ${plan.moves.length} moves; \`rill partitions reassign --status\` follows them.\n`);
    } else if (o.json !== true && plan.moves.length > 0) await write(ctx.io.stdout, "Nothing changed; --execute starts these moves.\n");
  } finally {
    await admin.close();
  }
}

async function decommission(ctx: Context, nodes: readonly number[], o: DecommissionOptions): Promise<void> {
  const admin = new Admin(clientOptions(ctx));
  const named = nodes.join(" ");
  try {
    const { brokers, partitions } = await snapshot(admin);
    let plan: BalancePlan;
    try {
      // Drain only: a decommission moves nothing that is not on `nodes` (not a rebalance).
      plan = planBalance(brokers, partitions, nodes, { drainOnly: true });
    } catch (e) {
      throw new CliError(`broker decommission ${named}: ${(e as Error).message}; nothing moved`);
    }
    await printPlan(ctx, plan, partitions, o.json === true);
    await start(admin, plan.moves);
    if (!o.wait) return;
    const deadline = Date.now() + o.timeoutMs;
    for (;;) {
      const moving = await admin.listPartitionReassignments();
      const left = (await snapshot(admin)).partitions.filter((p) => p.replicas.some((r) => nodes.includes(r)));
      if (moving.length === 0 && left.length === 0) break;
      if (Date.now() > deadline)
        throw new CliError(
          `broker decommission ${named}: after ${o.timeoutMs} ms, ${moving.length} partitions are still moving and ${left.length} still name broker ${nodes.join(" or ")}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
    if (o.json !== true)
      await write(
        ctx.io.stdout,
        nodes.length === 1
          ? `Broker ${named} holds no replica any more; it can be stopped.\n`
          : `Brokers ${nodes.join(", ")} hold no replica any more; they can be stopped.\n`,
      );
  } finally {
    await admin.close();
  }
}
