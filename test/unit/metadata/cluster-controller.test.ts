import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../src/base/random.ts";
import {
  decideAlterPartition,
  decideBrokerHeartbeat,
  decideCreatePartitions,
  decideCreateTopic,
  decideFenceBroker,
  decidePreferredLeaderElection,
  decideRegisterBroker,
} from "../../../src/metadata/controller.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { clusterOf, commit, createTopic, expectRejected, heartbeat, part, pure, register, topicWith } from "./cluster-helpers.ts";

const reg = (nodeId: number, incarnationId: string) => ({
  nodeId,
  incarnationId,
  address: `h${nodeId}:9092`,
  rack: "rack-a",
  roles: ["broker"],
});
const epochOf = (img: MetadataImage, id: number) => img.brokers.get(id)!.epoch;
const fence = (img: MetadataImage, id: number) =>
  commit(
    img,
    pure(img, () => decideFenceBroker(img, id)),
  );

describe("decideRegisterBroker", () => {
  it("registers a new broker fenced, with its epoch the offset of the record", () => {
    const img = clusterOf([1]);
    const records = pure(img, () => decideRegisterBroker(img, reg(2, "x"), () => false));
    expect(records).toEqual([
      { type: "broker", v: 1, nodeId: 2, address: "h2:9092", roles: ["broker"], fenced: true, incarnationId: "x", rack: "rack-a" },
    ]);
    commit(img, records);
    expect(img.brokers.get(2)).toMatchObject({ fenced: true, epoch: img.offset, incarnationId: "x", rack: "rack-a" });
  });

  it("answers the same incarnation registering again with no records", () => {
    const img = clusterOf([1]);
    expect(pure(img, () => decideRegisterBroker(img, reg(1, "inc-1"), () => true))).toEqual([]);
  });

  it("replaces a live registration at once when the new incarnation names it as its data dir's previous process", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2, 3]]);
    // Another process naming some other predecessor: still a duplicate while the session lasts.
    expectRejected(img, "DUPLICATE_BROKER_REGISTRATION", () =>
      decideRegisterBroker(img, { ...reg(1, "next"), previousIncarnationId: "someone-else" }, () => true),
    );
    // The data dir's next process (the registered one is gone): replaced now, its partitions moved.
    commit(
      img,
      pure(img, () => decideRegisterBroker(img, { ...reg(1, "next"), previousIncarnationId: "inc-1" }, () => true)),
    );
    expect(img.brokers.get(1)).toMatchObject({ incarnationId: "next", fenced: true });
    expect(part(img, "t")).toMatchObject({ leader: 2, isr: [2, 3], leaderEpoch: 1 });
  });

  it("rejects a duplicate node id while the old session is alive, accepts it once the session expired", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2, 3]]);
    const e = expectRejected(img, "DUPLICATE_BROKER_REGISTRATION", () => decideRegisterBroker(img, reg(1, "other"), () => true));
    expect(e.message).toMatch(/^node_id:/);
    // Session expired (not yet fenced): the new incarnation takes over; what the old one led moves.
    const old = epochOf(img, 1);
    commit(
      img,
      pure(img, () => decideRegisterBroker(img, reg(1, "other"), () => false)),
    );
    expect(img.brokers.get(1)).toMatchObject({ incarnationId: "other", fenced: true });
    expect(epochOf(img, 1)).toBeGreaterThan(old);
    expect(part(img, "t")).toMatchObject({ leader: 2, isr: [2, 3], leaderEpoch: 1, partitionEpoch: 1 });
  });

  it("accepts a new incarnation of a fenced broker even if it was heard from recently", () => {
    const img = clusterOf([1, 2]);
    fence(img, 1);
    commit(
      img,
      decideRegisterBroker(img, reg(1, "new"), () => true),
    );
    expect(img.brokers.get(1)!.incarnationId).toBe("new");
  });

  it("rejects requests without an incarnation id or with a bad node id", () => {
    const img = clusterOf([1]);
    expect(expectRejected(img, "INVALID_REQUEST", () => decideRegisterBroker(img, reg(2, ""), () => false)).message).toMatch(
      /^incarnation_id:/,
    );
    expectRejected(img, "INVALID_REQUEST", () => decideRegisterBroker(img, reg(-1, "x"), () => false));
  });
});

