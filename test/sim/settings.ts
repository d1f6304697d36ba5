/**
 * Fault settings of one simulation run, all derived from its seed so that a seed alone replays
 * the run. Printed with every failure.
 */
import { SeededRandom } from "../../src/base/random.ts";

/** Everything that varies between seeds. Rates are per step (one tick of simulated time). */
export interface SimSettings {
  readonly seed: number;
  readonly voters: 3 | 5;
  readonly steps: number;
  /** Probability that a message is lost. */
  readonly dropRate: number;
  /** Probability that a message is held up to SLOW_DELAY steps (it arrives very stale). */
  readonly slowRate: number;
  /** Probability that a message is delivered twice. */
  readonly dupRate: number;
  /** Messages arrive 1..maxDelay steps after being sent (so they also reorder). */
  readonly maxDelay: number;
  /** Probability that a crash or an isolation targets the leader rather than a random node. */
  readonly leaderBias: number;
  /** Probability per step that an up node crashes (losing its unsynced writes). */
  readonly crashRate: number;
  /** A crashed node stays down 1..maxDownSteps steps. */
  readonly maxDownSteps: number;
  /** Probability per step of a new partition (split, isolation or one-way cut). */
  readonly partitionRate: number;
  /** Probability per step that all partitions heal. */
  readonly healRate: number;
  /** Probability per step of a client proposal. */
  readonly proposeRate: number;
  /** Probability per step that a leader is asked to transfer leadership. */
  readonly transferRate: number;
  /** A Ready's writes become durable 0..ioDelayMax steps after it is taken. */
  readonly ioDelayMax: number;
  /** Probability that a node ticks in a step (below 1: clocks drift). */
  readonly tickRate: number;
  /** A node snapshots its state machine after this many newly applied entries. */
  readonly snapshotEvery: number;
  /** Entries kept in the log behind a snapshot. */
  readonly compactKeep: number;
  /** Largest Append payload (small values split replication into many messages). */
  readonly msgBytesMax: number;
  /** Pipelined Appends per follower. */
  readonly inflightMax: number;
  /** Raft pre-vote on. */
  readonly preVote: boolean;
  /** Raft check-quorum (and leader leases) on. */
  readonly checkQuorum: boolean;
  /** Send every message through the binary codec. */
  readonly wire: boolean;
  /** Nodes that start as non-voters (observers the leader replicates to), candidates for joining. */
  readonly extraNodes?: number;
  /** Probability per step that the leader is asked to add or remove one voter (0: fixed voters). */
  readonly confChangeRate?: number;
  /**
   * Run each voter on DiskRaftStorage over an in-memory disk that loses unsynced bytes on a
   * crash (not drawn from the seed, so it never changes what a seed does otherwise).
   */
  readonly disk?: boolean;
}

/** Raft timing used by every run. */
export const SIM_ELECTION_TICKS = 10;
/** Raft heartbeat interval used by every run. */
export const SIM_HEARTBEAT_TICKS = 2;
/** Longest delay of a slow message, in steps. */
export const SIM_SLOW_DELAY = 60;

function pick<T>(r: SeededRandom, xs: readonly T[]): T {
  return xs[r.int(xs.length)]!;
}

/**
 * The settings of `seed` (with `steps` steps and optionally a forced voter count). Membership
 * settings come from a stream of their own, so the other settings of a seed stay as they were.
 */
export function settingsForSeed(seed: number, steps: number, voters?: 3 | 5): SimSettings {
  const m = new SeededRandom(seed ^ 0xc0f1c0f1);
  const membership = { extraNodes: pick(m, [0, 1, 2, 2]), confChangeRate: pick(m, [0, 0.005, 0.02, 0.05]) };
  return { ...baseSettings(seed, steps, voters), ...membership };
}

function baseSettings(seed: number, steps: number, voters?: 3 | 5): SimSettings {
  const r = new SeededRandom(seed ^ 0x5eed5eed);
  const derivedVoters = r.int(2) === 0 ? 3 : 5;
  return {
    seed,
    voters: voters ?? derivedVoters,
    steps,
    dropRate: pick(r, [0, 0.01, 0.05, 0.2]),
    slowRate: pick(r, [0, 0, 0.01, 0.05]),
    dupRate: pick(r, [0, 0.02, 0.1]),
    maxDelay: pick(r, [1, 3, 6, 12]),
    leaderBias: pick(r, [0, 0.5, 0.9]),
    crashRate: pick(r, [0, 0.002, 0.01, 0.03]),
    maxDownSteps: pick(r, [10, 50, 200]),
    partitionRate: pick(r, [0, 0.005, 0.02]),
    healRate: pick(r, [0.01, 0.05, 0.2]),
    proposeRate: pick(r, [0.05, 0.3, 1]),
    transferRate: pick(r, [0, 0, 0.005, 0.02]),
    ioDelayMax: pick(r, [0, 1, 3]),
    tickRate: pick(r, [1, 1, 0.8]),
    snapshotEvery: pick(r, [5, 20, 100]),
    compactKeep: pick(r, [0, 3, 20]),
    msgBytesMax: pick(r, [1, 64, 1 << 20]),
    inflightMax: pick(r, [1, 4, 64]),
    preVote: r.int(4) !== 0,
    checkQuorum: r.int(4) !== 0,
    wire: r.int(4) === 0,
  };
}

/** One line describing the settings, for failure reports. */
export function formatSettings(s: SimSettings): string {
  return Object.entries(s)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");
}
