/**
 * The Jepsen-style fault test, from the command line (the CI version is faults.test.ts):
 *
 *   npm run faults -- [--rounds N] [--seed S] [--duration-ms D] [--scenario produce|groups|txn|all] [--keep]
 *
 * - produce: N rounds of engine.ts — a fresh 3-node cluster, producers writing unique values
 *   with acks=ALL and consumers polling, under seeded faults (kill -9, SIGSTOP/SIGCONT, SIGTERM
 *   restarts, isolated nodes, cut links) for D ms (default 25000); then heal, settle, read
 *   everything back through every node, check (checker.ts) and print the report.
 * - groups: N runs of group-failover.ts (committed offsets across coordinator kills).
 * - txn: N rounds of txn-engine.ts — transactional consume–transform–produce workers under
 *   faults aimed at transaction coordinators and partition leaders (exactly once, no aborted
 *   read, no lost commit, no torn transaction; txn-checker.ts), fault window D ms.
 * - all (the default): N produce rounds, then one groups run, then one txn round.
 * Round i (from 0) uses seed S + i; `--seed S --rounds 1` (or `SEED=S`) replays the fault
 * schedule of a round that printed SEED=S. Only 127.0.0.1 is used; every process started is
 * stopped, also on Ctrl-C. Exit code 1 when any anomaly was found or a cluster did not settle.
 */
import { seedFromEnv } from "../../src/base/random.ts";
import { choice, integer, scriptCommand } from "../../scripts/lib/command-line.ts";
import { runRound, roundOptions, type RoundResult } from "./engine.ts";
import { groupOptions, runGroupFailover, type GroupResult } from "./group-failover.ts";
import { anomalyLine, formatGroup, formatRound } from "./report.ts";
import { formatTxnRound, runTxnRound, txnRoundOptions, type TxnRoundResult } from "./txn-engine.ts";

interface Args {
  rounds: number;
  seed: number;
  durationMs: number;
  scenario: "produce" | "groups" | "txn" | "all";
  keep: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const o = scriptCommand(import.meta.url)
    .option("--rounds <n>", "produce rounds (groups runs with --scenario groups)", integer(1), 1)
    .option("--seed <s>", "seed of the first round (default: $SEED, else random)", integer(0))
    .option("--duration-ms <d>", "fault window of a produce round", integer(1_000), 25_000)
    .option("--scenario <name>", "produce, groups, txn or all", choice(["produce", "groups", "txn", "all"] as const), "all")
    .option("--keep", "keep the data directories")
    .parse([...argv], { from: "user" })
    .opts<{ rounds: number; seed?: number; durationMs: number; scenario: Args["scenario"]; keep?: boolean }>();
  return {
    rounds: o.rounds,
    seed: o.seed === undefined ? seedFromEnv() : o.seed >>> 0,
    durationMs: o.durationMs,
    scenario: o.scenario,
    keep: o.keep === true,
  };
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  console.log(`faults: SEED=${a.seed} rounds=${a.rounds} duration-ms=${a.durationMs} scenario=${a.scenario}`);
  const progress = (line: string): void => console.log(`  [${new Date().toISOString().slice(11, 19)}] ${line}`);
  const rounds: RoundResult[] = [];
  const groups: GroupResult[] = [];
  let bad = 0;
  const txns: TxnRoundResult[] = [];
  if (a.scenario === "produce" || a.scenario === "all") {
    for (let i = 0; i < a.rounds; i++) {
      const seed = (a.seed + i) >>> 0;
      console.log(`--- round ${i + 1}/${a.rounds} SEED=${seed}`);
      const r = await runRound(roundOptions({ seed, windowMs: a.durationMs, keep: a.keep, progress }));
      rounds.push(r);
      console.log(formatRound(r, i + 1));
      if (r.check.total > 0 || r.unsettled || r.probeFailures.length > 0) bad++;
    }
  }
  if (a.scenario === "groups" || a.scenario === "all") {
    const n = a.scenario === "groups" ? a.rounds : 1;
    for (let i = 0; i < n; i++) {
      const seed = (a.seed + i) >>> 0;
      const g = await runGroupFailover(groupOptions({ seed, keep: a.keep, progress }));
      groups.push(g);
      console.log(formatGroup(g));
      if (g.violations.length > 0) bad++;
    }
  }
  if (a.scenario === "txn" || a.scenario === "all") {
    const n = a.scenario === "txn" ? a.rounds : 1;
    for (let i = 0; i < n; i++) {
      const seed = (a.seed + i) >>> 0;
      console.log(`--- txn round ${i + 1}/${n} SEED=${seed}`);
      const t = await runTxnRound(txnRoundOptions({ seed, windowMs: a.durationMs, keep: a.keep, progress }));
      txns.push(t);
      console.log(formatTxnRound(t, i + 1));
      if (t.check.total > 0 || t.unsettled || t.divergent.length > 0) bad++;
    }
  }
  console.log(`=== summary (SEED=${a.seed})`);
  for (const r of rounds) {
    const c = r.check.counts;
    console.log(
      `round SEED=${r.seed}: ${Math.round(r.timings.totalMs / 1000)} s, ${r.faults.filter((f) => f.what.startsWith("start:")).length} faults, acknowledged ${c.acknowledged} failed ${c.failed} unknown ${c.unknown}; ${anomalyLine(r.check.anomalies)}${r.unsettled ? "; NOT SETTLED" : ""}${r.probeFailures.length > 0 ? "; NOT WRITABLE AFTER HEALING" : ""}`,
    );
  }
  for (const g of groups)
    console.log(
      `groups SEED=${g.seed}: ${Math.round(g.totalMs / 1000)} s, commits acknowledged ${g.commits.acknowledged}; violations: ${g.violations.length}`,
    );
  for (const t of txns) {
    const c = t.check.counts;
    console.log(
      `txn SEED=${t.seed}: ${Math.round(t.timings.totalMs / 1000)} s, ${t.faults.filter((f) => f.what.startsWith("start:")).length} faults, ${c.attempts} transactions (${c.committed} committed, ${c.aborted} aborted, ${c.abandoned} abandoned, ${c.unknown} unknown), ${c.inputsCommitted}/${c.inputsTotal} inputs; anomalies ${t.check.total}${t.unsettled ? "; NOT SETTLED" : ""}${t.divergent.length > 0 ? "; DIVERGENT" : ""}`,
    );
  }
  console.log(bad === 0 ? "faults: no anomalies" : `faults: ${bad} run(s) with anomalies`);
  return bad === 0 ? 0 : 1;
}

// Ctrl-C or a kill: exit normally so the harness's exit hook kills every broker started.
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
