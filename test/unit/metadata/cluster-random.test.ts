/**
 * Random sequences of controller decisions (registrations, heartbeats, fencing, AlterPartition,
 * elections, topic changes) applied to one image, with the cluster invariants checked after each.
 * Prints the seed; `SEED=n` replays a run.
 */
import { describe, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { SeededRandom, seedFromEnv } from "../../../src/base/random.ts";
import { parseTopicConfig } from "../../../src/config/schema.ts";
import {
  decideAlterPartition,
  decideBrokerHeartbeat,
  decideCreatePartitions,
  decideCreateTopic,
  decideDeleteTopic,
  decideFenceBroker,
  decidePreferredLeaderElection,
  decideRegisterBroker,
} from "../../../src/metadata/controller.ts";
import { MetadataImage, type PartitionState } from "../../../src/metadata/image.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { commit, dump } from "./cluster-helpers.ts";

const NODES = [1, 2, 3, 4, 5];

class Run {
  readonly image = new MetadataImage();
  /** Highest epochs seen per partition (by topic id) and per broker. */
  private readonly partitionEpochs = new Map<string, { leaderEpoch: number; partitionEpoch: number }>();
  private readonly brokerEpochs = new Map<number, number>();
  private topicSeq = 0;
  private incarnationSeq = 0;
  /** What happened, for the failure message. */
  readonly history: string[] = [];
  /** A check of the last decision's response, run once its records are applied. */
  private afterCommit: (() => void) | undefined;

  constructor(
    private readonly rnd: SeededRandom,
    /** Records applied by type and rejections by error, over all runs. */
    private readonly counts: Map<string, number>,
  ) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[this.rnd.int(xs.length)]!;
  }

  private chance(p: number): boolean {
    return this.rnd.next() < p;
  }

  private partitions(): { topic: string; state: PartitionState }[] {
    const out: { topic: string; state: PartitionState }[] = [];
    for (const t of this.image.topics.values()) for (const state of t.partitions) out.push({ topic: t.name, state });
    return out;
  }

  /** One random decision: its records are committed, or its RillError leaves the image as it was. */
  step(): void {
    const before = JSON.stringify(dump(this.image));
    this.afterCommit = undefined;
    const [what, decide] = this.randomDecision();
    this.history.push(what);
    let records: MetadataRecord[];
    try {
      records = decide();
    } catch (e) {
      if (!(e instanceof RillError)) throw e;
      this.history.push(`  -> ${e.kind.name}: ${e.message}`);
      tally(this.counts, e.kind.name);
      check(JSON.stringify(dump(this.image)) === before, "a rejected decision changed the image");
      return;
    }
    check(JSON.stringify(dump(this.image)) === before, "a decision changed the image");
    commit(this.image, records);
    this.history.push(`  -> ${records.map((r) => r.type).join(", ") || "(nothing)"}`);
    for (const r of records)
      tally(this.counts, r.type === "partition-change" && r.leader === -1 ? "partition-change to no leader" : r.type);
    // Set by the decision when it ran (TypeScript cannot see that assignment from here).
    (this.afterCommit as (() => void) | undefined)?.();
    this.checkInvariants();
  }

  private randomDecision(): [string, () => MetadataRecord[]] {
    const img = this.image;
    const brokers = [...img.brokers.values()];
    const k = this.rnd.int(100);
    if (k < 12 || brokers.length === 0) {
      const nodeId = this.pick(NODES);
      const same = img.brokers.get(nodeId)?.incarnationId;
      const incarnationId = same !== undefined && this.chance(0.2) ? same : `i${++this.incarnationSeq}`;
      const alive = this.chance(0.5);
      const uncleanShutdown = this.chance(0.3); // KIP-966
      return [
        `register ${nodeId} ${incarnationId} alive=${alive} unclean=${uncleanShutdown}`,
        () =>
          decideRegisterBroker(
            img,
            { nodeId, incarnationId, address: `h${nodeId}:1`, rack: "", roles: ["broker"], uncleanShutdown },
            () => alive,
          ),
      ];
    }
    if (k < 45) return this.heartbeat(this.pick(brokers).nodeId);
    if (k < 55) {
      const nodeId = this.pick(NODES);
      return [`fence ${nodeId}`, () => decideFenceBroker(img, nodeId)];
    }
    if (k < 75) return this.alterPartition();
    if (k < 82) {
      if (this.chance(0.5)) return ["preferred election (all)", () => decidePreferredLeaderElection(img).records];
      const named = this.partitions()
        .filter(() => this.chance(0.5))
        .map(({ topic, state }) => ({ topic, partition: state.partition }));
      return [`preferred election of ${named.length}`, () => decidePreferredLeaderElection(img, named).records];
    }
    if (k < 92) {
      const name = `t${++this.topicSeq}`;
      const partitions = 1 + this.rnd.int(4);
      const rf = 1 + this.rnd.int(3);
      const configs: Record<string, string> = this.chance(0.3) ? { "unclean.leader.election.enable": "true" } : {};
      if (this.chance(0.5)) configs["min.insync.replicas"] = String(1 + this.rnd.int(3)); // KIP-966: ELR below it
      return [
        `create ${name} p=${partitions} rf=${rf} ${JSON.stringify(configs)}`,
        () =>
          decideCreateTopic(
            img,
            { name, partitions, replicationFactor: rf, configs },
            { partitions: 1, brokers: img.unfencedBrokers(), random: this.rnd },
          ),
      ];
    }
    const topics = img.topicNames();
    if (topics.length === 0) return ["nothing", () => []];
    const name = this.pick(topics);
    if (k < 97) {
      const count = img.topics.get(name)!.partitions.length + 1 + this.rnd.int(2);
      return [`grow ${name} to ${count}`, () => decideCreatePartitions(img, name, count, img.unfencedBrokers(), this.rnd)];
    }
    return [`delete ${name}`, () => decideDeleteTopic(img, name)];
  }

  private heartbeat(nodeId: number): [string, () => MetadataRecord[]] {
    const b = this.image.brokers.get(nodeId)!;
    const brokerEpoch = this.chance(0.05) ? b.epoch - 1 : b.epoch;
    const currentMetadataOffset = this.chance(0.2) ? b.epoch - 1 : this.image.offset;
    const wantFence = this.chance(0.05);
    const wantShutDown = this.chance(0.08);
    const what = `heartbeat ${nodeId} epoch=${brokerEpoch} offset=${currentMetadataOffset} fence=${wantFence} shutdown=${wantShutDown}`;
    return [
      what,
      () => {
        const d = decideBrokerHeartbeat(this.image, { nodeId, brokerEpoch, currentMetadataOffset, wantFence, wantShutDown });
        this.history.push(`  response ${JSON.stringify(d.response)}`);
        this.afterCommit = () => {
          // The response describes the image the records produce.
          check(
            this.image.brokers.get(nodeId)!.fenced === d.response.isFenced,
            `heartbeat of ${nodeId}: isFenced is ${d.response.isFenced}`,
          );
          if (!d.response.shouldShutDown) return;
          for (const { topic, state } of this.partitions())
            check(state.leader !== nodeId, `${nodeId} told to shut down while leading ${topic}-${state.partition}`);
        };
        return d.records;
      },
    ];
  }

  private alterPartition(): [string, () => MetadataRecord[]] {
    const led = this.partitions().filter(({ state }) => state.leader !== -1);
    if (led.length === 0) return ["nothing to alter", () => []];
    const { topic, state } = this.pick(led);
    const nodeId = this.chance(0.1) ? this.pick(NODES) : state.leader;
    const brokerEpoch = this.image.brokers.get(nodeId)?.epoch ?? 0;
    const others = state.replicas.filter((r) => r !== state.leader && this.chance(0.6));
    const newIsr = this.chance(0.05) ? others : [state.leader, ...others];
    const leaderEpoch = this.chance(0.05) ? state.leaderEpoch - 1 : state.leaderEpoch;
    const partitionEpoch = this.chance(0.05) ? state.partitionEpoch - 1 : state.partitionEpoch;
    return [
      `alter ${topic}-${state.partition} by ${nodeId} isr=[${newIsr}] le=${leaderEpoch} pe=${partitionEpoch}`,
      () =>
        decideAlterPartition(this.image, nodeId, brokerEpoch, { topic, partition: state.partition, leaderEpoch, partitionEpoch, newIsr }),
    ];
  }

  checkInvariants(): void {
    for (const t of this.image.topics.values()) {
      for (const p of t.partitions) {
        const name = `${t.name}-${p.partition}`;
        check(new Set(p.isr).size === p.isr.length, `${name}: ISR [${p.isr}] repeats a replica`);
        // KIP-966: the ISR empties only into the eligible leader replicas, with no leader.
        check(p.isr.length > 0 || p.leader === -1, `${name}: empty ISR with leader ${p.leader}`);
        const elr = p.elr ?? [];
        check(
          elr.every((r) => p.replicas.includes(r) && !p.isr.includes(r)),
          `${name}: ELR [${elr}] not within replicas [${p.replicas}] outside ISR [${p.isr}]`,
        );
        check(
          elr.length === 0 || p.isr.length < parseTopicConfig(t.configs).minInsyncReplicas,
          `${name}: ELR [${elr}] kept with ISR [${p.isr}] at min.insync.replicas`,
        );
        check(
          p.isr.every((r) => p.replicas.includes(r)),
          `${name}: ISR [${p.isr}] not within replicas [${p.replicas}]`,
        );
        if (p.leader !== -1) {
          check(p.isr.includes(p.leader), `${name}: leader ${p.leader} not in ISR [${p.isr}]`);
          const b = this.image.brokers.get(p.leader);
          check(b !== undefined, `${name}: leader ${p.leader} is not registered`);
          check(!b!.fenced, `${name}: fenced broker ${p.leader} leads`);
        }
        const key = `${t.topicId}/${p.partition}`;
        const seen = this.partitionEpochs.get(key);
        if (seen) {
          check(p.leaderEpoch >= seen.leaderEpoch, `${name}: leader epoch went back from ${seen.leaderEpoch} to ${p.leaderEpoch}`);
          check(
            p.partitionEpoch >= seen.partitionEpoch,
            `${name}: partition epoch went back from ${seen.partitionEpoch} to ${p.partitionEpoch}`,
          );
        }
        this.partitionEpochs.set(key, { leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch });
      }
    }
    for (const b of this.image.brokers.values()) {
      check(b.epoch >= (this.brokerEpochs.get(b.nodeId) ?? -1), `broker ${b.nodeId}: epoch went back`);
      this.brokerEpochs.set(b.nodeId, b.epoch);
    }
  }
}

function tally(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

describe("cluster decisions under random sequences", () => {
  it("keep leader ∈ ISR ⊆ replicas, epochs monotonic, and fenced brokers leading nothing", () => {
    const seed = seedFromEnv();
    console.log(`cluster decisions random sequences: SEED=${seed}`);
    const rnd = new SeededRandom(seed);
    const counts = new Map<string, number>();
    for (let run = 0; run < 40; run++) {
      const r = new Run(rnd.fork(), counts);
      try {
        for (let i = 0; i < 300; i++) r.step();
      } catch (e) {
        const tail = r.history.slice(-30).join("\n");
        throw new Error(`SEED=${seed} run ${run}: ${(e as Error).message}\nlast steps:\n${tail}`);
      }
    }
    console.log(
      [...counts]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join(", "),
    );
  });
});
