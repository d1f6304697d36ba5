/**
 * The plans of `rill cluster rebalance` and `rill broker decommission` with cordoned brokers
 * (issue 21): a rebalance drains every cordoned broker (and moves nothing onto one); a
 * decommission drains only the brokers named, onto brokers that are not cordoned; the node ids
 * of `broker cordon|uncordon` are checked.
 */
import { describe, expect, it } from "vitest";
import { type ClusterSnapshot, drainPlan, rebalancePlan } from "../../../src/cli/balance-commands.ts";
import { parseNodeIds } from "../../../src/cli/cordon-commands.ts";

/** 12 partitions of RF 2 spread round-robin over brokers 1..4. */
function cluster(cordoned: number[]): ClusterSnapshot {
  const ids = [1, 2, 3, 4];
  return {
    brokers: ids.map((id) => ({ id, rack: "" })),
    partitions: Array.from({ length: 12 }, (_, p) => ({ topic: "t", partition: p, replicas: [ids[p % 4]!, ids[(p + 1) % 4]!] })),
    cordoned,
  };
}

const onto = (moves: readonly { replicas: readonly number[] }[], b: number) => moves.filter((m) => m.replicas.includes(b)).length;

describe("plans with cordoned brokers", () => {
  it("rebalance drains the cordoned brokers and balances the rest", () => {
    const snap = cluster([4]);
    const plan = rebalancePlan(snap);
    const after = new Map(snap.partitions.map((p) => [p.partition, p.replicas]));
    for (const m of plan.moves) after.set(m.partition, m.replicas);
    for (const r of after.values()) expect(r).not.toContain(4);
    expect(plan.after.onDrained).toBe(0);
    expect(plan.after.replicaSpread).toBeLessThanOrEqual(1);
    // Without the cordon the cluster is balanced already: nothing to move.
    expect(rebalancePlan(cluster([])).moves).toEqual([]);
  });

  it("rebalance refuses, naming the cordoned brokers, when the others cannot hold every replica", () => {
    expect(() => rebalancePlan(cluster([2, 3, 4]))).toThrow(
      /^cluster rebalance: cordoned brokers 2, 3, 4 are drained: .* only 1 broker\(s\) would remain.*; nothing moved$/,
    );
  });

  it("decommission drains only the brokers named, never onto another cordoned broker", () => {
    const snap = cluster([3]);
    const plan = drainPlan(snap, [4], "nothing moved");
    expect(plan.moves.length).toBe(6); // every partition on 4, nothing else
    for (const m of plan.moves) {
      expect(m.replicas).not.toContain(4);
      expect(snap.partitions[m.partition]!.replicas).toContain(4);
    }
    expect(onto(plan.moves, 3)).toBe(
      plan.moves.filter((m) => snap.partitions[m.partition]!.replicas.includes(3)).length, // 3 only where it already was
    );
    expect(() => drainPlan(cluster([2, 3]), [4], "nothing moved")).toThrow(
      /^broker decommission 4: .* \(cordoned brokers 2, 3 take no replicas\); nothing moved$/,
    );
  });

  it("cordon and uncordon take node ids, each once", () => {
    expect(parseNodeIds(["4", "5"], "broker cordon")).toEqual([4, 5]);
    expect(() => parseNodeIds(["x"], "broker cordon")).toThrow('broker cordon: <node> must be a node id, got "x"');
    expect(() => parseNodeIds(["-1"], "broker cordon")).toThrow('broker cordon: <node> must be a node id, got "-1"');
    expect(() => parseNodeIds(["4", "4"], "broker uncordon")).toThrow("broker uncordon: node 4 is named twice");
  });
});
