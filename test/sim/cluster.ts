/**
 * The deterministic cluster simulator. A run is a function of its settings (and so of its
 * seed): one SeededRandom drives faults, delays, proposals and each node's election timeouts.
 *
 * A step is one tick of simulated time. In each step: faults (crash, restart, partition, heal,
 * leadership transfer, a voter added or removed), maybe a client proposal, ticks, message delivery in random order, then
 * each node's Ready handling (persist, send, apply, advance; the write may take steps, and a
 * crash before it completes loses it). Checkers run as nodes report. After the chaos phase the
 * network heals and every node is up: a leader must be elected and a new proposal applied by
 * every node within LIVENESS_TICKS.
 */
import { RillError } from "../../src/base/errors.ts";
import { SeededRandom } from "../../src/base/random.ts";
import type { Message, NodeId, Ready } from "../../src/raft/types.ts";
import { SafetyChecker, Violation } from "./checker.ts";
import { SimNetwork } from "./network.ts";
import { SimNode } from "./node.ts";
import type { SimSettings } from "./settings.ts";

/** Ticks allowed, once healed, for a leader followed by a majority to emerge. */
export const ELECTION_BOUND_TICKS = 200;
/** Ticks allowed, once healed, for committing a new proposal (plus backlog, below). */
export const LIVENESS_TICKS = 300;
/** Bytes an entry of the simulation counts for against msgBytesMax (4 bytes of data + 16). */
const SIM_ENTRY_BYTES = 20;
/** Message delay bound once the network is healed. */
const HEALED_MAX_DELAY = 3;

/** Counters of one run. */
export interface SimStats {
  messagesSent: number;
  messagesDropped: number;
  /** Messages sent, by type. */
  messagesByType: Record<string, number>;
  proposals: number;
  proposalsAccepted: number;
  crashes: number;
  partitions: number;
  transfers: number;
  /** Voter changes the leader accepted, and those committed (applied somewhere). */
  confChanges: number;
  confChangesApplied: number;
  leaderTerms: number;
  applied: number;
  /** Ticks from healing until a leader had a majority. */
  electionTicks: number;
  /** Ticks from healing until a new proposal committed. */
  livenessTicks: number;
}

/** The outcome of a run. */
export interface SimResult {
  readonly settings: SimSettings;
  readonly violation: string | null;
  /** The step at which the violation was found (or the last step). */
  readonly step: number;
  readonly stats: SimStats;
}

/** One seeded run of a simulated cluster. */
export class Simulation {
  private readonly s: SimSettings;
  private readonly random: SeededRandom;
  private readonly network: SimNetwork;
  private readonly nodes: SimNode[];
  private readonly ids: NodeId[];
  private readonly checker = new SafetyChecker();
  private readonly trace: ((line: string) => void) | null;
  private now = 0;
  private nextProposal = 0;
  private readonly stats: SimStats = {
    messagesSent: 0,
    messagesDropped: 0,
    messagesByType: {},
    proposals: 0,
    proposalsAccepted: 0,
    crashes: 0,
    partitions: 0,
    transfers: 0,
    confChanges: 0,
    confChangesApplied: 0,
    leaderTerms: 0,
    applied: 0,
    electionTicks: 0,
    livenessTicks: 0,
  };

  constructor(settings: SimSettings, trace: ((line: string) => void) | null = null) {
    this.s = settings;
    this.trace = trace;
    this.random = new SeededRandom(settings.seed);
    const faults = {
      dropRate: settings.dropRate,
      dupRate: settings.dupRate,
      slowRate: settings.slowRate,
      maxDelay: settings.maxDelay,
    };
    this.network = new SimNetwork(this.random.fork(), faults, settings.wire);
    this.ids = Array.from({ length: settings.voters + (settings.extraNodes ?? 0) }, (_, k) => k + 1);
    const voters = this.ids.slice(0, settings.voters);
    this.nodes = this.ids.map((id) => new SimNode(id, voters, settings, this.ids));
    for (const n of this.nodes) n.start(this.random.fork());
  }

