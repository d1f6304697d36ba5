/**
 * The Raft protocol state machine (Ongaro's thesis, with pre-vote 9.6, check-quorum 6.2 and
 * leadership transfer 3.10), in the style of etcd-io/raft: inputs are ticks, messages and
 * proposals; outputs are queued messages and changes to the in-memory log and state. It does no
 * I/O: RaftNode (node.ts) turns its state into Ready batches for the shell.
 */
import { assert } from "../base/assert.ts";
import { rillError, type RillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import { applyConfChange, type ConfChange, encodeVoterSet } from "./config.ts";
import { RaftLog } from "./log.ts";
import { Progress } from "./progress.ts";
import type { RaftStorage } from "./storage.ts";
import {
  NONE,
  type AppendMessage,
  type AppendResponseMessage,
  type Entry,
  type HeartbeatMessage,
  type Message,
  type NodeId,
  type PreVoteMessage,
  type Role,
  type SnapshotMessage,
  type VoteMessage,
  type VoteResponseMessage,
} from "./types.ts";
import { validateMessage } from "./validate.ts";

/** How a Raft node is set up. Ticks are the only notion of time. */
export interface RaftConfig {
  /** This node's id (> 0). A node that is not a voter of its log's configuration never campaigns. */
  readonly id: NodeId;
  /** Stable storage, read at start and whenever entries are not in memory. */
  readonly storage: RaftStorage;
  /** Source of the randomized election timeouts. */
  readonly random: Random;
  /** A follower campaigns after [electionTicks, 2 * electionTicks) ticks without a leader. */
  readonly electionTicks: number;
  /** A leader sends heartbeats every heartbeatTicks ticks (must be < electionTicks). */
  readonly heartbeatTicks: number;
  /** Campaign in a pre-vote round first, so a partitioned node cannot disrupt (default true). */
  readonly preVote?: boolean;
  /** A leader steps down without a quorum of recent contact; followers keep a lease (default true). */
  readonly checkQuorum?: boolean;
  /** Largest Append payload in bytes (at least one entry is always sent; default 1 MiB). */
  readonly msgBytesMax?: number;
  /** Unacknowledged Appends per follower while pipelining (default 64). */
  readonly inflightMsgsMax?: number;
  /** Uncommitted entries a leader accepts before refusing proposals (default 4096). */
  readonly uncommittedEntriesMax?: number;
  /** Ticks a follower may stay in snapshot state before the leader retries (default 5 elections). */
  readonly snapshotTimeoutTicks?: number;
  /** The last index the state machine has applied (default: the snapshot index). */
  readonly applied?: number;
}

/** The outcome of a proposal: where the entry went, or why it was refused. */
export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly error: RillError };

type VoteResult = "won" | "lost" | "pending";

/** The protocol core. Not exported from the package: use RaftNode. */
export class Raft {
  readonly id: NodeId;
  readonly log: RaftLog;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = "follower";
  /** The voter ids of the configuration in effect (the last one in the log, committed or not). */
  voters: NodeId[];
  /** Non-voters the leader replicates to (set by the shell): new voters catch up as these first. */
  observers: NodeId[] = [];
  leadTransferee: NodeId = NONE;
  /** Outgoing messages, drained by RaftNode.ready(). */
  msgs: Message[] = [];

