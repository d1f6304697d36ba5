/**
 * RaftNode: the public face of the Raft core, in the shape of etcd-io/raft's RawNode.
 *
 * The shell drives it: `tick()` on a timer, `step(m)` for each message received, `propose(data)`
 * for client writes, and in its loop `ready()` -> persist, send, apply -> `advance(ready)`
 * (see the Ready contract in types.ts). RaftNode never touches a disk, socket or clock.
 */
import { assert } from "../base/assert.ts";
import type { RillError } from "../base/errors.ts";
import type { ConfChange, VoterInfo } from "./config.ts";
import { Raft, type ProposeResult, type RaftConfig } from "./raft.ts";
import type { HardState, Message, NodeId, Ready, Role, SoftState } from "./types.ts";

/** A snapshot of a node's state for observability and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly role: Role;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly leadTransferee: NodeId;
  /** The voter ids of the configuration in effect (the last in the log, committed or not). */
  readonly voters: readonly NodeId[];
  /** The voters in effect, with directory ids, and the index of the entry that set them. */
  readonly config: readonly VoterInfo[];
  readonly configIndex: number;
  /** Whether this node is a voter of the configuration in effect. */
  readonly isVoter: boolean;
}

/** Largest total size of committed entries handed out in one Ready (1 MiB, at least one entry). */
const MAX_APPLY_BYTES = 1 << 20;

/** A Raft voter driven by its shell through tick/step/propose and ready/advance. */
export class RaftNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | null = null;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = this.softState();
    this.prevHard = config.storage.initialState().hardState;
  }

  /** This node's id. */
  get id(): NodeId {
    return this.raft.id;
  }

  /** Advances logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {
    this.raft.tick();
  }

  /** Handles a message from another voter; throws RillError(INVALID_REQUEST) if malformed. */
  step(m: Message): void {
    this.raft.step(m);
  }

  /** Appends `data` to the log if this node leads. Commit is known when it is applied. */
  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose(data);
  }

  /**
   * Leader only: appends a configuration entry adding or removing one voter (see Raft
   * `proposeConfChange` for when it is refused). The change is done once the entry is applied.
   */
  proposeConfChange(cc: ConfChange, knownDirectoryIds?: ReadonlyMap<NodeId, string>): ProposeResult {
    return this.raft.proposeConfChange(cc, knownDirectoryIds);
  }

  /** The non-voters a leader replicates to, so that they follow the log and can become voters. */
  setObservers(ids: readonly NodeId[]): void {
    this.raft.setObservers(ids);
  }

  /** Leader only: the highest index known replicated on `id` (undefined when not tracked). */
  matchOf(id: NodeId): number | undefined {
    return this.raft.progressOf(id)?.match;
  }

  /** The voters in effect at `index` (at or after the snapshot). */
  configAt(index: number): readonly VoterInfo[] {
    return this.raft.log.configAt(index);
  }

  /** Starts an election now (with a pre-vote round if enabled), as if the timeout fired. */
  campaign(): void {
    this.raft.hup(false);
  }

  /** Leader only: hand leadership to `to` once its log is caught up. */
  transferLeadership(to: NodeId): RillError | null {
    return this.raft.transferLeadership(to);
  }

  /** Tells the leader whether an InstallSnapshot to `to` arrived (optional; there is a timeout). */
  reportSnapshot(to: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(to, ok);
  }

  /** Whether `ready()` would return a batch. */
  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    const r = this.raft;
    if (r.msgs.length > 0) return true;
    if (r.log.unstable.entries.length > 0 || r.log.unstable.snapshot !== null) return true;
    if (r.log.hasNextCommittedEntries()) return true;
    if (!sameHard(this.hardState(), this.prevHard)) return true;
    return !sameSoft(this.softState(), this.prevSoft);
  }

  /**
   * The next batch of effects, or null if there is none. Handle it per the Ready contract
   * (types.ts) and pass it to `advance` before calling `ready()` again.
   */
  ready(): Ready | null {
    assert(this.outstanding === null, "ready() called again before advance()");
    if (!this.hasReady()) return null;
    const r = this.raft;
    const soft = this.softState();
    const hard = this.hardState();
    const rd: Ready = {
      softState: sameSoft(soft, this.prevSoft) ? null : soft,
      hardState: sameHard(hard, this.prevHard) ? null : hard,
      entries: r.log.unstable.entries.slice(),
      snapshot: r.log.unstable.snapshot,
      committedEntries: r.log.nextCommittedEntries(MAX_APPLY_BYTES),
      messages: r.msgs,
    };
    r.msgs = [];
    this.prevSoft = soft;
    this.outstanding = rd;
    return rd;
  }

  /** Marks `rd` handled: its state is durable, its messages sent, its entries applied. */
  advance(rd: Ready): void {
    assert(rd === this.outstanding, "advance() of a Ready that is not the outstanding one");
    this.outstanding = null;
    const log = this.raft.log;
    if (rd.hardState !== null) this.prevHard = rd.hardState;
    if (rd.snapshot !== null) log.unstable.stableSnapTo(rd.snapshot.meta.index);
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) log.unstable.stableTo(last.index, last.term);
    const applied = rd.committedEntries[rd.committedEntries.length - 1];
    if (applied !== undefined) log.appliedTo(applied.index);
    else if (rd.snapshot !== null && rd.snapshot.meta.index > log.applied) log.appliedTo(rd.snapshot.meta.index);
    this.raft.onPersisted();
  }

  /** The term of entry `index` as this node holds it (including unpersisted entries). */
  termAt(index: number): number | undefined {
    return this.raft.log.term(index);
  }

  /** The node's current state. */
  status(): RaftStatus {
    const r = this.raft;
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      leader: r.lead,
      role: r.role,
      commit: r.log.committed,
      applied: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      leadTransferee: r.leadTransferee,
      voters: r.voters,
      config: r.log.config().voters,
      configIndex: r.log.config().index,
      isVoter: r.isVoter(),
    };
  }

  /**
   * Whether `id` is a voter of the configuration in effect or of the last committed one: the
   * nodes whose messages may lead, vote or answer as voters here (a leader being removed leads
   * until its removal commits, thesis §4.2.2).
   */
  isKnownVoter(id: number): boolean {
    const log = this.raft.log;
    return log.config().voters.some((v) => v.id === id) || log.configAt(log.committed).some((v) => v.id === id);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