  /** Runs the chaos phase and the liveness check; never throws for a violation. */
  run(): SimResult {
    let violation: string | null = null;
    try {
      for (this.now = 0; this.now < this.s.steps; this.now++) this.step(true);
      this.liveness();
    } catch (e: unknown) {
      if (e instanceof Violation) violation = e.message;
      else if (e instanceof Error) violation = `${e.name}: ${e.message}\n${e.stack ?? ""}`;
      else violation = String(e);
    }
    this.stats.messagesSent = this.network.sent;
    this.stats.messagesDropped = this.network.dropped;
    this.stats.messagesByType = this.network.byType;
    this.stats.applied = this.checker.appliedCount();
    this.stats.leaderTerms = this.checker.leaderTermCount();
    this.stats.confChangesApplied = this.checker.configCount();
    return { settings: this.s, violation, step: this.now, stats: this.stats };
  }

  private log(text: string): void {
    if (this.trace !== null) this.trace(`${String(this.now).padStart(5)} ${text}`);
  }

  private step(chaos: boolean): void {
    this.restarts();
    if (chaos) {
      this.faults();
      if (this.random.next() < this.s.proposeRate) this.propose(this.pickProposer());
    }
    for (const n of this.nodes) {
      if (n.raft !== null && (this.s.tickRate >= 1 || this.random.next() < this.s.tickRate)) n.raft.tick();
    }
    for (const m of this.network.due(this.now)) this.deliver(m);
    for (const n of this.nodes) if (n.raft !== null) this.handleIo(n);
    this.checkLeaders();
  }

  // ---- faults -----------------------------------------------------------------------------

  private restarts(): void {
    for (const n of this.nodes) {
      if (n.raft === null && n.downUntil <= this.now) {
        n.start(this.random.fork());
        this.log(`n${n.id} restarts (term ${n.raft!.status().term}, last ${n.storage.lastIndex()})`);
      }
    }
  }

  private faults(): void {
    const r = this.random;
    if (r.next() < this.s.crashRate) this.crashOne();
    if (r.next() < this.s.partitionRate) this.partitionSome();
    if (this.network.partitioned() && r.next() < this.s.healRate) {
      this.network.heal();
      this.log("network heals");
    }
    if (r.next() < this.s.transferRate) this.transfer();
    if ((this.s.confChangeRate ?? 0) > 0 && r.next() < this.s.confChangeRate!) this.changeVoters();
  }

  /** Asks the leader to add a non-voter or remove a voter (it may refuse: in flight, not caught up...). */
  private changeVoters(): void {
    const leader = this.nodes.find((n) => n.raft?.status().role === "leader");
    if (leader === undefined) return;
    const st = leader.raft!.status();
    const others = this.ids.filter((id) => !st.voters.includes(id));
    const add = others.length > 0 && (st.voters.length <= 1 || this.random.int(2) === 0);
    const id = add ? others[this.random.int(others.length)]! : st.voters[this.random.int(st.voters.length)]!;
    const res = leader.raft!.proposeConfChange(add ? { type: "add-voter", id, directoryId: `dir-${id}` } : { type: "remove-voter", id });
    if (res.ok) this.stats.confChanges++;
    this.log(
      `n${leader.id} asked to ${add ? "add" : "remove"} voter n${id}: ${res.ok ? `at ${res.index}/${res.term}` : res.error.message}`,
    );
  }

  /** A random up node, or (with probability leaderBias) a leader if there is one. */
  private victim(): SimNode | undefined {
    const up = this.nodes.filter((n) => n.up);
    if (up.length === 0) return undefined;
    if (this.random.next() < this.s.leaderBias) {
      const leader = up.find((n) => n.raft!.status().role === "leader");
      if (leader !== undefined) return leader;
    }
    return up[this.random.int(up.length)];
  }

  private crashOne(): void {
    const n = this.victim();
    if (n === undefined) return;
    n.crash(this.random);
    n.downUntil = this.now + 1 + this.random.int(this.s.maxDownSteps);
    this.stats.crashes++;
    this.log(`n${n.id} crashes until ${n.downUntil} (disk last ${n.storage.lastIndex()})`);
  }

  private partitionSome(): void {
    const r = this.random;
    const kind = r.int(3);
    this.stats.partitions++;
    if (kind === 2) {
      const a = this.ids[r.int(this.ids.length)]!;
      const b = this.ids[r.int(this.ids.length)]!;
      if (a === b) return;
      this.network.cutLink(a, b);
      this.log(`link n${a}->n${b} cut`);
      return;
    }
    const side = kind === 0 ? this.ids.filter(() => r.int(2) === 0) : [this.victim()?.id ?? 1];
    if (side.length === 0 || side.length === this.ids.length) return;
    this.network.partition(side, this.ids);
    this.log(`partition {${side.join(",")}} | rest`);
  }

