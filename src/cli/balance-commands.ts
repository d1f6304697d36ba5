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
 *
 * Cordoned brokers (issue 21, cordon-commands.ts) take no new replicas: `broker decommission`
 * cordons the brokers it drains first (after checking that the drain can be done), so partitions
 * created meanwhile go elsewhere, and leaves them cordoned; it moves nothing onto other cordoned
 * brokers, and starts a move for any partition still naming a drained broker that is not moving.
 * `cluster rebalance` drains every cordoned broker.
 */
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { Admin } from "../client/admin.ts";
import { type Balance, type BalanceBroker, type BalancePartition, type BalancePlan, planBalance } from "../metadata/balance.ts";
import { type Context, clientOptions } from "./context.ts";
import { table } from "./group-commands.ts";
import { CliError, write } from "./output.ts";
import { intIn } from "./parse.ts";
import { alterCordons, cordonedLine } from "./cordon-commands.ts";

/** Options of `cluster rebalance`. */
export interface RebalanceOptions {
  readonly execute?: boolean;
  /** Writes the planned moves to this file as Kafka's reassignment JSON (for `partitions reassign --plan FILE`). */
  readonly plan?: string;
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
    .option(
      "--plan <file>",
      "write the planned moves to FILE as Kafka's reassignment JSON (then `rill partitions reassign --plan FILE --execute`)",
    )
    .option("--json", "print JSON")
    .action(async (o: RebalanceOptions, cmd: Command) => {
      if (o.plan !== undefined && o.execute)
        throw new CliError("cluster rebalance: --plan writes the plan and --execute starts it; give one of them");
      await rebalance(contextOf(cmd), o);
    });
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

/** The brokers that may hold replicas and every partition; `cordoned`: those of the brokers that are cordoned (issue 21). */
export interface ClusterSnapshot {
  readonly brokers: readonly BalanceBroker[];
  readonly partitions: readonly BalancePartition[];
  readonly cordoned: readonly number[];
}

/** The cluster as it describes itself, for a plan. */
async function snapshot(admin: Admin): Promise<ClusterSnapshot> {
  const cluster = await admin.describeCluster();
  const live = cluster.brokers.filter((b) => !b.fenced && b.roles.includes("broker"));
  const brokers = live.map((b) => ({ id: b.nodeId, rack: b.rack }));
  const cordoned = live.filter((b) => b.cordoned).map((b) => b.nodeId);
  const names = (await admin.listTopics({ includeInternal: true })).map((t) => t.name);
  const described = names.length === 0 ? [] : await admin.describeTopics(names, { includeConfigs: false });
  const partitions = described.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition, replicas: p.replicas })));
  return { brokers, partitions, cordoned };
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

/** `cluster rebalance`'s plan: cordoned brokers (issue 21) are drained, they take no replicas and give theirs away. */
export function rebalancePlan(snap: ClusterSnapshot): BalancePlan {
  try {
    return planBalance(snap.brokers, snap.partitions, snap.cordoned);
  } catch (e) {
    throw new CliError(
      `cluster rebalance: cordoned brokers ${snap.cordoned.join(", ")} are drained: ${(e as Error).message}; nothing moved`,
    );
  }
}

/**
 * `broker decommission`'s plan over `snap`: drain only (it moves nothing that is not on `nodes`),
 * onto brokers that are not cordoned (issue 21); CliError ending in `after` when it cannot be done.
 */
export function drainPlan(snap: ClusterSnapshot, nodes: readonly number[], after: string): BalancePlan {
  const others = snap.cordoned.filter((b) => !nodes.includes(b));
  try {
    return planBalance(
      snap.brokers.filter((b) => !others.includes(b.id)),
      snap.partitions,
      nodes,
      { drainOnly: true },
    );
  } catch (e) {
    const note = others.length > 0 ? ` (cordoned brokers ${others.join(", ")} take no replicas)` : "";
    throw new CliError(`broker decommission ${nodes.join(" ")}: ${(e as Error).message}${note}; ${after}`);
  }
}

