/**
 * `rill broker cordon N...` and `rill broker uncordon N...` (issue 21, as Kafka's KIP-1066): a
 * cordoned broker is given no new replicas — topics and partitions created meanwhile, internal
 * topics included, are placed on the other brokers — while the replicas it holds, and its
 * leaderships, stay. The state survives the broker's restarts; `rill cluster status` lists the
 * cordoned brokers, `rill broker decommission` cordons the brokers it drains, and `rill cluster
 * rebalance` drains the cordoned ones.
 */
import type { Command } from "commander";
import type { Admin } from "../client/admin.ts";
import { Admin as AdminClient } from "../client/admin.ts";
import { type Context, clientOptions } from "./context.ts";
import { CliError, write } from "./output.ts";

/** `rill broker cordon|uncordon <node...>`. */
export function registerCordon(broker: Command, contextOf: (cmd: Command) => Context): void {
  for (const cordoned of [true, false]) {
    const name = cordoned ? "cordon" : "uncordon";
    broker
      .command(`${name} <node...>`)
      .description(
        cordoned
          ? "give brokers no new replicas (new topics and partitions go elsewhere; what they hold stays)"
          : "let cordoned brokers take new replicas again",
      )
      .option("--json", "print JSON")
      .action(async (nodes: string[], o: { json?: boolean }, cmd: Command) => {
        const ctx = contextOf(cmd);
        const ids = parseNodeIds(nodes, `broker ${name}`);
        const admin = new AdminClient(clientOptions(ctx));
        try {
          await alterCordons(admin, ids, cordoned, `broker ${name}`);
        } finally {
          await admin.close();
        }
        await write(
          ctx.io.stdout,
          o.json
            ? `${JSON.stringify({ brokers: ids, cordoned })}\n`
            : cordoned
              ? `${cordonedLine(ids)}\n`
              : `Uncordoned ${brokerWord(ids)} ${ids.join(", ")}: ${ids.length === 1 ? "it takes" : "they take"} new replicas again.\n`,
        );
      });
  }
}

/** Node ids from the command line: each a non-negative integer, none twice; CliError naming the first at fault. */
export function parseNodeIds(nodes: readonly string[], command: string): number[] {
  const ids = nodes.map((node) => {
    const id = Number(node);
    if (node.trim() === "" || !Number.isSafeInteger(id) || id < 0)
      throw new CliError(`${command}: <node> must be a node id, got "${node}"`);
    return id;
  });
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) throw new CliError(`${command}: node ${twice} is named twice`);
  return ids;
}

/**
 * Cordons (or uncordons) `ids` through `admin`; CliError naming each broker refused (those not
 * refused are changed: each broker succeeds or fails on its own).
 */
export async function alterCordons(admin: Admin, ids: readonly number[], cordoned: boolean, command: string): Promise<void> {
  const results = await admin.alterBrokerCordons(ids, cordoned);
  const refused = results.filter((r) => r.error !== null);
  if (refused.length > 0) {
    const done = results.filter((r) => r.error === null).map((r) => r.brokerId);
    throw new CliError(
      `${command}: ${refused.map((r) => `broker ${r.brokerId}: ${r.error!.message} (${r.error!.kind.name})`).join("; ")}` +
        (done.length > 0 ? `; ${cordoned ? "cordoned" : "uncordoned"} ${done.join(", ")}` : "; nothing changed"),
    );
  }
}

/** "Cordoned broker 4: ..." for the text output of `cordon` and `decommission`. */
export function cordonedLine(ids: readonly number[]): string {
  const it = ids.length === 1 ? "it" : "they";
  return `Cordoned ${brokerWord(ids)} ${ids.join(", ")}: new replicas go to other brokers; ${it} stay${ids.length === 1 ? "s" : ""} cordoned until \`rill broker uncordon ${ids.join(" ")}\`.`;
}

function brokerWord(ids: readonly number[]): string {
  return ids.length === 1 ? "broker" : "brokers";
}
