/**
 * Eligible leader replicas (KIP-966, issue 21) in the whole-cluster simulator: seed 1317 loses
 * acknowledged writes without them. There the last ISR member lost power while still
 * registered under its old process; with ELR the controller elects the replica that left the ISR
 * below min.insync.replicas (the seed is a regression seed and passes), without ELR it re-elects
 * the replica that lost the writes.
 */
import { describe, expect, it } from "vitest";
import { runClusterSim } from "./cluster.ts";
import { clusterRegressionSeeds, formatClusterFailure, regressionClusterSettings } from "./run.ts";

describe("eligible leader replicas in the cluster simulator", () => {
  it("seed 1317 loses acknowledged writes with eligible.leader.replicas.enable=false", async () => {
    const entry = clusterRegressionSeeds().find((e) => e.seed === 1317);
    expect(entry, "seed 1317 is a regression seed").toBeDefined();
    const r = await runClusterSim({ ...regressionClusterSettings(entry!), eligibleLeaderReplicas: false });
    console.log(formatClusterFailure(r));
    expect(r.violations.map((v) => v.check)).toContain("acked-write-lost");
  }, 120_000);
});