  private readonly random: Random;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly msgBytesMax: number;
  private readonly inflightMax: number;
  private readonly uncommittedMax: number;
  private readonly snapshotTimeoutTicks: number;
  private progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  constructor(c: RaftConfig) {
    assert(Number.isSafeInteger(c.id) && c.id > 0, "raft id must be a positive integer");
    assert(c.heartbeatTicks >= 1 && c.electionTicks > c.heartbeatTicks, "need 1 <= heartbeatTicks < electionTicks");
    const init = c.storage.initialState();
    this.id = c.id;
    this.random = c.random;
    this.electionTicks = c.electionTicks;
    this.heartbeatTicks = c.heartbeatTicks;
    this.preVote = c.preVote ?? true;
    this.checkQuorum = c.checkQuorum ?? true;
    this.msgBytesMax = c.msgBytesMax ?? 1 << 20;
    this.inflightMax = c.inflightMsgsMax ?? 64;
    this.uncommittedMax = c.uncommittedEntriesMax ?? 4096;
    this.snapshotTimeoutTicks = c.snapshotTimeoutTicks ?? 5 * c.electionTicks;
    const hs = init.hardState;
    const snapIndex = c.storage.firstIndex() - 1;
    this.log = new RaftLog(c.storage, Math.max(hs.commit, snapIndex), c.applied ?? snapIndex);
    this.voters = this.log.config().voters.map((v) => v.id);
    this.becomeFollower(hs.term, NONE);
    this.vote = hs.vote;
  }

  /** Votes needed to win: a majority of the voters. */
  quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  /** Whether this node is a voter of the configuration in effect. */
  isVoter(): boolean {
    return this.voters.includes(this.id);
  }

  /**
   * Whether this node may campaign: it is a voter of the configuration in effect, or of the
   * last one it knows committed. The second case matters when an uncommitted change removed it:
   * its log may be the most up to date, so the others cannot win without it; it campaigns,
   * counts the votes of the configuration in effect (not its own), and once elected commits
   * the change and steps down (thesis 4.2.2).
   */
  private promotable(): boolean {
    return this.isVoter() || this.log.configAt(this.log.committed).some((v) => v.id === this.id);
  }

  /**
   * Takes the log's latest configuration into effect (after every append, truncation or
   * snapshot): the leader tracks the new voters; a candidate that is no longer a voter stops.
   */
  private syncConfig(): void {
    const ids = this.log.config().voters.map((v) => v.id);
    if (ids.length === this.voters.length && ids.every((id, k) => id === this.voters[k])) return;
    this.voters = ids;
    if (this.role === "leader") this.syncProgress();
    else if (!this.promotable() && this.role !== "follower") this.becomeFollower(this.term, NONE);
  }

  /** Leader: a Progress for every voter and observer (new ones probe from the log's end), none for others. */
  private syncProgress(): void {
    const want = new Set([this.id, ...this.voters, ...this.observers]);
    const next = this.log.lastIndex() + 1;
    for (const id of want) if (!this.progress.has(id)) this.progress.set(id, new Progress(next, this.inflightMax));
    for (const id of [...this.progress.keys()]) if (!want.has(id)) this.progress.delete(id);
  }

  /** The peers the leader replicates to: voters and observers other than itself. */
  private peers(): NodeId[] {
    return [...this.progress.keys()].filter((id) => id !== this.id);
  }