describe("decideBrokerHeartbeat", () => {
  const hb = (
    nodeId: number,
    brokerEpoch: number,
    currentMetadataOffset: number,
    more: { wantFence?: boolean; wantShutDown?: boolean } = {},
  ) => ({
    nodeId,
    brokerEpoch,
    currentMetadataOffset,
    wantFence: more.wantFence ?? false,
    wantShutDown: more.wantShutDown ?? false,
  });

  it("rejects an unknown node and a stale epoch", () => {
    const img = clusterOf([1]);
    expectRejected(img, "BROKER_ID_NOT_REGISTERED", () => decideBrokerHeartbeat(img, hb(9, 0, 0)));
    const e = expectRejected(img, "STALE_BROKER_EPOCH", () => decideBrokerHeartbeat(img, hb(1, epochOf(img, 1) - 1, img.offset)));
    expect(e.message).toMatch(/^broker_epoch:/);
  });

  it("keeps a broker fenced until it has caught up with its registration, then unfences it", () => {
    const img = clusterOf([1]);
    const epoch = register(img, 2);
    const behind = pure(img, () => decideBrokerHeartbeat(img, hb(2, epoch, epoch - 1)));
    expect(behind).toEqual({ records: [], response: { isCaughtUp: false, isFenced: true, shouldShutDown: false } });
    // The caller may demand a later offset than the registration.
    expect(decideBrokerHeartbeat(img, hb(2, epoch, epoch), { registeredOffset: epoch + 5 }).response.isCaughtUp).toBe(false);
    const ok = pure(img, () => decideBrokerHeartbeat(img, hb(2, epoch, epoch)));
    expect(ok.response).toEqual({ isCaughtUp: true, isFenced: false, shouldShutDown: false });
    expect(ok.records).toEqual([{ type: "broker-fence", v: 1, nodeId: 2, brokerEpoch: epoch, fenced: false }]);
    commit(img, ok.records);
    expect(img.unfencedBrokers()).toEqual([1, 2]);
    // An unfenced broker's heartbeat changes nothing.
    expect(decideBrokerHeartbeat(img, hb(2, epoch, img.offset))).toEqual({
      records: [],
      response: { isCaughtUp: true, isFenced: false, shouldShutDown: false },
    });
  });

  it("keeps a broker fenced by its session until it has caught up with that fencing, not only its registration", () => {
    // cluster-sim seed 6223: broker 1, cut off, was fenced and its leaderships moved; its image
    // still named it leader when its heartbeats came through again, and it was unfenced at once
    // (its image was past its registration), so it went on answering as that partition's leader.
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2, 3]]);
    const epoch = epochOf(img, 1);
    const lagging = img.offset; // the broker's image before the fencing: past its registration
    fence(img, 1);
    const fencedOffset = img.brokers.get(1)!.fencedOffset;
    expect(fencedOffset).toBeGreaterThan(lagging);
    expect(part(img, "t", 0).leader).toBe(2);
    const behind = pure(img, () => decideBrokerHeartbeat(img, hb(1, epoch, lagging)));
    expect(behind).toEqual({ records: [], response: { isCaughtUp: false, isFenced: true, shouldShutDown: false } });
    const ok = pure(img, () => decideBrokerHeartbeat(img, hb(1, epoch, fencedOffset)));
    expect(ok.response).toEqual({ isCaughtUp: true, isFenced: false, shouldShutDown: false });
    expect(ok.records[0]).toEqual({ type: "broker-fence", v: 1, nodeId: 1, brokerEpoch: epoch, fenced: false });
    // A snapshot keeps where the fencing was.
    const restored = MetadataImage.fromSnapshot(snapshotRecords(img), img.offset);
    expect(restored.brokers.get(1)).toEqual(img.brokers.get(1));
    expect(restored.brokers.get(2)!.fencedOffset).toBe(epochOf(img, 2));
  });

  it("unfencing gives the broker the leaderless partitions whose ISR or ELR holds it", () => {
    const img = clusterOf([1, 2]);
    topicWith(img, "t", [[1], [2, 1], [2]]);
    fence(img, 1);
    expect(part(img, "t", 0)).toMatchObject({ leader: -1, isr: [], elr: [1], leaderEpoch: 1, partitionEpoch: 1 });
    expect(part(img, "t", 1)).toMatchObject({ leader: 2, isr: [2], leaderEpoch: 0, partitionEpoch: 1 });
    const epoch = register(img, 1, "inc-1b");
    expect(heartbeat(img, 1)).toEqual({ isCaughtUp: true, isFenced: false, shouldShutDown: false });
    expect(epochOf(img, 1)).toBe(epoch);
    expect(part(img, "t", 0)).toEqual({ topic: "t", partition: 0, replicas: [1], leader: 1, isr: [1], leaderEpoch: 2, partitionEpoch: 2 });
    expect(part(img, "t", 1)).toMatchObject({ leader: 2, isr: [2], partitionEpoch: 1 }); // rejoins the ISR through AlterPartition
  });

  it("unfencing elects an out-of-sync replica of a leaderless partition only where unclean election is enabled", () => {
    for (const unclean of [true, false]) {
      const img = clusterOf([1, 2]);
      topicWith(img, "t", [[1, 2]], { "unclean.leader.election.enable": String(unclean) });
      fence(img, 2); // ISR [1]
      fence(img, 1); // ISR [], ELR [1], leaderless: 2 was out of the ISR and fenced
      expect(part(img, "t")).toMatchObject({ leader: -1, isr: [], elr: [1] });
      register(img, 2, "inc-2b");
      heartbeat(img, 2);
      // No ISR or ELR member is active: unclean election where the topic allows it.
      expect(part(img, "t")).toMatchObject(unclean ? { leader: 2, isr: [2] } : { leader: -1, isr: [], elr: [1] });
    }
  });

  it("fences a broker that asks to be fenced", () => {
    const img = clusterOf([1, 2]);
    topicWith(img, "t", [[1, 2]]);
    const d = pure(img, () => decideBrokerHeartbeat(img, hb(1, epochOf(img, 1), img.offset, { wantFence: true })));
    expect(d.response).toEqual({ isCaughtUp: true, isFenced: true, shouldShutDown: false });
    commit(img, d.records);
    expect(img.brokers.get(1)!.fenced).toBe(true);
    expect(part(img, "t")).toMatchObject({ leader: 2, isr: [2] });
    // Fenced already, and it still wants to be: nothing more, and no unfencing.
    expect(decideBrokerHeartbeat(img, hb(1, epochOf(img, 1), img.offset, { wantFence: true })).records).toEqual([]);
  });

  it("controlled shutdown moves every leader to another ISR member, leaves the ISRs, then lets the broker go", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [
      [1, 2, 3],
      [1, 3, 2],
      [2, 1, 3],
      [3, 2, 1],
    ]);
    const epoch = epochOf(img, 1);
    const d = pure(img, () => decideBrokerHeartbeat(img, hb(1, epoch, img.offset, { wantShutDown: true })));
    expect(d.response.shouldShutDown).toBe(false); // it still leads partitions in the image
    expect(d.records[0]).toEqual({ type: "broker-shutdown", v: 1, nodeId: 1, brokerEpoch: epoch });
    commit(img, d.records);
    expect(img.brokers.get(1)!.inControlledShutdown).toBe(true);
    expect([0, 1, 2, 3].map((p) => [part(img, "t", p).leader, part(img, "t", p).isr])).toEqual([
      [2, [2, 3]],
      [3, [3, 2]],
      [2, [2, 3]],
      [3, [3, 2]],
    ]);
    expect(part(img, "t", 0)).toMatchObject({ leaderEpoch: 1, partitionEpoch: 1 });
    expect(part(img, "t", 2)).toMatchObject({ leaderEpoch: 0, partitionEpoch: 1 });
    const next = pure(img, () => decideBrokerHeartbeat(img, hb(1, epoch, img.offset, { wantShutDown: true })));
    expect(next).toEqual({ records: [], response: { isCaughtUp: true, isFenced: false, shouldShutDown: true } });
    // While shutting down it neither leads again nor rejoins an ISR; a new registration clears it.
    expect(decidePreferredLeaderElection(img).records).toEqual([]);
    expectRejected(img, "INELIGIBLE_REPLICA", () =>
      decideAlterPartition(img, 2, epochOf(img, 2), { topic: "t", partition: 0, leaderEpoch: 1, partitionEpoch: 1, newIsr: [2, 3, 1] }),
    );
    register(img, 1, "inc-1b");
    expect(img.brokers.get(1)!.inControlledShutdown).toBe(false);
  });

  it("controlled shutdown of the only ISR member leaves the partition leaderless instead of waiting forever", () => {
    const img = clusterOf([1, 2]);
    topicWith(img, "t", [[1], [1, 2]]);
    fence(img, 2);
    const epoch = epochOf(img, 1);
    expect(heartbeat(img, 1, { wantShutDown: true }).shouldShutDown).toBe(false);
    expect(part(img, "t", 0)).toMatchObject({ leader: -1, isr: [], elr: [1], leaderEpoch: 1 });
    expect(part(img, "t", 1)).toMatchObject({ leader: -1, isr: [], elr: [1] });
    expect(decideBrokerHeartbeat(img, hb(1, epoch, img.offset, { wantShutDown: true })).response.shouldShutDown).toBe(true);
  });

  it("a broker that leads nothing may shut down at once", () => {
    const img = clusterOf([1, 2]);
    topicWith(img, "t", [[2, 1]]);
    const d = decideBrokerHeartbeat(img, hb(1, epochOf(img, 1), img.offset, { wantShutDown: true }));
    expect(d.response.shouldShutDown).toBe(true);
    commit(img, d.records);
    expect(part(img, "t")).toMatchObject({ leader: 2, isr: [2], leaderEpoch: 0, partitionEpoch: 1 });
  });
});