async function rebalance(ctx: Context, o: RebalanceOptions): Promise<void> {
  const admin = new Admin(clientOptions(ctx));
  try {
    const snap = await snapshot(admin);
    const { partitions, cordoned } = snap;
    const plan = rebalancePlan(snap);
    if (cordoned.length > 0 && o.json !== true)
      await write(ctx.io.stdout, `Cordoned brokers ${cordoned.join(", ")} are drained: they take no new replicas.\n`);
    await printPlan(ctx, plan, partitions, o.json === true);
    if (o.plan !== undefined) {
      // An empty plan is not written: `partitions reassign --plan` refuses one with no partitions.
      if (plan.moves.length > 0) await writeFile(o.plan, reassignmentJson(plan.moves));
      if (o.json !== true)
        await write(
          ctx.io.stdout,
          plan.moves.length > 0
            ? `Wrote ${plan.moves.length} moves to ${o.plan}; nothing changed.\n`
            : `Nothing to move; ${o.plan} not written.\n`,
        );
    } else if (o.execute) {
      await start(admin, plan.moves);
      if (o.json !== true)
        await write(ctx.io.stdout, `Started ${plan.moves.length} moves; \`rill partitions reassign --status\` follows them.\n`);
    } else if (o.json !== true && plan.moves.length > 0) await write(ctx.io.stdout, "Nothing changed; --execute starts these moves.\n");
  } finally {
    await admin.close();
  }
}

/** Moves as Kafka's reassignment JSON (`{"version":1,"partitions":[{"topic","partition","replicas"}]}`), as `partitions reassign --plan` reads it. */
export function reassignmentJson(moves: readonly BalancePartition[]): string {
  const partitions = moves.map((m) => ({ topic: m.topic, partition: m.partition, replicas: [...m.replicas] }));
  return `${JSON.stringify({ version: 1, partitions }, null, 2)}\n`;
}

const keyOf = (p: { topic: string; partition: number }): string => `${p.topic}\u0000${p.partition}`;

/**
 * Starts the drain's moves of the partitions of `left` (those still naming a drained broker) that
 * are not `moving` — a move cancelled, or a replica placed there explicitly meanwhile. A plan or a
 * move refused here is left for the next round (the wait's timeout reports what stays).
 */
async function moveStragglers(
  admin: Admin,
  moving: readonly { topic: string; partition: number }[],
  left: readonly BalancePartition[],
  plan: () => BalancePlan,
): Promise<void> {
  const busy = new Set(moving.map(keyOf));
  const stray = new Set(left.filter((p) => !busy.has(keyOf(p))).map(keyOf));
  if (stray.size === 0) return;
  try {
    await start(
      admin,
      plan().moves.filter((m) => stray.has(keyOf(m))),
    );
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
  }
}

async function decommission(ctx: Context, nodes: readonly number[], o: DecommissionOptions): Promise<void> {
  const admin = new Admin(clientOptions(ctx));
  const named = nodes.join(" ");
  const drain = (snap: ClusterSnapshot, after: string): BalancePlan => drainPlan(snap, nodes, after);
  try {
    drain(await snapshot(admin), "nothing moved"); // bad input changes nothing, not even a cordon
    // Cordoned first (issue 21): a partition created from now on is placed elsewhere.
    await alterCordons(admin, nodes, true, `broker decommission ${named}`);
    if (o.json !== true) await write(ctx.io.stdout, `${cordonedLine(nodes)}\n`);
    const snap = await snapshot(admin);
    const plan = drain(snap, `nothing moved (cordoned: ${named})`);
    await printPlan(ctx, plan, snap.partitions, o.json === true);
    await start(admin, plan.moves);
    if (!o.wait) return;
    const deadline = Date.now() + o.timeoutMs;
    for (;;) {
      const moving = await admin.listPartitionReassignments();
      const now = await snapshot(admin);
      const left = now.partitions.filter((p) => p.replicas.some((r) => nodes.includes(r)));
      if (moving.length === 0 && left.length === 0) break;
      await moveStragglers(admin, moving, left, () => drain(now, "not moved"));
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