  // ---- time -------------------------------------------------------------------------------

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      // A node that may not campaign forgets a leader it has not heard from in a timeout, so
      // its lease does not keep refusing the candidates that need its vote.
      if (!this.promotable()) this.lead = NONE;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    this.tickSnapshots();
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** Whether a quorum was heard from since the last check; starts a new round. */
  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id)!;
      if (id === this.id || pr.recentActive) active++;
    }
    for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
    return active >= this.quorum();
  }

  /** Gives up on snapshots that were neither acknowledged nor reported within the timeout. */
  private tickSnapshots(): void {
    for (const pr of this.progress.values()) {
      if (pr.state !== "snapshot" || ++pr.snapshotTicks < this.snapshotTimeoutTicks) continue;
      this.snapshotFailed(pr);
    }
  }

  // ---- role changes -----------------------------------------------------------------------

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + this.random.int(this.electionTicks);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.progress.clear();
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = "follower";
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "a leader cannot become a pre-candidate");
    this.votes.clear();
    this.lead = NONE;
    this.role = "precandidate";
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "a leader cannot become a candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader");
    this.reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    this.syncProgress();
    const next = this.log.lastIndex() + 1;
    const self = this.progress.get(this.id)!;
    self.maybeUpdate(this.log.persistedLastIndex());
    self.recentActive = true;
    // An entry of the new term: committing it commits everything before it (thesis 3.6.2).
    this.appendEntries([{ index: next, term: this.term, kind: "noop", data: new Uint8Array(0) }]);
    this.bcastAppend();
  }

  // ---- elections --------------------------------------------------------------------------

  /** Starts an election (a pre-vote round first unless `transfer` or pre-vote is off). */
  hup(transfer: boolean): void {
    if (this.role === "leader" || !this.promotable()) return;
    if (this.preVote && !transfer) this.campaignPre();
    else this.campaign(transfer);
  }

  private campaignPre(): void {
    this.becomePreCandidate();
    if (this.poll(this.id, true) === "won") return this.campaign(false);
    for (const to of this.voters) {
      if (to === this.id) continue;
      const m: PreVoteMessage = {
        type: "prevote",
        from: this.id,
        to,
        term: this.term + 1,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
      };
      this.msgs.push(m);
    }
  }

  private campaign(transfer: boolean): void {
    this.becomeCandidate();
    if (this.poll(this.id, true) === "won") return this.becomeLeader();
    for (const to of this.voters) {
      if (to === this.id) continue;
      const m: VoteMessage = {
        type: "vote",
        from: this.id,
        to,
        term: this.term,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
        transfer,
      };
      this.msgs.push(m);
    }
  }

  private poll(from: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const [id, v] of this.votes) {
      if (!this.voters.includes(id)) continue; // only voters of our configuration count
      if (v) yes++;
      else no++;
    }
    if (yes >= this.quorum()) return "won";
    if (no > this.voters.length - this.quorum()) return "lost";
    return "pending";
  }

  private handleVoteRequest(m: PreVoteMessage | VoteMessage): void {
    const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === "prevote" && m.term > this.term);
    const type = m.type === "vote" ? "vote-response" : "prevote-response";
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ type, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private handleVoteResponse(m: VoteResponseMessage): void {
    const pre = this.role === "precandidate";
    if (m.type !== (pre ? "prevote-response" : "vote-response")) return;
    // A granted pre-vote names the term we would campaign at; anything else is stale.
    if (pre && !m.reject && m.term !== this.term + 1) return;
    if (m.term !== this.term && !(pre && !m.reject)) return;
    const result = this.poll(m.from, !m.reject);
    if (result === "won") {
      if (pre) this.campaign(false);
      else this.becomeLeader();
    } else if (result === "lost") {
      this.becomeFollower(this.term, NONE);
    }
  }

  // ---- message dispatch -------------------------------------------------------------------

  /**
   * Handles a message from another node. Throws RillError(INVALID_REQUEST), with no state
   * changed, if the message is malformed. Messages are handled whatever the configuration
   * (thesis 4.1): a node that is catching up may not know its leader is a voter yet.
   */
  step(m: Message): void {
    validateMessage(m, this.id);
    if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.term) {
      return this.stepLowerTerm(m);
    }
    if (m.type === "prevote" || m.type === "vote") return this.handleVoteRequest(m);
    switch (this.role) {
      case "leader":
        return this.stepLeader(m);
      case "precandidate":
      case "candidate":
        return this.stepCandidate(m);
      case "follower":
        return this.stepFollower(m);
    }
  }

  /** Applies the term rules for a message from a higher term; false if it is to be ignored. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === "prevote" || m.type === "vote") {
      const force = m.type === "vote" && m.transfer;
      const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTicks;
      // A leader was heard from recently: neither bump the term nor vote (thesis 4.2.3).
      if (!force && inLease) return false;
    }
    if (m.type === "prevote") return true;
    if (m.type === "prevote-response" && !m.reject) return true;
    const fromLeader = m.type === "append" || m.type === "heartbeat" || m.type === "snapshot";
    this.becomeFollower(m.term, fromLeader ? m.from : NONE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === "append" || m.type === "heartbeat")) {
      // A stale leader: tell it our term so it steps down. Without this, a node whose term rose
      // while partitioned could never rejoin, since check-quorum leases make peers ignore its votes.
      this.sendAppendResponse(m.from, 0, true, 0, 0);
    } else if (m.type === "prevote") {
      this.send({ type: "prevote-response", from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return; // neither a voter nor an observer (any more)
    switch (m.type) {
      case "append-response":
        pr.recentActive = true;
        return this.handleAppendResponse(m, pr);
      case "heartbeat-response":
        pr.recentActive = true;
        return this.handleHeartbeatResponse(m.from, pr);
      default:
        return; // vote answers arriving late, or another "leader" at our term (impossible)
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "append":
      case "heartbeat":
      case "snapshot":
        this.becomeFollower(m.term, m.from);
        return this.stepFollower(m);
      case "prevote-response":
      case "vote-response":
        return this.handleVoteResponse(m);
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "append":
        this.heardFromLeader(m.from);
        return this.handleAppend(m);
      case "heartbeat":
        this.heardFromLeader(m.from);
        return this.handleHeartbeat(m);
      case "snapshot":
        this.heardFromLeader(m.from);
        return this.handleSnapshot(m);
      case "timeout-now":
        return this.hup(true);
      default:
        return;
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.lead = from;
  }

  // ---- follower side of replication -------------------------------------------------------

  private handleAppend(m: AppendMessage): void {
    if (m.prevIndex < this.log.committed) {
      this.sendAppendResponse(m.from, this.log.committed, false, 0, 0);
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    this.syncConfig();
    if (lastNew !== undefined) {
      this.sendAppendResponse(m.from, lastNew, false, 0, 0);
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    this.sendAppendResponse(m.from, m.prevIndex, true, hint.index, hint.term);
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.log.commitTo(m.commit);
    this.send({ type: "heartbeat-response", from: this.id, to: m.from, term: this.term });
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const s = m.snapshot;
    if (s.meta.index <= this.log.committed) {
      this.sendAppendResponse(m.from, this.log.committed, false, 0, 0);
    } else if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold the snapshot's last entry: just fast-forward the commit index.
      this.log.commitTo(s.meta.index);
      this.sendAppendResponse(m.from, this.log.committed, false, 0, 0);
    } else {
      this.log.restore(s);
      this.syncConfig();
      this.sendAppendResponse(m.from, this.log.lastIndex(), false, 0, 0);
    }
  }

  private sendAppendResponse(to: NodeId, index: number, reject: boolean, hintIndex: number, hintTerm: number): void {
    const m: AppendResponseMessage = {
      type: "append-response",
      from: this.id,
      to,
      term: this.term,
      index,
      reject,
      hintIndex,
      hintTerm,
    };
    this.msgs.push(m);
  }

  // ---- leader side of replication ---------------------------------------------------------

  private handleAppendResponse(m: AppendResponseMessage, pr: Progress): void {
    if (m.reject) {
      const next =
        m.hintTerm > 0 ? this.log.findConflictByTerm(Math.min(m.hintIndex, this.log.lastIndex()), m.hintTerm).index : m.hintIndex;
      if (pr.maybeDecrTo(m.index, next)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (m.index > this.log.lastIndex()) return; // cannot be from this term's log: ignore
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot") {
      if (pr.match + 1 >= this.log.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe(); // installed, but the log was compacted past it since: send a newer one
      }
    } else {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) this.bcastAppend();
    else if (wasPaused) this.sendAppend(m.from);
    while (this.maybeSendAppend(m.from, false));
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    this.maybeStepDownRemoved();
  }

  /**
   * A leader that removed itself leads until the removal commits (thesis 4.2.2), not counting
   * itself; then it hands over to the most caught-up voter and steps down.
   */
  private maybeStepDownRemoved(): void {
    if (this.role !== "leader" || this.isVoter() || this.log.committed < this.log.config().index) return;
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.voters) {
      const match = this.progress.get(id)!.match;
      if (match > bestMatch) [best, bestMatch] = [id, match];
    }
    if (best !== NONE && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    this.becomeFollower(this.term, NONE);
  }

  private handleHeartbeatResponse(from: NodeId, pr: Progress): void {
    pr.paused = false;
    if (pr.state === "replicate") {
      if (pr.inflights.full()) pr.inflights.freeFirstOne();
      // No progress across two heartbeats while behind: an Append was lost; probe again.
      if (pr.match < this.log.lastIndex() && pr.match === pr.heartbeatMatch) pr.becomeProbe();
      else pr.heartbeatMatch = pr.match;
    }
    if (pr.match < this.log.lastIndex()) this.sendAppend(from);
  }

  /** Commits the highest index a quorum holds, if it is from the current term. */
  private maybeCommit(): boolean {
    const matches = this.voters.map((id) => this.progress.get(id)!.match).sort((a, b) => b - a);
    return this.log.maybeCommit(matches[this.quorum() - 1]!, this.term);
  }

  private appendEntries(ents: Entry[]): void {
    this.log.append(ents);
    this.syncConfig();
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends the follower its next Append (or a snapshot if its next entry was compacted). */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to)!;
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const ents = prevTerm === undefined ? undefined : this.log.entriesFrom(pr.next, this.msgBytesMax);
    if (prevTerm === undefined || ents === undefined) return this.maybeSendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    const m: AppendMessage = {
      type: "append",
      from: this.id,
      to,
      term: this.term,
      prevIndex,
      prevTerm,
      entries: ents,
      commit: this.log.committed,
    };
    this.msgs.push(m);
    pr.sentAppend(ents.length === 0 ? prevIndex : ents[ents.length - 1]!.index);
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    pr.becomeSnapshot(snapshot.meta.index);
    this.msgs.push({ type: "snapshot", from: this.id, to, term: this.term, snapshot });
    return true;
  }

  private bcastAppend(): void {
    for (const to of this.peers()) this.sendAppend(to);
  }

  private bcastHeartbeat(): void {
    for (const to of this.peers()) {
      const commit = Math.min(this.progress.get(to)!.match, this.log.committed);
      this.msgs.push({ type: "heartbeat", from: this.id, to, term: this.term, commit });
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.msgs.push({ type: "timeout-now", from: this.id, to, term: this.term });
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private snapshotFailed(pr: Progress): void {
    pr.pendingSnapshot = 0;
    pr.becomeProbe();
    pr.paused = true; // wait for a heartbeat answer before probing again
  }

  // ---- application calls ------------------------------------------------------------------

  /** Appends `data` as a new entry if this node leads; the entry commits later (or never). */
  propose(data: Uint8Array): ProposeResult {
    if (this.role !== "leader") {
      return { ok: false, error: rillError("NOT_LEADER_OR_FOLLOWER", `raft: not the leader (leader is ${this.lead || "unknown"})`) };
    }
    if (this.leadTransferee !== NONE) {
      return { ok: false, error: rillError("NOT_LEADER_OR_FOLLOWER", `raft: transferring leadership to ${this.leadTransferee}`) };
    }
    if (this.log.lastIndex() - this.log.committed >= this.uncommittedMax) {
      return { ok: false, error: rillError("NOT_ENOUGH_REPLICAS", `raft: ${this.uncommittedMax} entries await commit`) };
    }
    const index = this.log.lastIndex() + 1;
    this.appendEntries([{ index, term: this.term, kind: "data", data }]);
    this.bcastAppend();
    return { ok: true, index, term: this.term };
  }

  /**
   * Appends a configuration entry adding or removing one voter (thesis 4.2; KIP-853). Refused,
   * with nothing changed: unless this node leads and has committed an entry of its term (the
   * fix to the single-server change of the thesis); while another change is uncommitted; to add
   * a voter that is not an observer holding every committed entry; to add a voter twice, to
   * remove a non-voter, or to remove the last voter. The change takes effect at once (on the
   * leader now, on each follower when it appends the entry) and is done once committed.
   */
  proposeConfChange(cc: ConfChange, knownDirectoryIds?: ReadonlyMap<NodeId, string>): ProposeResult {
    if (this.role !== "leader") {
      return { ok: false, error: rillError("NOT_LEADER_OR_FOLLOWER", `raft: not the leader (leader is ${this.lead || "unknown"})`) };
    }
    if (this.leadTransferee !== NONE) {
      return { ok: false, error: rillError("NOT_LEADER_OR_FOLLOWER", `raft: transferring leadership to ${this.leadTransferee}`) };
    }
    if (this.log.term(this.log.committed) !== this.term) {
      return { ok: false, error: rillError("REQUEST_TIMED_OUT", "raft: the leader has not committed an entry of its term yet; retry") };
    }
    const current = this.log.config();
    if (current.index > this.log.committed) {
      return {
        ok: false,
        error: rillError(
          "RECONFIGURATION_IN_PROGRESS",
          `raft: the voter change at index ${current.index} is not committed yet; one change at a time`,
        ),
      };
    }
    const next = applyConfChange(current.voters, cc, knownDirectoryIds);
    if (typeof next === "string") {
      const code = cc.type === "add-voter" ? "DUPLICATE_VOTER" : "VOTER_NOT_FOUND";
      return { ok: false, error: rillError(next.includes("last voter") ? "INVALID_REQUEST" : code, `raft: ${next}`) };
    }
    if (cc.type === "add-voter") {
      const pr = this.progress.get(cc.id);
      if (pr === undefined || cc.id === this.id) {
        return { ok: false, error: rillError("VOTER_NOT_FOUND", `raft: node ${cc.id} is not an observer of this leader; start it first`) };
      }
      if (pr.match < this.log.committed) {
        return {
          ok: false,
          error: rillError(
            "REQUEST_TIMED_OUT",
            `raft: node ${cc.id} has not caught up (at ${pr.match}, commit ${this.log.committed}); retry`,
          ),
        };
      }
    }
    const index = this.log.lastIndex() + 1;
    this.appendEntries([{ index, term: this.term, kind: "config", data: encodeVoterSet(next) }]);
    this.bcastAppend();
    return { ok: true, index, term: this.term };
  }

  /** Sets the non-voters a leader replicates to (new voters catch up as observers first). */
  setObservers(ids: readonly NodeId[]): void {
    this.observers = [...new Set(ids)].filter((id) => id !== this.id && Number.isSafeInteger(id) && id > 0);
    if (this.role === "leader") this.syncProgress();
  }

  /** Asks the leader to hand leadership to voter `to`; null if started (or nothing to do). */
  transferLeadership(to: NodeId): RillError | null {
    if (this.role !== "leader") return rillError("NOT_LEADER_OR_FOLLOWER", "raft: only the leader can transfer leadership");
    if (!this.voters.includes(to)) return rillError("INVALID_REQUEST", `raft: ${to} is not a voter`);
    if (to === this.id || to === this.leadTransferee) return null;
    // The transfer must finish within an election timeout, else it is abandoned.
    this.electionElapsed = 0;
    this.leadTransferee = to;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
    return null;
  }

  /** The shell's transport reports whether a snapshot sent to `to` was delivered. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.progress.get(to);
    if (this.role !== "leader" || pr === undefined || pr.state !== "snapshot") return;
    if (ok) pr.becomeProbe();
    else this.snapshotFailed(pr);
    pr.paused = true; // wait for the follower's next answer before sending more
  }

  /** Ready/advance hook: entries up to persistedLastIndex are durable; the leader counts itself. */
  onPersisted(): void {
    if (this.role !== "leader") return;
    const self = this.progress.get(this.id)!;
    if (self.maybeUpdate(this.log.persistedLastIndex()) && this.maybeCommit()) this.bcastAppend();
    this.maybeStepDownRemoved();
  }

  /** Read-only replication progress for status and tests. */
  progressOf(id: NodeId): Readonly<Progress> | undefined {
    return this.progress.get(id);
  }
}