describe("decideFenceBroker", () => {
  it("elects the next ISR member of an RF=3 partition with leaderEpoch+1, and shrinks the ISRs it followed in", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [
      [1, 2, 3],
      [2, 1, 3],
    ]);
    const records = pure(img, () => decideFenceBroker(img, 1));
    expect(records[0]).toEqual({ type: "broker-fence", v: 1, nodeId: 1, brokerEpoch: epochOf(img, 1), fenced: true });
    commit(img, records);
    expect(part(img, "t", 0)).toEqual({
      topic: "t",
      partition: 0,
      replicas: [1, 2, 3],
      isr: [2, 3],
      leader: 2,
      leaderEpoch: 1,
      partitionEpoch: 1,
    });
    expect(part(img, "t", 1)).toEqual({
      topic: "t",
      partition: 1,
      replicas: [2, 1, 3],
      isr: [2, 3],
      leader: 2,
      leaderEpoch: 0,
      partitionEpoch: 1,
    });
    expect(img.unfencedBrokers()).toEqual([2, 3]);
  });

  it("skips fenced ISR members when electing", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [[1, 2, 3]]);
    commit(img, [{ type: "broker-fence", v: 1, nodeId: 2, brokerEpoch: epochOf(img, 2), fenced: true }]); // ISR untouched on purpose
    fence(img, 1);
    expect(part(img, "t")).toMatchObject({ leader: 3, isr: [2, 3] });
  });

  it("leaves the only ISR member's partition leaderless, that member eligible (KIP-966); without ELR, in the ISR", () => {
    const img = clusterOf([1, 2]);
    topicWith(img, "t", [[1]]);
    const noElr = img.offset;
    fence(img, 1);
    expect(part(img, "t")).toEqual({
      topic: "t",
      partition: 0,
      replicas: [1],
      isr: [],
      elr: [1],
      lastKnownLeader: 1,
      leader: -1,
      leaderEpoch: 1,
      partitionEpoch: 1,
    });
    const legacy = clusterOf([1, 2]);
    topicWith(legacy, "t", [[1]]);
    expect(legacy.offset).toBe(noElr);
    commit(legacy, decideFenceBroker(legacy, 1, { eligibleLeaderReplicas: false }));
    expect(part(legacy, "t")).toEqual({ topic: "t", partition: 0, replicas: [1], isr: [1], leader: -1, leaderEpoch: 1, partitionEpoch: 1 });
  });

  it("elects an out-of-sync replica only when the topic enables unclean election", () => {
    for (const unclean of [true, false]) {
      const img = clusterOf([1, 2, 3]);
      topicWith(img, "t", [[1, 2, 3]], unclean ? { "unclean.leader.election.enable": "true" } : {});
      commit(
        img,
        decideAlterPartition(img, 1, epochOf(img, 1), { topic: "t", partition: 0, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1] }),
      );
      // Without eligible leader replicas (with them, 1 stays eligible and nobody is elected unclean).
      commit(img, decideFenceBroker(img, 1, { eligibleLeaderReplicas: false }));
      expect(part(img, "t")).toMatchObject(
        unclean ? { leader: 2, isr: [2], leaderEpoch: 1, partitionEpoch: 2 } : { leader: -1, isr: [1], leaderEpoch: 1, partitionEpoch: 2 },
      );
    }
  });

  it("returns nothing for a fenced broker and rejects an unknown one", () => {
    const img = clusterOf([1, 2]);
    fence(img, 1);
    expect(decideFenceBroker(img, 1)).toEqual([]);
    expectRejected(img, "BROKER_ID_NOT_REGISTERED", () => decideFenceBroker(img, 7));
  });
});

