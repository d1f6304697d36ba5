import { describe, expect, it } from "vitest";
import {
  decideAlterPartition,
  decideAlterReassignment,
  decideCompleteReassignments,
  decideFenceBroker,
  listReassignments,
} from "../../../src/metadata/controller.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { clusterOf, commit, dump, expectRejected, heartbeat, part, pure, topicWith } from "./cluster-helpers.ts";

/** The leader of t-0 asks for ISR `isr` (as its ISR upkeep would once the followers caught up). */
function alterIsr(img: MetadataImage, isr: number[]): void {
  const p = part(img, "t");
  const leader = img.brokers.get(p.leader)!;
  commit(
    img,
    pure(img, () =>
      decideAlterPartition(img, p.leader, leader.epoch, {
        topic: "t",
        partition: 0,
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch,
        newIsr: isr,
      }),
    ),
  );
}

function reassign(img: MetadataImage, replicas: number[] | null, partition = 0): void {
  commit(
    img,
    pure(img, () => decideAlterReassignment(img, { topic: "t", partition, replicas })),
  );
}

describe("partition reassignment (KIP-455)", () => {
  it("adds the target replicas first, completes once they are in the ISR, and moves leadership off a removed leader", () => {
    const img = clusterOf([1, 2, 3, 4, 5]);
    topicWith(img, "t", [[1, 2, 3]]);
    const epoch0 = part(img, "t").leaderEpoch;
    reassign(img, [4, 5, 2]);
    let p = part(img, "t");
    expect(p.replicas).toEqual([4, 5, 2, 1, 3]);
    expect(p.addingReplicas).toEqual([4, 5]);
    expect(p.removingReplicas).toEqual([1, 3]);
    expect(p.isr).toEqual([1, 2, 3]);
    expect(p.leader).toBe(1);
    expect(p.leaderEpoch).toBe(epoch0);
    expect(listReassignments(img)).toEqual([
      { topic: "t", partition: 0, replicas: [4, 5, 2, 1, 3], addingReplicas: [4, 5], removingReplicas: [1, 3] },
    ]);
    // 4 catches up first: the reassignment goes on.
    alterIsr(img, [4, 2, 1, 3]);
    p = part(img, "t");
    expect(p.replicas).toEqual([4, 5, 2, 1, 3]);
    expect(p.isr).toEqual([4, 2, 1, 3]);
    // 5 catches up: the target is in the ISR, so the same change completes the move.
    alterIsr(img, [4, 5, 2, 1, 3]);
    p = part(img, "t");
    expect(p.replicas).toEqual([4, 5, 2]);
    expect(p.isr).toEqual([4, 5, 2]);
    expect(p.leader).toBe(4);
    expect(p.leaderEpoch).toBe(epoch0 + 1);
    expect(p.addingReplicas).toBeUndefined();
    expect(p.removingReplicas).toBeUndefined();
    expect(listReassignments(img)).toEqual([]);
  });

  it("keeps the leader when it stays a replica; the leader epoch goes up when a replica leaves (as Kafka), not when one joins", () => {
    const img = clusterOf([1, 2, 3, 4]);
    topicWith(img, "t", [[1, 2, 3]]);
    reassign(img, [1, 4, 2]);
    expect(part(img, "t").leaderEpoch).toBe(0);
    alterIsr(img, [1, 4, 2, 3]);
    const p = part(img, "t");
    // 3 left: its fetches, under epoch 0, are fenced from now on (cluster sim seed 174)
    expect(p).toMatchObject({ replicas: [1, 4, 2], isr: [1, 4, 2], leader: 1, leaderEpoch: 1 });
    reassign(img, [1, 4, 2, 3]);
    expect(part(img, "t").leaderEpoch).toBe(1);
    reassign(img, null); // the cancel drops 3
    expect(part(img, "t")).toMatchObject({ replicas: [1, 4, 2], leader: 1, leaderEpoch: 2 });
  });

  it("a cancel reverts to the original replicas (in the order of the replica set, as Kafka), the added ones leaving the ISR", () => {
    const img = clusterOf([1, 2, 3, 4, 5]);
    topicWith(img, "t", [[1, 2, 3]]);
    reassign(img, [4, 5, 3]);
    alterIsr(img, [4, 1, 2, 3]);
    reassign(img, null);
    const p = part(img, "t");
    expect(p).toMatchObject({ replicas: [3, 1, 2], isr: [1, 2, 3], leader: 1 });
    expect(p.addingReplicas).toBeUndefined();
    expect(listReassignments(img)).toEqual([]);
  });

  it("a cancel elects an original replica when an added one had become leader", () => {
    const img = clusterOf([1, 2, 3, 4]);
    topicWith(img, "t", [[1, 2, 3]]);
    reassign(img, [4, 2, 3]);
    alterIsr(img, [4, 1, 2]); // 3 lagged out and 4 came in: no completion yet (3 is a target replica)
    expect(part(img, "t").replicas).toEqual([4, 2, 3, 1]);
    commit(img, decideFenceBroker(img, 1)); // the leader goes: 4 (first in the ISR, replica order) leads
    expect(part(img, "t").leader).toBe(4);
    reassign(img, null);
    const p = part(img, "t");
    expect(p).toMatchObject({ replicas: [2, 3, 1], isr: [2], leader: 2 });
  });

  it("refuses a cancel or a new target that takes ISR members out and leaves the ISR below min.insync.replicas (cluster sim seed 3)", () => {
    const img = clusterOf([1, 2, 3, 4]);
    topicWith(img, "t", [[1, 2]], { "min.insync.replicas": "2" });
    reassign(img, [3, 4]);
    alterIsr(img, [3, 1]); // 2 lagged out, 3 caught up; 4 has not yet
    expect(part(img, "t")).toMatchObject({ replicas: [3, 4, 1, 2], isr: [3, 1] });
    // A cancel would leave ISR {1}: 3 holds what was acknowledged with 1, and 1 may have lost it.
    const cancel = () => decideAlterReassignment(img, { topic: "t", partition: 0, replicas: null });
    expect(expectRejected(img, "INVALID_REPLICA_ASSIGNMENT", cancel).message).toMatch(
      /ISR member 3 would leave, and ISR \[1\] would be below min.insync.replicas 2/,
    );
    expectRejected(img, "INVALID_REPLICA_ASSIGNMENT", () => decideAlterReassignment(img, { topic: "t", partition: 0, replicas: [1, 2] }));
    // A target keeping 3 is fine (and completes at once: 3 and 1 are in the ISR).
    expect(pure(img, () => decideAlterReassignment(img, { topic: "t", partition: 0, replicas: [3, 1] }))).not.toEqual([]);
    // Once 2 is back in the ISR, the cancel keeps {1, 2}.
    alterIsr(img, [3, 1, 2]);
    reassign(img, null);
    expect(part(img, "t")).toMatchObject({ replicas: [1, 2], isr: [1, 2], leader: 1 });
  });

  it("refuses a cancel or a new target that takes eligible leader replicas out while the ISR is below min.insync.replicas (cluster sim seed 4952)", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[2, 1]], { "min.insync.replicas": "2" });
    reassign(img, [3, 2, 1]);
    alterIsr(img, [3, 2]); // 3 caught up, 1 lagged out: writes are acknowledged by {3, 2}
    commit(img, decideFenceBroker(img, 3)); // 3 is fenced (killed, its copy kept): KIP-966 keeps it eligible
    expect(part(img, "t")).toMatchObject({ replicas: [3, 2, 1], isr: [2], elr: [3], leader: 2 });
    // Reverting to {2, 1} would drop 3, the one replica besides 2 known to hold every committed
    // record; 2 may have lost them in a power loss the controller has not heard of yet.
    const revert = () => decideAlterReassignment(img, { topic: "t", partition: 0, replicas: [2, 1] });
    expect(expectRejected(img, "INVALID_REPLICA_ASSIGNMENT", revert).message).toMatch(
      /eligible leader replica 3 would leave, and ISR \[2\] with eligible replicas \[\] would be below min.insync.replicas 2/,
    );
    expectRejected(img, "INVALID_REPLICA_ASSIGNMENT", () => decideAlterReassignment(img, { topic: "t", partition: 0, replicas: null }));
    // A target keeping 3 is fine.
    expect(pure(img, () => decideAlterReassignment(img, { topic: "t", partition: 0, replicas: [3, 2] }))).not.toEqual([]);
    // Once 3 is back (unfenced, in the ISR) and 1 caught up, the revert keeps ISR {2, 1}.
    heartbeat(img, 3);
    alterIsr(img, [3, 2, 1]);
    reassign(img, [2, 1]);
    expect(part(img, "t")).toMatchObject({ replicas: [2, 1], isr: [2, 1], leader: 2 });
  });

  it("a new target replaces the ongoing reassignment, from the same original replicas", () => {
    const img = clusterOf([1, 2, 3, 4, 5]);
    topicWith(img, "t", [[1, 2, 3]]);
    reassign(img, [4, 2, 3]);
    reassign(img, [5, 2, 3]);
    expect(part(img, "t")).toMatchObject({ replicas: [5, 2, 3, 1], addingReplicas: [5], removingReplicas: [1] });
  });

  it("a target already in the ISR (a shrink or a reorder) completes at once; the same target is no change", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [
      [1, 2, 3],
      [1, 2, 3],
    ]);
    reassign(img, [2, 3]);
    expect(part(img, "t")).toMatchObject({ replicas: [2, 3], isr: [2, 3], leader: 2 });
    expect(part(img, "t").removingReplicas).toBeUndefined();
    reassign(img, [3, 1, 2], 1);
    expect(part(img, "t", 1)).toMatchObject({ replicas: [3, 1, 2], leader: 1 });
    expect(pure(img, () => decideAlterReassignment(img, { topic: "t", partition: 1, replicas: [3, 1, 2] }))).toEqual([]);
  });

  it("completes on the periodic check once a target replica in the ISR can lead", () => {
    const img3 = clusterOf([1, 2, 3]);
    topicWith(img3, "t", [[1, 2]]);
    commit(img3, decideAlterReassignment(img3, { topic: "t", partition: 0, replicas: [3] }));
    const p = part(img3, "t");
    // 3 joins the ISR (a bare ISR change, without the completion) and is fenced: nothing can complete.
    commit(img3, [
      {
        type: "partition-change",
        v: 1,
        topic: "t",
        partition: 0,
        leader: 1,
        isr: [1, 3],
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch + 1,
      },
    ]);
    expect(part(img3, "t").replicas).toEqual([3, 1, 2]);
    commit(img3, [{ type: "broker-fence", v: 1, nodeId: 3, brokerEpoch: img3.brokers.get(3)!.epoch, fenced: true }]);
    expect(pure(img3, () => decideCompleteReassignments(img3))).toEqual([]);
    heartbeat(img3, 3); // unfenced again
    commit(
      img3,
      pure(img3, () => decideCompleteReassignments(img3)),
    );
    expect(part(img3, "t")).toMatchObject({ replicas: [3], isr: [3], leader: 3 });
  });

  it("refuses bad input with a specific error and changes nothing", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2]]);
    const alter = (topic: string, partition: number, replicas: number[] | null) => () =>
      decideAlterReassignment(img, { topic, partition, replicas });
    expect(expectRejected(img, "INVALID_REPLICA_ASSIGNMENT", alter("t", 0, [1, 9])).message).toMatch(/broker 9 is not registered/);
    expect(expectRejected(img, "INVALID_REPLICA_ASSIGNMENT", alter("t", 0, [2, 2])).message).toMatch(/names a broker twice/);
    expect(expectRejected(img, "INVALID_REPLICA_ASSIGNMENT", alter("t", 0, [])).message).toMatch(/replication factor 0/);
    expect(expectRejected(img, "INVALID_REPLICA_ASSIGNMENT", alter("t", 0, [1, -3])).message).toMatch(/-3 is not a broker id/);
    expectRejected(img, "UNKNOWN_TOPIC_OR_PARTITION", alter("nope", 0, [1, 2]));
    expectRejected(img, "UNKNOWN_TOPIC_OR_PARTITION", alter("t", 5, [1, 2]));
    expectRejected(img, "NO_REASSIGNMENT_IN_PROGRESS", alter("t", 0, null));
  });

  it("survives a snapshot: the image rebuilt from its records equals it", () => {
    const img = clusterOf([1, 2, 3, 4]);
    topicWith(img, "t", [[1, 2, 3]]);
    reassign(img, [4, 2, 3]);
    const copy = MetadataImage.fromSnapshot(snapshotRecords(img), img.offset);
    expect(dump(copy)).toEqual(dump(img));
    expect(part(copy, "t").addingReplicas).toEqual([4]);
  });
});