  private transfer(): void {
    const leader = this.nodes.find((n) => n.raft?.status().role === "leader");
    if (leader === undefined) return;
    const to = this.ids[this.random.int(this.ids.length)]!;
    const err = leader.raft!.transferLeadership(to);
    this.stats.transfers++;
    this.log(`n${leader.id} asked to transfer leadership to n${to}${err === null ? "" : `: ${err.message}`}`);
  }

  // ---- clients ----------------------------------------------------------------------------

  private pickProposer(): SimNode | undefined {
    const up = this.nodes.filter((n) => n.up);
    if (up.length === 0) return undefined;
    // Most clients find the leader; one in ten asks a random node (usually to be refused).
    if (this.random.int(10) === 0) return up[this.random.int(up.length)];
    const leaders = up.filter((n) => n.raft!.status().role === "leader");
    return leaders.length === 0 ? undefined : leaders[this.random.int(leaders.length)];
  }

  /** Proposes a fresh value at `n`; returns its key, index and term if accepted. */
  private propose(n: SimNode | undefined): { key: number; index: number; term: number } | null {
    if (n === undefined) return null;
    const id = this.nextProposal++;
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, id);
    this.stats.proposals++;
    const res = n.raft!.propose(data);
    if (!res.ok) return null;
    this.stats.proposalsAccepted++;
    this.log(`n${n.id} accepts proposal ${id} at ${res.index}/${res.term}`);
    return { key: id + 1, index: res.index, term: res.term };
  }

  // ---- messages and disk ------------------------------------------------------------------

  private deliver(m: Message): void {
    const n = this.nodes[m.to - 1]!;
    if (n.raft === null) return;
    if (this.trace !== null) this.log(`deliver ${formatMessage(m)}`);
    try {
      n.raft.step(m);
    } catch (e: unknown) {
      if (e instanceof RillError) throw new Violation(`n${n.id} rejected a well-formed message: ${e.message}`);
      throw e;
    }
  }

  private handleIo(n: SimNode): void {
    if (n.io !== null) {
      if (n.io.doneAt > this.now) return;
      const rd = n.io.rd;
      n.io = null;
      this.complete(n, rd);
    }
    for (let round = 0; round < 3 && n.io === null; round++) {
      const rd = n.takeReady(this.checker);
      if (rd === null) return;
      if (rd.softState !== null)
        this.log(`n${n.id} is ${rd.softState.role} (leader n${rd.softState.leader}, term ${n.raft!.status().term})`);
      const delay = this.s.ioDelayMax === 0 ? 0 : this.random.int(this.s.ioDelayMax + 1);
      if (delay > 0) n.io = { rd, doneAt: this.now + delay };
      else this.complete(n, rd);
    }
  }

  private complete(n: SimNode, rd: Ready): void {
    n.persist(rd);
    for (const m of rd.messages) this.network.send(m, this.now);
    n.applyAndAdvance(rd, this.checker);
  }

  private checkLeaders(): void {
    for (const n of this.nodes) {
      const raft = n.raft;
      if (raft === null) continue;
      const st = raft.status();
      if (st.role !== "leader") continue;
      this.checker.leader(n.id, st.term, (i) => raft.termAt(i), st.firstIndex);
    }
  }

  // ---- liveness ---------------------------------------------------------------------------

  /**
   * Heals everything, then requires that a new proposal commits, and then that every node
   * applies it, each within LIVENESS_TICKS plus catchUpTicksPerEntry() per entry of backlog
   * (a leader with a long uncommitted tail must replicate it first; flow control bounds the rate).
   */
  private liveness(): void {
    this.network.heal();
    this.network.faults.dropRate = 0;
    this.network.faults.dupRate = 0;
    this.network.faults.slowRate = 0;
    this.network.faults.maxDelay = Math.min(this.network.faults.maxDelay, HEALED_MAX_DELAY);
    for (const n of this.nodes) n.downUntil = Math.min(n.downUntil, this.now);
    this.log("liveness phase: network healed, all nodes up");
    const start = this.now;
    const backlog = Math.max(...this.nodes.map((n) => n.storage.lastIndex())) - Math.min(...this.nodes.map((n) => n.app.applied));
    this.electLeader(start + ELECTION_BOUND_TICKS);
    this.stats.electionTicks = this.now - start;
    const perEntry = this.catchUpTicksPerEntry();
    const index = this.commitOne(start + LIVENESS_TICKS + Math.ceil(perEntry * backlog));
    this.stats.livenessTicks = this.now - start;
    const lag = index - Math.min(...this.nodes.map((n) => n.app.applied));
    const deadline = this.now + LIVENESS_TICKS + Math.ceil(perEntry * lag);
    for (; this.now < deadline; this.now++) {
      if (this.nodes.every((n) => n.app.applied >= index)) return;
      this.step(false);
    }
    throw new Violation(`liveness: entry ${index} committed, but not applied everywhere by step ${deadline} (${this.describeNodes()})`);
  }

  /**
   * Twice the replication time per entry that flow control allows once healed: a round trip
   * (two message delays, a follower write, a step of slack) moves inflightMax messages of
   * msgBytesMax each (at least one entry per message).
   */
  private catchUpTicksPerEntry(): number {
    const roundTrip = 2 * HEALED_MAX_DELAY + this.s.ioDelayMax + 2;
    const perMessage = Math.max(1, Math.floor(this.s.msgBytesMax / SIM_ENTRY_BYTES));
    return 2 * Math.max(1, roundTrip / (perMessage * this.s.inflightMax));
  }

  /** Steps until some node leads with a majority of its voters following it. */
  private electLeader(deadline: number): void {
    for (; this.now < deadline; this.now++) {
      this.step(false);
      for (const n of this.nodes) {
        const st = n.raft!.status();
        if (st.role !== "leader") continue;
        const followers = this.nodes.filter((f) => st.voters.includes(f.id) && f.raft!.status().leader === n.id).length;
        if (followers > st.voters.length / 2) {
          this.now++;
          return;
        }
      }
    }
    throw new Violation(`liveness: no leader with a majority by step ${deadline} (${this.describeNodes()})`);
  }

  /** Steps until a fresh proposal is committed (applied somewhere); returns its index. */
  private commitOne(deadline: number): number {
    let pending: { key: number; index: number; term: number; by: SimNode } | null = null;
    for (; this.now < deadline; this.now++) {
      this.step(false);
      if (pending !== null && this.checker.isApplied(pending.index, pending.key)) {
        this.now++;
        return pending.index;
      }
      const st = pending?.by.raft?.status();
      if (pending !== null && st !== undefined && st.role === "leader" && st.term === pending.term) continue;
      const leader = this.nodes.find((n) => n.raft!.status().role === "leader");
      const p = this.propose(leader);
      pending = p === null ? null : { ...p, by: leader! };
    }
    throw new Violation(`liveness: no new proposal committed by step ${deadline} (${this.describeNodes()})`);
  }

  private describeNodes(): string {
    return this.nodes
      .map((n) => {
        const st = n.raft!.status();
        return `n${n.id}:${st.role}${st.isVoter ? "" : "(non-voter)"}/t${st.term}/c${st.commit}/a${n.app.applied}/l${st.lastIndex}`;
      })
      .join(" ");
  }
}

/** A one-line rendering of a message for traces. */
export function formatMessage(m: Message): string {
  const head = `n${m.from}->n${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case "prevote":
    case "vote":
      return `${head} last=${m.lastIndex}/${m.lastTerm}${m.type === "vote" && m.transfer ? " transfer" : ""}`;
    case "prevote-response":
    case "vote-response":
      return `${head} ${m.reject ? "reject" : "grant"}`;
    case "append":
      return `${head} prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} commit=${m.commit}`;
    case "append-response":
      return `${head} ${m.reject ? `reject ${m.index} hint=${m.hintIndex}/${m.hintTerm}` : `ok ${m.index}`}`;
    case "heartbeat":
      return `${head} commit=${m.commit}`;
    case "snapshot":
      return `${head} snap=${m.snapshot.meta.index}/${m.snapshot.meta.term}`;
    default:
      return head;
  }
}
