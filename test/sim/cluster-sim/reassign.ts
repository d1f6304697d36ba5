/**
 * Partition reassignments in the cluster simulator (settings.reassignments, issue 19): an admin
 * that, during the faults, moves partitions' replicas to other sets through the controller's own
 * decision (`decideAlterReassignment`, as AlterPartitionReassignments runs it) — changing the
 * replication factor, replacing a move in flight, cancelling one just started or any ongoing —
 * and the checks of what every move must come to once the cluster healed.
 *
 * The target each request asked for is taken when the controller decided it (a cancel's is the
 * original replica set the controller saw). A request whose answer was lost may still have been
 * committed, but only before the next acknowledged one (a Raft log orders them): so a partition's
 * final replica set is the target of its last acknowledged request, or of one sent after it.
 */
import type { SeededRandom } from "../../../src/base/random.ts";
import type { MetadataImage } from "../../../src/metadata/image.ts";
import type { MetadataRecord } from "../../../src/metadata/records.ts";
import { decideAlterReassignment, isReassigning, originalReplicas, targetReplicas } from "../../../src/metadata/reassignment.ts";
import { partitionDirName } from "../../../src/storage/log-manager.ts";
import type { History } from "./history.ts";
import type { SimNode } from "./node.ts";

/**
 * leader.replication.throttled.rate of the nodes when reassignments run: an added replica of a
 * partition's log (40-100 KiB over a run; the writers add ~5 KiB/s to the topic) takes a second
 * or more to catch up, so moves are still running when a fault or a cancel comes; and a leader's
 * added replicas all caught up within the healing time (16 KiB/s did not: seed 72 with 2
 * broker-only nodes added three replicas of one partition 150 ms before healing, and one was
 * still behind 15 s later).
 */
export const REASSIGN_THROTTLE_BYTES_PER_SEC = 64 << 10;

/** What the reassigning admin needs of the run. */
export interface ReassignContext {
  readonly random: SeededRandom;
  readonly now: () => number;
  /** Requests are sent until this time (the end of the faults). */
  readonly untilMs: number;
  /** The nodes with the broker role (targets are drawn from them). */
  readonly brokers: readonly number[];
  /** The main topic (its replication factor stays at least min.insync.replicas = 2). */
  readonly mainTopic: string;
  /** Topics the other admin created and did not delete (any replication factor from 1). */
  readonly otherTopics: () => string[];
  /** The metadata image of an up node, if one is up. */
  readonly image: () => MetadataImage | undefined;
  /** Runs a decision at the active controller; false when refused or when its answer was lost. */
  readonly atController: (what: string, decide: (img: MetadataImage) => MetadataRecord[]) => Promise<boolean>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly trace: (line: string) => void;
}

/** The reassigning admin and its final checks. */
export class Reassignments {
  /**
   * Per partition ("topic\0partition") a request touched: the replica sets it may end with — the
   * target of the last acknowledged request (or the replicas before the first), then the targets
   * of the requests sent after it.
   */
  private readonly targets = new Map<string, number[][]>();
  /** Requests sent, acknowledged, cancels acknowledged. */
  sent = 0;
  acked = 0;
  cancels = 0;

  constructor(private readonly c: ReassignContext) {}

  /** Sends requests every 0.3..1.5 s until `untilMs`. */
  async run(): Promise<void> {
    const { random } = this.c;
    while (this.c.now() < this.c.untilMs) {
      await this.c.sleep(300 + random.int(1200));
      const img = this.c.image();
      if (!img) continue;
      const ongoing = this.ongoing(img);
      const roll = random.int(10);
      if (roll < 2 && ongoing.length > 0) {
        const { topic, partition } = ongoing[random.int(ongoing.length)]!;
        await this.request(topic, partition, null);
        continue;
      }
      const pick = this.pickPartition(img);
      if (!pick) continue;
      const target = this.pickTarget(pick.topic === this.c.mainTopic ? 2 : 1);
      const started = await this.request(pick.topic, pick.partition, target);
      // Cancelled while it runs: the added replicas leave, the original ones stay.
      if (started && roll === 9) {
        await this.c.sleep(random.int(300));
        await this.request(pick.topic, pick.partition, null);
      }
    }
  }

