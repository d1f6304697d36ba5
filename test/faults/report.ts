/** Text reports of fault rounds and of the group-failover scenario, for the console. */
import type { Anomalies } from "./checker.ts";
import type { RoundResult } from "./engine.ts";
import type { GroupResult } from "./group-failover.ts";

const EXAMPLES_MAX = 8;

const CLASSES: readonly { key: keyof Anomalies; label: string }[] = [
  { key: "lost", label: "lost" },
  { key: "duplicate", label: "duplicate" },
  { key: "inconsistent", label: "inconsistent offsets" },
  { key: "abortedRead", label: "aborted read" },
  { key: "nonmonotonic", label: "nonmonotonic offsets" },
  { key: "skip", label: "skipped offsets" },
];

function json(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

function s(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The one-line summary of anomaly counts. */
export function anomalyLine(a: Anomalies): string {
  const total = CLASSES.reduce((n, c) => n + a[c.key].length, 0);
  return `anomalies: ${total} (${CLASSES.map((c) => `${c.label} ${a[c.key].length}`).join(", ")})`;
}

/** The report of one produce/consume round. */
export function formatRound(r: RoundResult, index: number): string {
  const c = r.check.counts;
  const out: string[] = [];
  out.push(`=== round ${index} SEED=${r.seed} (replay: npm run faults -- --seed ${r.seed} --rounds 1)`);
  out.push(
    `time: cluster up and topic ready ${s(r.timings.startMs)}, load ${s(r.timings.loadMs)}, settle ${s(r.timings.settleMs)}, read-back ${s(r.timings.readMs)}, total ${s(r.timings.totalMs)}`,
  );
  out.push(
    `writes: ${c.attempted} values; acknowledged ${c.acknowledged}, failed ${c.failed} ${json(c.failedBy)}, unknown ${c.unknown} ${json(c.unknownBy)} (${c.unknownPresent} of them in the log)`,
  );
  out.push(`after the final heal: ${r.acknowledgedAfterHeal} values acknowledged`);
  out.push(
    `reads: consumers ${c.consumerRecords} records; final read-back ${c.finalRecords} records (high watermarks ${r.highWatermarks.join(", ")}, through every node)`,
  );
  if (r.unsettled) out.push(`NOT SETTLED: ${r.unsettled}`);
  for (const f of r.probeFailures) out.push(`NOT WRITABLE AFTER HEALING: ${f}`);
  out.push(`faults (ms since the load started at ${r.loadStartedAt}):`);
  for (const f of r.faults) out.push(`  +${String(f.atMs).padStart(6)}  ${f.what}`);
  out.push(anomalyLine(r.check.anomalies));
  for (const cl of CLASSES) {
    const xs = r.check.anomalies[cl.key] as unknown[];
    if (xs.length === 0) continue;
    out.push(`  ${cl.label} (${xs.length}), e.g.:`);
    for (const x of xs.slice(0, EXAMPLES_MAX)) out.push(`    ${json(x)}`);
  }
  if (r.nodeEvidence) out.push(r.nodeEvidence);
  if (r.keptAt) out.push(`data and node logs kept in ${r.keptAt}`);
  return out.join("\n");
}

/** The report of the group-failover scenario. */
export function formatGroup(g: GroupResult): string {
  const out: string[] = [];
  out.push(`=== group failover SEED=${g.seed} (replay: npm run faults -- --scenario groups --seed ${g.seed})`);
  out.push(`group ${g.groupId}: ${g.offsetsTopic}-${g.offsetsPartition}; time ${s(g.totalMs)}`);
  out.push(
    `commits: acknowledged ${g.commits.acknowledged}, failed ${g.commits.failed} ${json(g.commits.failedBy)}, unknown ${g.commits.unknown} ${json(g.commits.unknownBy)}`,
  );
  out.push(`steps (ms since the scenario started):`);
  for (const e of g.events) out.push(`  +${String(e.atMs).padStart(6)}  ${e.what}`);
  out.push(`violations: ${g.violations.length}`);
  for (const v of g.violations.slice(0, 20)) out.push(`  ${v}`);
  if (g.keptAt) out.push(`data and node logs kept in ${g.keptAt}`);
  return out.join("\n");
}