describe("decideAlterPartition", () => {
  const setup = () => {
    const img = clusterOf([1, 2, 3, 4]);
    topicWith(img, "t", [[1, 2, 3]]);
    return img;
  };
  const alter = (
    img: MetadataImage,
    newIsr: number[],
    over: {
      nodeId?: number;
      brokerEpoch?: number;
      topic?: string;
      partition?: number;
      leaderEpoch?: number;
      partitionEpoch?: number;
      newIsrBrokerEpochs?: number[];
    } = {},
  ) => {
    const p = part(img, "t");
    const nodeId = over.nodeId ?? 1;
    return decideAlterPartition(img, nodeId, over.brokerEpoch ?? img.brokers.get(nodeId)?.epoch ?? 0, {
      topic: over.topic ?? "t",
      partition: over.partition ?? 0,
      leaderEpoch: over.leaderEpoch ?? p.leaderEpoch,
      partitionEpoch: over.partitionEpoch ?? p.partitionEpoch,
      newIsr,
      ...(over.newIsrBrokerEpochs ? { newIsrBrokerEpochs: over.newIsrBrokerEpochs } : {}),
    });
  };

  it("shrinks and expands the ISR: partition epoch + 1, leader epoch unchanged", () => {
    const img = setup();
    const shrink = pure(img, () => alter(img, [1, 3]));
    expect(shrink).toEqual([
      { type: "partition-change", v: 1, topic: "t", partition: 0, leader: 1, isr: [1, 3], leaderEpoch: 0, partitionEpoch: 1 },
    ]);
    commit(img, shrink);
    commit(img, alter(img, [1, 3, 2]));
    expect(part(img, "t")).toMatchObject({ isr: [1, 3, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 2 });
    expect(alter(img, [1, 3, 2])).toEqual([]); // already so
  });

  it("rejects each bad request with its error and changes nothing", () => {
    const img = setup();
    expect(expectRejected(img, "STALE_BROKER_EPOCH", () => alter(img, [1, 2], { brokerEpoch: 999 })).message).toMatch(/^broker_epoch:/);
    expectRejected(img, "STALE_BROKER_EPOCH", () => alter(img, [1, 2], { nodeId: 9, brokerEpoch: 1 }));
    expectRejected(img, "UNKNOWN_TOPIC_OR_PARTITION", () => alter(img, [1, 2], { topic: "nope" }));
    expectRejected(img, "UNKNOWN_TOPIC_OR_PARTITION", () => alter(img, [1, 2], { partition: 1 }));
    expectRejected(img, "NOT_LEADER_OR_FOLLOWER", () => alter(img, [2, 3], { nodeId: 2 }));
    expect(expectRejected(img, "FENCED_LEADER_EPOCH", () => alter(img, [1, 2], { leaderEpoch: 1 })).message).toMatch(/^leader_epoch:/);
    expect(expectRejected(img, "INVALID_UPDATE_VERSION", () => alter(img, [1, 2], { partitionEpoch: 1 })).message).toMatch(
      /^partition_epoch:/,
    );
    expect(expectRejected(img, "INVALID_REQUEST", () => alter(img, [2, 3])).message).toMatch(/^new_isr:.*lacks the leader/);
    expect(expectRejected(img, "INVALID_REQUEST", () => alter(img, [1, 2, 2])).message).toMatch(/repeats/);
    expect(expectRejected(img, "INVALID_REQUEST", () => alter(img, [1, 4])).message).toMatch(/not a replica/);
    expect(expectRejected(img, "INVALID_REQUEST", () => alter(img, [])).message).toMatch(/lacks the leader/);
  });

  it("rejects a stale partition epoch after another change went through", () => {
    const img = setup();
    const stale = part(img, "t").partitionEpoch;
    commit(img, alter(img, [1, 2]));
    expectRejected(img, "INVALID_UPDATE_VERSION", () => alter(img, [1], { partitionEpoch: stale }));
  });

  it("refuses to add a fenced replica or one in controlled shutdown, but lets the ISR shrink", () => {
    const img = setup();
    commit(img, alter(img, [1]));
    fence(img, 2);
    expect(expectRejected(img, "INELIGIBLE_REPLICA", () => alter(img, [1, 2])).message).toMatch(/^new_isr: replica 2 .* fenced/);
    heartbeat(img, 3, { wantShutDown: true });
    expect(expectRejected(img, "INELIGIBLE_REPLICA", () => alter(img, [1, 3])).message).toMatch(/controlled shutdown/);
  });

  it("refuses to add a replica caught up under an earlier registration of its broker (KIP-903)", () => {
    const img = setup();
    commit(img, alter(img, [1, 3]));
    const before = epochOf(img, 2);
    // Broker 2 restarted: fenced, registered again and unfenced while the leader's request,
    // based on fetches of its previous process, was on its way.
    fence(img, 2);
    register(img, 2, "inc-2b");
    heartbeat(img, 2);
    const now = epochOf(img, 2);
    expect(now).not.toBe(before);
    expect(
      expectRejected(img, "INELIGIBLE_REPLICA", () => alter(img, [1, 3, 2], { newIsrBrokerEpochs: [-1, -1, before] })).message,
    ).toMatch(/^new_isr_broker_epochs: replica 2 .* caught up as broker epoch \d+, not its current epoch/);
    // Members kept are not checked; the current registration joins.
    commit(img, alter(img, [1, 3, 2], { newIsrBrokerEpochs: [-1, before, now] }));
    expect(part(img, "t").isr).toEqual([1, 3, 2]);
  });
});

describe("decidePreferredLeaderElection", () => {
  /** t-0 led by 2 after 1 was fenced and came back into the ISR; t-1 led by its preferred 2. */
  const setup = () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "t", [
      [1, 2, 3],
      [2, 3, 1],
    ]);
    fence(img, 1);
    register(img, 1, "inc-1b");
    heartbeat(img, 1);
    return img;
  };

  it("waits for the preferred replica to be in the ISR, then moves leadership back to it", () => {
    const img = setup();
    expect(part(img, "t", 0)).toMatchObject({ leader: 2, isr: [2, 3] });
    expect(decidePreferredLeaderElection(img)).toEqual({ records: [], results: [] });
    const p = part(img, "t", 0);
    commit(
      img,
      decideAlterPartition(img, 2, epochOf(img, 2), {
        topic: "t",
        partition: 0,
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch,
        newIsr: [2, 3, 1],
      }),
    );
    const d = pure(img, () => decidePreferredLeaderElection(img));
    expect(d.results).toEqual([{ topic: "t", partition: 0, error: null }]);
    commit(img, d.records);
    expect(part(img, "t", 0)).toMatchObject({
      leader: 1,
      isr: [2, 3, 1],
      leaderEpoch: p.leaderEpoch + 1,
      partitionEpoch: p.partitionEpoch + 2,
    });
  });

  it("answers named partitions one by one", () => {
    const img = setup();
    const named = [
      { topic: "t", partition: 0 },
      { topic: "t", partition: 1 },
      { topic: "t", partition: 5 },
      { topic: "t", partition: 0 },
    ];
    const d = pure(img, () => decidePreferredLeaderElection(img, named));
    expect(d.records).toEqual([]);
    expect(d.results.map((r) => [r.partition, r.error?.kind.name ?? null])).toEqual([
      [0, "PREFERRED_LEADER_NOT_AVAILABLE"],
      [1, "ELECTION_NOT_NEEDED"],
      [5, "UNKNOWN_TOPIC_OR_PARTITION"],
    ]);
    // The preferred replica fenced: not available either.
    const img2 = clusterOf([1, 2]);
    topicWith(img2, "u", [[1, 2]]);
    fence(img2, 1);
    expect(decidePreferredLeaderElection(img2, [{ topic: "u", partition: 0 }]).results[0]!.error?.kind.name).toBe(
      "PREFERRED_LEADER_NOT_AVAILABLE",
    );
  });
});