  private ongoing(img: MetadataImage): Array<{ topic: string; partition: number }> {
    const out: Array<{ topic: string; partition: number }> = [];
    for (const topic of [this.c.mainTopic, ...this.c.otherTopics()])
      img.topics.get(topic)?.partitions.forEach((st, partition) => {
        if (isReassigning(st)) out.push({ topic, partition });
      });
    return out;
  }

  /** The main topic's partitions three times in four, else one of another topic's. */
  private pickPartition(img: MetadataImage): { topic: string; partition: number } | null {
    const { random } = this.c;
    const others = this.c.otherTopics().filter((t) => img.topics.has(t));
    const topic = others.length > 0 && random.int(4) === 0 ? others[random.int(others.length)]! : this.c.mainTopic;
    const n = img.topics.get(topic)?.partitions.length ?? 0;
    return n > 0 ? { topic, partition: random.int(n) } : null;
  }

  /** A random replica set of `min`..all brokers, in random order (the first is the preferred leader). */
  private pickTarget(min: number): number[] {
    const { random } = this.c;
    const pool = [...this.c.brokers];
    const size = min + random.int(pool.length - min + 1);
    const out: number[] = [];
    while (out.length < size) out.push(pool.splice(random.int(pool.length), 1)[0]!);
    return out;
  }

  /** One AlterPartitionReassignments item (null target: cancel); true when acknowledged. */
  private async request(topic: string, partition: number, target: number[] | null): Promise<boolean> {
    const key = `${topic}\0${partition}`;
    this.sent++;
    let asked: number[] | null = null;
    const ok = await this.c.atController(
      `reassign ${topic}-${partition} ${target === null ? "cancel" : `to ${target.join(",")}`}`,
      (img) => {
        const st = img.topics.get(topic)?.partitions[partition];
        const records = decideAlterReassignment(img, { topic, partition, replicas: target });
        // Decided: the partition may end with this target from now on (if its commit is lost, it
        // may still have been committed).
        asked = target ?? (st ? originalReplicas(st) : null);
        if (st && !this.targets.has(key)) this.targets.set(key, [targetReplicas(st)]);
        if (asked) this.targets.get(key)?.push(asked);
        return records;
      },
    );
    if (ok && asked) {
      this.acked++;
      if (target === null) this.cancels++;
      this.targets.set(key, [asked]);
    }
    return ok;
  }

  /**
   * After healing: no partition of a live topic is being reassigned, each one a request touched
   * has the replica set it may end with (see `targets`), and no up node that is not a replica of
   * a partition keeps its log (in the replica manager or on disk).
   */
  finalChecks(img: MetadataImage, nodes: Iterable<SimNode>, deleted: ReadonlySet<string>, h: History, now: number): void {
    const topics = [this.c.mainTopic, ...this.c.otherTopics()].filter((t) => !deleted.has(t));
    const up = [...nodes].filter((n) => n.up);
    for (const topic of topics) {
      img.topics.get(topic)?.partitions.forEach((st, p) => {
        const name = `${topic}-${p}`;
        if (isReassigning(st))
          h.violation(
            "reassignment-stuck",
            `${name}: still reassigned after healing: replicas ${st.replicas.join(",")}, adding ${(st.addingReplicas ?? []).join(",")}, removing ${(st.removingReplicas ?? []).join(",")}, ISR ${st.isr.join(",")}`,
            now,
          );
        const may = this.targets.get(`${topic}\0${p}`);
        if (may && !isReassigning(st) && !may.some((t) => sameList(t, st.replicas)))
          h.violation(
            "reassignment-target",
            `${name}: replicas ${st.replicas.join(",")} after healing, the requests asked for ${may.map((t) => `[${t.join(",")}]`).join(" or ")}`,
            now,
          );
        for (const n of up) {
          if (st.replicas.includes(n.id)) continue;
          const inRm = n.running!.rm.replica(topic, p) !== undefined;
          const onDisk = n.fs.exists(`/data/${partitionDirName(topic, p)}`);
          if (inRm || onDisk)
            h.violation(
              "reassignment-removed-data",
              `${name}: node ${n.id} is not a replica (replicas ${st.replicas.join(",")}) but keeps its log${inRm ? " in its replica manager" : ""}${onDisk ? " on disk" : ""}`,
              now,
            );
        }
      });
    }
  }
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
