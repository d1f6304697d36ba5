/**
 * Eligible leader replicas (KIP-966, issue 21) in the controller's decisions: which replicas
 * stay electable when the ISR shrinks below min.insync.replicas, election from them when the
 * ISR empties, and a broker that registers after an unclean shutdown leaving them.
 *
 * The first two tests replay the same failure sequence with ELR on and with ELR off and unclean
 * election on. Beside the image they keep each replica's log end under Kafka's rules (a write is
 * acknowledged only when the ISR has at least min.insync.replicas members, and every ISR member
 * has it; a power loss drops what a replica had not fsynced), so they can say whether the
 * elected leader holds every acknowledged write. The real replication path of the same
 * decisions is exercised by the cluster simulator (seed 1317, test/sim/cluster-sim/elr.test.ts).
 */
import { describe, expect, it } from "vitest";
import {
  type ElrOptions,
  decideAlterPartition,
  decideBrokerHeartbeat,
  decideFenceBroker,
  decideRegisterBroker,
} from "../../../src/metadata/cluster-controller.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { clusterOf, commit, dump, part, pure, register, topicWith } from "./cluster-helpers.ts";

const epochOf = (img: MetadataImage, id: number) => img.brokers.get(id)!.epoch;

/** A 3-broker cluster with topic "t": RF 3, min.insync.replicas 2, and each replica's log end (offsets 0..end-1). */
function scenario(configs: Record<string, string> = {}) {
  const img = clusterOf([1, 2, 3]);
  topicWith(img, "t", [[1, 2, 3]], { "min.insync.replicas": "2", ...configs });
  const logEnd = new Map([
    [1, 0],
    [2, 0],
    [3, 0],
  ]);
  let acked = 0;
  return {
    img,
    logEnd,
    get acked() {
      return acked;
    },
    /** A producer's acks=all write: acknowledged only with the ISR at min.insync.replicas or more (strict min ISR). */
    produce(n: number): boolean {
      const p = part(img, "t");
      if (p.leader === -1 || p.isr.length < 2) return false;
      const end = logEnd.get(p.leader)! + n;
      for (const r of p.isr) logEnd.set(r, end);
      acked = end;
      return true;
    },
    fence(id: number, o: ElrOptions) {
      commit(
        img,
        pure(img, () => decideFenceBroker(img, id, o)),
      );
    },
    /** Restarts broker `id` (new incarnation); a power loss drops the writes it had not fsynced. */
    restart(id: number, inc: string, powerLoss: boolean, o: ElrOptions) {
      if (powerLoss) logEnd.set(id, 0);
      commit(
        img,
        decideRegisterBroker(
          img,
          { nodeId: id, incarnationId: inc, address: `h${id}:9092`, rack: "", roles: ["broker"], uncleanShutdown: powerLoss },
          () => false,
          o,
        ),
      );
      const b = img.brokers.get(id)!;
      const d = decideBrokerHeartbeat(
        img,
        { nodeId: id, brokerEpoch: b.epoch, currentMetadataOffset: img.offset, wantFence: false, wantShutDown: false },
        o,
      );
      commit(img, d.records);
    },
  };
}