describe("placement spreads leaders", () => {
  const spread = (img: MetadataImage, brokers: number[]) => {
    const counts = new Map(brokers.map((b) => [b, 0]));
    for (const t of img.topics.values()) for (const p of t.partitions) counts.set(p.leader, counts.get(p.leader)! + 1);
    return [...counts.values()];
  };

  it("keeps leaders of 6 topics × 3 partitions on 3 brokers within ±1 per broker, for topics of 1, 2 and 3 partitions", () => {
    for (const partitions of [1, 2, 3]) {
      for (let seed = 1; seed <= 20; seed++) {
        const img = clusterOf([1, 2, 3]);
        const random = new SeededRandom(seed);
        for (let i = 0; i < 6; i++) createTopic(img, `t${i}`, partitions, 3, {}, random);
        const counts = spread(img, [1, 2, 3]);
        expect(Math.max(...counts) - Math.min(...counts), `partitions ${partitions} seed ${seed}: ${counts}`).toBeLessThanOrEqual(1);
        for (const t of img.topics.values()) for (const p of t.partitions) expect(new Set(p.replicas).size).toBe(3);
      }
    }
  });

  it("starts a new topic on the broker leading the fewest partitions", () => {
    const img = clusterOf([1, 2, 3]);
    topicWith(img, "busy", [[1], [1], [2]]);
    const records = decideCreateTopic(
      img,
      { name: "n", partitions: 1, replicationFactor: 2, configs: {} },
      { partitions: 1, brokers: img.unfencedBrokers(), random: new SeededRandom(3) },
    );
    expect(records[1]).toMatchObject({ replicas: [3, 1], isr: [3, 1], leader: 3 });
    commit(img, records);
    // Leaders now 1: 2, 2: 1, 3: 1; three more partitions of "n" fill 2 and 3 first.
    const more = decideCreatePartitions(img, "n", 4, img.unfencedBrokers(), new SeededRandom(3));
    expect(more.map((r) => (r.type === "partition" ? r.partition : null))).toEqual([1, 2, 3]);
    expect(new Set(more.slice(0, 2).map((r) => (r.type === "partition" ? r.leader : null)))).toEqual(new Set([2, 3]));
    commit(img, more);
    expect(spread(img, [1, 2, 3]).sort()).toEqual([2, 2, 3]);
  });

  it("gives no leadership to a broker in controlled shutdown while another can take it", () => {
    const img = clusterOf([1, 2, 3]);
    heartbeat(img, 3, { wantShutDown: true });
    createTopic(img, "t", 6, 3);
    expect(
      img.topics
        .get("t")!
        .partitions.map((p) => p.leader)
        .sort(),
    ).toEqual([1, 1, 1, 2, 2, 2]);
  });

  it("places replicas only on the brokers it is given", () => {
    const img = clusterOf([1, 2, 3]);
    fence(img, 2);
    createTopic(img, "t", 4, 2);
    for (const p of img.topics.get("t")!.partitions) expect(p.replicas.every((r) => r !== 2)).toBe(true);
    expectRejected(img, "INVALID_REPLICATION_FACTOR", () =>
      decideCreateTopic(
        img,
        { name: "u", partitions: 1, replicationFactor: 3, configs: {} },
        { partitions: 1, brokers: img.unfencedBrokers(), random: new SeededRandom(1) },
      ),
    );
  });
});