describe("eligible leader replicas (KIP-966)", () => {
  it("RF 3, min ISR 2: a sequence that empties the ISR elects an eligible replica holding every acknowledged write", () => {
    const on: ElrOptions = { eligibleLeaderReplicas: true };
    const s = scenario();
    expect(s.produce(10)).toBe(true);
    s.fence(3, on); // 3 is cut off; ISR {1,2} is still at min ISR, writes go on
    expect(part(s.img, "t")).toMatchObject({ leader: 1, isr: [1, 2] });
    expect(part(s.img, "t").elr).toBeUndefined();
    expect(s.produce(10)).toBe(true); // 3 misses offsets 10..19
    s.fence(2, on); // ISR {1} < min ISR: 2 becomes eligible, the high watermark stops
    expect(part(s.img, "t")).toMatchObject({ leader: 1, isr: [1], elr: [2] });
    expect(s.produce(10)).toBe(false);
    s.fence(1, on); // the ISR empties into the ELR
    expect(part(s.img, "t")).toMatchObject({ leader: -1, isr: [], elr: [1, 2] });
    s.restart(1, "inc-1b", true, on); // 1 lost power: it lost unflushed writes and leaves the ELR
    expect(part(s.img, "t")).toMatchObject({ leader: -1, isr: [], elr: [2], lastKnownElr: [1] });
    s.restart(3, "inc-3b", false, on); // 3 is neither in the ISR nor eligible
    expect(part(s.img, "t")).toMatchObject({ leader: -1, isr: [] });
    s.restart(2, "inc-2b", false, on); // 2 was killed on the same machine boot: clean, elected from the ELR
    const p = part(s.img, "t");
    expect(p).toMatchObject({ leader: 2, isr: [2], lastKnownElr: [1] });
    expect(p.elr).toBeUndefined();
    expect(s.logEnd.get(p.leader)).toBeGreaterThanOrEqual(s.acked); // no acknowledged write lost
    expect(s.acked).toBe(20);
    // The followers catch up and rejoin: the ISR is back at min ISR and both sets clear.
    commit(
      s.img,
      decideAlterPartition(
        s.img,
        2,
        epochOf(s.img, 2),
        { topic: "t", partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [2, 3] },
        on,
      ),
    );
    expect(part(s.img, "t")).toEqual({ ...p, isr: [2, 3], partitionEpoch: p.partitionEpoch + 1, lastKnownElr: undefined });
    expect(Object.keys(part(s.img, "t"))).not.toContain("lastKnownElr");
  });

  it("the same sequence with ELR off and unclean election on elects the stale replica and loses acknowledged writes", () => {
    const off: ElrOptions = { eligibleLeaderReplicas: false };
    const s = scenario({ "unclean.leader.election.enable": "true" });
    expect(s.produce(10)).toBe(true);
    s.fence(3, off);
    expect(s.produce(10)).toBe(true);
    s.fence(2, off);
    expect(s.produce(10)).toBe(false);
    s.fence(1, off); // the last ISR member stays in the ISR, leaderless
    expect(part(s.img, "t")).toEqual({
      topic: "t",
      partition: 0,
      replicas: [1, 2, 3],
      isr: [1],
      leader: -1,
      leaderEpoch: 1,
      partitionEpoch: 3,
    });
    s.restart(1, "inc-1b", true, off); // power loss: nothing tells the controller
    s.restart(3, "inc-3b", false, off);
    // 1 came back first and leads from the ISR it never left, without offsets 0..19; had 3 come
    // first, the unclean election would have picked it, without offsets 10..19.
    const p = part(s.img, "t");
    expect(p.elr).toBeUndefined();
    expect(p.leader).toBe(1);
    expect(s.logEnd.get(p.leader)).toBeLessThan(s.acked);
    // And with 1 gone for good, unclean election picks 3.
    const u = scenario({ "unclean.leader.election.enable": "true" });
    u.produce(10);
    u.fence(3, off);
    u.produce(10);
    u.fence(2, off);
    u.fence(1, off);
    u.restart(3, "inc-3b", false, off);
    expect(part(u.img, "t")).toMatchObject({ leader: 3, isr: [3] });
    expect(u.logEnd.get(3)).toBe(10);
    expect(u.acked).toBe(20);
  });

  it("an unclean shutdown leaves the ELR unless the ISR is empty and it is the last known leader", () => {
    const on: ElrOptions = {};
    const s = scenario();
    s.fence(3, on);
    s.fence(2, on);
    s.fence(1, on); // 1 is the ISR's last member: the last known leader
    expect(part(s.img, "t")).toMatchObject({ leader: -1, isr: [], elr: [1, 2], lastKnownLeader: 1 });
    s.restart(1, "inc-1b", true, on);
    expect(part(s.img, "t")).toMatchObject({ leader: -1, isr: [], elr: [2], lastKnownElr: [1], lastKnownLeader: 1 });
    // Every eligible replica lost power: the last known leader is elected (Kafka's last known
    // leader election) rather than the partition left offline for good, or 2, which left the
    // ISR before it.
    s.restart(2, "inc-2b", true, on);
    const p = part(s.img, "t");
    expect(p).toMatchObject({ leader: 1, isr: [1], lastKnownElr: [2] });
    expect(p.lastKnownLeader).toBeUndefined();
    // Alone in the ELR as the last known leader, it stays eligible after an unclean shutdown.
    const t = scenario();
    t.fence(3, on);
    t.fence(2, on);
    t.restart(2, "inc-2b", false, on); // clean: 2 stays eligible and active
    t.fence(1, on); // the ISR empties: 2 leads
    t.fence(2, on);
    expect(part(t.img, "t")).toMatchObject({ leader: -1, isr: [], elr: [1, 2], lastKnownLeader: 2 });
    t.restart(1, "inc-1b", true, on);
    t.restart(2, "inc-2c", true, on);
    expect(part(t.img, "t")).toMatchObject({ leader: 2, isr: [2], lastKnownElr: [1] });
  });

  it("seed 673: a replica that left the ISR before its last member is not elected after an unclean shutdown", () => {
    const on: ElrOptions = {};
    const s = scenario();
    expect(s.produce(100)).toBe(true); // ISR {1,2,3}
    s.fence(2, on); // ISR {1,3}: still at min ISR
    expect(s.produce(1)).toBe(true);
    // 3 loses power: its unsynced tail is gone, but its registration lives on until its session
    // expires. Writes acknowledged by {1,3} just before are on 1 only (and on 3's lost tail).
    expect(s.produce(10)).toBe(true);
    s.logEnd.set(3, 101);
    s.fence(3, on); // session expired: ISR {1}, ELR {3}
    expect(part(s.img, "t")).toMatchObject({ leader: 1, isr: [1], elr: [3] });
    s.fence(1, on); // 1 loses power too (its flushed log keeps every acknowledged write)
    expect(part(s.img, "t")).toMatchObject({ leader: -1, isr: [], elr: [1, 3] });
    // 1 registers first and reports its unclean shutdown: it leaves the ELR, 3 is still in it.
    commit(
      s.img,
      decideRegisterBroker(
        s.img,
        { nodeId: 1, incarnationId: "inc-1b", address: "h1:9092", rack: "", roles: ["broker"], uncleanShutdown: true },
        () => false,
        on,
      ),
    );
    const b1 = s.img.brokers.get(1)!;
    commit(
      s.img,
      decideBrokerHeartbeat(
        s.img,
        { nodeId: 1, brokerEpoch: b1.epoch, currentMetadataOffset: s.img.offset, wantFence: false, wantShutDown: false },
        on,
      ).records,
    );
    expect(part(s.img, "t")).toMatchObject({ leader: -1, isr: [], elr: [3], lastKnownElr: [1] });
    // 3 registers after its unclean shutdown: it must not stay eligible (it lacks offsets 101..110);
    // the last known leader 1, active, is elected instead.
    commit(
      s.img,
      decideRegisterBroker(
        s.img,
        { nodeId: 3, incarnationId: "inc-3b", address: "h3:9092", rack: "", roles: ["broker"], uncleanShutdown: true },
        () => false,
        on,
      ),
    );
    const p = part(s.img, "t");
    expect(p).toMatchObject({ leader: 1, isr: [1], lastKnownElr: [3] });
    expect(p.elr).toBeUndefined();
    expect(s.logEnd.get(p.leader)).toBeGreaterThanOrEqual(s.acked);
    expect(s.acked).toBe(111);
  });

  it("with unclean election on, an out-of-sync replica is elected only when no ISR or ELR member is active", () => {
    const on: ElrOptions = {};
    const s = scenario({ "unclean.leader.election.enable": "true" });
    s.fence(3, on);
    s.fence(2, on);
    s.restart(2, "inc-2b", false, on); // 2 is active and eligible, but the ISR {1} is not empty
    expect(part(s.img, "t")).toMatchObject({ leader: 1, isr: [1], elr: [2] });
    s.fence(1, on); // the ISR empties: the active eligible replica 2 leads
    expect(part(s.img, "t")).toMatchObject({ leader: 2, isr: [2], elr: [1] });
    s.fence(2, on);
    expect(part(s.img, "t")).toMatchObject({ leader: -1, isr: [], elr: [1, 2] });
    s.restart(3, "inc-3b", false, on); // no eligible replica is active: 3 is elected unclean
    expect(part(s.img, "t")).toMatchObject({ leader: 3, isr: [3], elr: [1, 2] });
  });

  it("a replica back in the ISR leaves the ELR; the ELR clears once the ISR reaches min ISR", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2, 3]], { "min.insync.replicas": "3" });
    const alter = (newIsr: number[]) => {
      const p = part(img, "t");
      commit(
        img,
        decideAlterPartition(img, 1, epochOf(img, 1), {
          topic: "t",
          partition: 0,
          leaderEpoch: p.leaderEpoch,
          partitionEpoch: p.partitionEpoch,
          newIsr,
        }),
      );
    };
    alter([1]);
    expect(part(img, "t")).toMatchObject({ isr: [1], elr: [2, 3] });
    alter([1, 2]);
    expect(part(img, "t")).toMatchObject({ isr: [1, 2], elr: [3] });
    alter([1, 2, 3]);
    expect(part(img, "t").elr).toBeUndefined();
    expect(part(img, "t").lastKnownElr).toBeUndefined();
  });

  it("an unclean registration of the unfenced last ISR member moves it out of the ISR and the ELR at once", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2, 3]], { "min.insync.replicas": "2" });
    commit(img, decideFenceBroker(img, 3));
    commit(img, decideFenceBroker(img, 2)); // ISR {1}, ELR {2}
    // 1 lost power and comes back before its session expired (seed 1317's path).
    register(img, 1, "inc-1b", () => false, true);
    expect(part(img, "t")).toMatchObject({ leader: -1, isr: [], elr: [2], lastKnownElr: [1] });
    expect(img.brokers.get(1)).toMatchObject({ fenced: true });
  });

  it("the only replica of a partition stays eligible after an unclean shutdown", () => {
    const img = clusterOf([1]);
    topicWith(img, "t", [[1]]);
    commit(img, decideFenceBroker(img, 1));
    register(img, 1, "inc-1b", () => false, true);
    expect(part(img, "t")).toMatchObject({ leader: -1, isr: [], elr: [1] });
    const b = img.brokers.get(1)!;
    commit(
      img,
      decideBrokerHeartbeat(img, {
        nodeId: 1,
        brokerEpoch: b.epoch,
        currentMetadataOffset: img.offset,
        wantFence: false,
        wantShutDown: false,
      }).records,
    );
    expect(part(img, "t")).toMatchObject({ leader: 1, isr: [1] });
  });

  it("ELR off: no partition record carries ELR, and the ISR keeps its last member", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2, 3]], { "min.insync.replicas": "2" });
    const off = { eligibleLeaderReplicas: false };
    for (const id of [3, 2, 1]) {
      const records = decideFenceBroker(img, id, off);
      for (const r of records) expect(r).not.toHaveProperty("elr");
      commit(img, records);
    }
    expect(part(img, "t")).toEqual({
      topic: "t",
      partition: 0,
      replicas: [1, 2, 3],
      isr: [1],
      leader: -1,
      leaderEpoch: 1,
      partitionEpoch: 3,
    });
  });

  it("snapshots keep the ELR and the last known ELR", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2, 3]], { "min.insync.replicas": "2" });
    for (const id of [3, 2, 1]) commit(img, decideFenceBroker(img, id));
    register(img, 1, "inc-1b", () => false, true);
    expect(part(img, "t")).toMatchObject({ elr: [2], lastKnownElr: [1] });
    const copy = MetadataImage.fromSnapshot(snapshotRecords(img), img.offset);
    expect(dump(copy)).toEqual(dump(img));
  });
});
