/**
 * The metadata log on a Raft quorum of controller voters (the KRaft model): a `MetadataStore`
 * whose commits are Raft proposals, committed by a majority before they are applied.
 *
 * This is the shell around the pure Raft core: it ticks it on a timer, feeds it messages from
 * the network, and runs the Ready loop — persist (DiskRaftStorage, fsync), send (the injected
 * transport), apply (records into the MetadataImage, in log order), advance. Every voter applies
 * the same committed entries in the same order, so every voter holds the same image.
 *
 * - A log entry is one commit: a JSON array of MetadataRecords, or a leader's no-op. The
 *   metadata offset of a record is the Raft index of its entry.
 * - Only the leader (the active controller) commits. Commits are serial: `decide` runs against
 *   an image that holds every entry in the leader's log (applied == last index), so decisions
 *   never race each other or act on a stale image; then the proposal waits until it is applied.
 *   A follower's `commit` throws NOT_CONTROLLER naming the leader; the RPC layer forwards.
 * - Every `snapshotIntervalRecords` entries the image is written as a Raft snapshot (the records
 *   that rebuild it) and the log before it is truncated; a voter that lags behind the truncation
 *   receives the snapshot (InstallSnapshot) and replaces its image.
 * - On open the node replays its snapshot and every entry its hard state knows committed, so a
 *   restarted node answers from its last image before it hears from anyone.
 * - The voters live in the log (issue 21; thesis 4.2, KIP-853): `voters` only seeds a fresh
 *   log, and a node whose log says otherwise follows its log. A node with the controller role
 *   that is not a voter is an observer the leader replicates to (every registered node with the
 *   controller role); `addVoter` makes a caught-up observer a voter, `removeVoter` removes one,
 *   one change at a time. Peers announce their directory id with every message (`checkPeer`):
 *   a node whose id is a voter with another directory id (it lost its disk) is refused.
 *
 * Time and I/O are injected (timers, transport, FileSystem, Random).
 */
import { AssertionError } from "../base/assert.ts";
import { rillError, type RillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import type { Timers } from "../base/timers.ts";
import { Listeners, Waiters } from "../base/waiters.ts";
import { DiskRaftStorage } from "../raft/disk-storage.ts";
import { RaftNode, type RaftStatus } from "../raft/node.ts";
import { validateMessage } from "../raft/validate.ts";
import type { Entry, Message, NodeId, Ready, Snapshot } from "../raft/types.ts";
import type { ConfChange, VoterInfo } from "../raft/config.ts";
import type { FileSystem } from "../storage/fs.ts";
import { MetadataImage, snapshotRecords } from "./image.ts";
import { type MetadataRecord, metadataRecordOf } from "./records.ts";
import type { MetadataChange, MetadataStore } from "./store.ts";

/** Where Raft messages go. Sends are fire-and-forget: Raft retries what is lost. */
export interface QuorumTransport {
  /** Sends `messages` (all to `to`, in order). Snapshot messages carry their data. */
  send(to: NodeId, messages: readonly Message[]): void;
}

/** The few log calls the store makes. */
export interface QuorumLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What a voter needs. */
export interface QuorumStoreOptions {
  readonly fs: FileSystem;
  /** The node's data dir; the Raft state lives in `<dataDir>/metadata/raft`. */
  readonly dataDir: string;
  readonly nodeId: NodeId;
  /** The voters of a fresh log (`controller.quorum.voters`); the log's own voter set wins once it has one. */
  readonly voters: readonly NodeId[];
  /** This node's data-directory id (meta.properties), announced to peers; "" when unknown. */
  readonly directoryId?: string;
  readonly random: Random;
  readonly transport: QuorumTransport;
  readonly timers: Timers;
  /** One Raft tick; the leader heartbeats every tick. */
  readonly tickMs: number;
  /** Election timeout in ticks (randomised by Raft between this and twice this). */
  readonly electionTicks: number;
  /** New entries between snapshots. */
  readonly snapshotIntervalRecords: number;
  /** How long a commit may wait for the quorum before REQUEST_TIMED_OUT. Default 10 s. */
  readonly commitTimeoutMs?: number;
  readonly log?: QuorumLog;
}

/** A proposal waiting to be applied. */
interface Pending {
  readonly index: number;
  readonly term: number;
  readonly resolve: (change: MetadataChange) => void;
  readonly reject: (e: Error) => void;
}

const silent: QuorumLog = { info() {}, warn() {}, error() {} };

/** What a no-op entry looks like to an observer: no records. */
const EMPTY_ENTRY = Buffer.from("[]");

/** Encodes one commit's records as a log entry. */
export function encodeEntry(records: readonly MetadataRecord[]): Uint8Array {
  return Buffer.from(JSON.stringify(records), "utf8");
}

/** Decodes a log entry or snapshot written by `encodeEntry`; throws on anything else. */
export function decodeEntry(data: Uint8Array): MetadataRecord[] {
  const v: unknown = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  if (!Array.isArray(v)) throw new Error("metadata entry is not a list of records");
  return v.map(metadataRecordOf);
}

/** A controller voter's metadata store. */
export class QuorumMetadataStore implements MetadataStore {
  private _image: MetadataImage;
  private readonly storage: DiskRaftStorage;
  private readonly node: RaftNode;
  private readonly listeners = new Listeners<[MetadataChange]>();
  private readonly leaderListeners = new Listeners<[NodeId, number]>();
  private readonly pending: Pending[] = [];
  private readonly waiters: Waiters;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly ticker: unknown;
  private pumping = false;
  /** The Ready loop that runs now (or the last one): close() waits for it. */
  private loopDone: Promise<void> = Promise.resolve();
  private pumpAgain = false;
  private closed = false;
  private lastSnapshotIndex: number;
  private readonly log: QuorumLog;
  /** Set once the Ready loop fails (a disk error): the node stops taking part. */
  private failure: Error | null = null;
  /** The directory id each peer announced with its messages. */
  private readonly peerDirs = new Map<NodeId, string>();
  /** A voter change runs (on the leader): another is refused until it ends. */
  private changing = false;

  private constructor(private readonly o: QuorumStoreOptions) {
    this.log = o.log ?? silent;
    this.waiters = new Waiters(o.timers, {
      onTimeout: (what, ms) => rillError("REQUEST_TIMED_OUT", `timed out after ${ms} ms waiting for ${what}`),
      onClose: () => rillError("SHUTTING_DOWN", "the controller is shutting down"),
    });
    const dir = o.fs.join(o.dataDir, "metadata", "raft");
    o.fs.mkdirp(dir);
    this.storage = DiskRaftStorage.open(o.fs, dir, o.voters);
    const snap = this.storage.snapshot();
    this._image = snap.meta.index > 0 ? MetadataImage.fromSnapshot(decodeEntry(snap.data), snap.meta.index) : new MetadataImage();
    this.lastSnapshotIndex = snap.meta.index;
    this.node = new RaftNode({
      id: o.nodeId,
      storage: this.storage,
      random: o.random,
      electionTicks: o.electionTicks,
      heartbeatTicks: 1,
      applied: snap.meta.index,
    });
    // Replay what this node already knows committed, before serving anything.
    this.applyKnownCommitted();
    this.ticker = o.timers.setInterval(() => this.tick(), o.tickMs);
    (this.ticker as { unref?: () => void }).unref?.();
    const st = this.node.status();
    if ([...st.voters].sort().join(",") !== [...o.voters].sort().join(","))
      this.log.info(
        { configured: o.voters, log: st.voters },
        "metadata quorum: the voters of the log differ from controller.quorum.voters; the log's are in effect",
      );
    this.syncObservers();
    // A quorum of one needs no election timeout: it leads at once.
    if (st.isVoter && st.voters.length === 1) this.node.campaign();
    this.pump();
  }

  /** Resolves once `cond` holds (checked after every applied change), or rejects after `timeoutMs`. */
  waitUntil(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return this.waitFor(cond, what, timeoutMs);
  }

  /** Opens (creating if needed) this voter's Raft state and replays it. */
  static open(o: QuorumStoreOptions): QuorumMetadataStore {
    return new QuorumMetadataStore(o);
  }

  get image(): MetadataImage {
    return this._image;
  }

  /** The Raft state of this voter. */
  status(): RaftStatus {
    return this.node.status();
  }

  /** The active controller's node id, or 0 when none is known. */
  get leader(): NodeId {
    return this.node.status().leader;
  }

  /** Whether this node is the active controller. */
  get isLeader(): boolean {
    return this.node.status().role === "leader";
  }

  /** Calls `fn` whenever the known leader or the term changes. Returns an unsubscribe function. */
  onLeaderChange(fn: (leader: NodeId, term: number) => void): () => void {
    return this.leaderListeners.add(fn);
  }

  onChange(fn: (change: MetadataChange) => void): () => void {
    return this.listeners.add(fn);
  }

  /**
   * Hands messages from the network to the Raft core. A malformed message throws
   * RillError(INVALID_REQUEST) and changes nothing; stale ones are ignored by the core.
   */
  receive(messages: readonly Message[]): void {
    if (this.closed) throw rillError("SHUTTING_DOWN", "the controller is shutting down");
    // Every message is checked before any is stepped: all or nothing.
    messages.forEach((m, i) => {
      if (m.to !== this.o.nodeId)
        throw rillError("INVALID_REQUEST", `messages[${i}]: a message for node ${m.to} reached node ${this.o.nodeId}`);
      validateMessage(m, this.o.nodeId);
      // What would be applied must be metadata: a bad entry or snapshot is refused here rather
      // than persisted, committed, and then fatal to every replay.
      try {
        if (m.type === "append") for (const e of m.entries) if (e.kind === "data") decodeEntry(e.data);
        if (m.type === "snapshot") MetadataImage.fromSnapshot(decodeEntry(m.snapshot.data), m.snapshot.meta.index);
      } catch (e) {
        throw rillError(
          "INVALID_REQUEST",
          `messages[${i}]: ${m.type === "append" ? "an entry" : "the snapshot"} is not a list of metadata records: ${(e as Error).message}`,
        );
      }
    });
    for (const m of messages) this.node.step(m);
    this.pump();
  }

  /**
   * Checks who sent Raft messages: `directoryId` is the one the peer announced. A peer whose id
   * is a voter with another known directory id lost its disk (or is an impostor): refused with
   * INVALID_VOTER_KEY, its messages never reach the core. A node that is neither a voter nor a
   * registered controller: INVALID_REQUEST.
   */
  checkPeer(from: NodeId, directoryId: string): void {
    if (this.closed) throw rillError("SHUTTING_DOWN", "the controller is shutting down");
    // A voter (in effect or last committed), or a registered node with the controller role (an
    // observer catching up before it is added); anyone else's Raft messages are refused.
    const registered = this._image.brokers.get(from);
    if (!this.node.isKnownVoter(from) && (registered === undefined || !registered.roles.includes("controller")))
      throw rillError(
        "INVALID_REQUEST",
        `from_node_id: ${from} is not another voter of this quorum nor a registered node with the controller role (voters: ${this.node
          .status()
          .config.map((v) => v.id)
          .join(", ")})`,
      );
    const voter = this.node.status().config.find((v) => v.id === from);
    if (voter !== undefined && voter.directoryId !== "" && directoryId !== voter.directoryId)
      throw rillError(
        "INVALID_VOTER_KEY",
        `node ${from} announces directory id "${directoryId}", but the voter ${from} of the quorum has directory id ${voter.directoryId}; a node whose data directory was replaced must be removed and added again`,
      );
    if (directoryId !== "") this.peerDirs.set(from, directoryId);
  }

  /** This node's directory id ("" when it has none). */
  get directoryId(): string {
    return this.o.directoryId ?? "";
  }

  /** The voters in effect (the log's latest voter set), with their directory ids. */
  voterSet(): readonly VoterInfo[] {
    return this.node.status().config;
  }

  /**
   * Adds node `id` as a voter (on the active controller). It must be a registered node with the
   * controller role that follows the log as an observer; `directoryId` ("": any) must be the one
   * it announces. Waits until it holds every committed entry, then commits the change. Errors:
   * NOT_CONTROLLER, RECONFIGURATION_IN_PROGRESS (another change runs), DUPLICATE_VOTER,
   * VOTER_NOT_FOUND (not such a node), INVALID_VOTER_KEY, REQUEST_TIMED_OUT (it did not catch up).
   */
  addVoter(id: NodeId, directoryId: string): Promise<readonly VoterInfo[]> {
    return this.changeVoters(async () => {
      if (this.node.status().voters.includes(id))
        throw rillError("DUPLICATE_VOTER", `node_id: ${id} is already a voter of the controller quorum`);
      const b = this._image.brokers.get(id);
      if (b === undefined || !b.roles.includes("controller"))
        throw rillError(
          "VOTER_NOT_FOUND",
          `node_id: ${id} is not a registered node with the controller role (start it with process.roles=broker,controller, then add it)`,
        );
      await this.waitFor(() => this.peerDirs.has(id), `node ${id} to follow the metadata log as an observer`);
      const seen = this.peerDirs.get(id)!;
      if (directoryId !== "" && directoryId !== seen)
        throw rillError("INVALID_VOTER_KEY", `directory_id: node ${id} runs with directory id ${seen}, not ${directoryId}`);
      return { type: "add-voter", id, directoryId: seen };
    });
  }

  /**
   * Removes voter `id` (on the active controller; it may be this node, which then steps down
   * once the removal commits). Errors: NOT_CONTROLLER, RECONFIGURATION_IN_PROGRESS,
   * VOTER_NOT_FOUND, INVALID_REQUEST (the last voter).
   */
  removeVoter(id: NodeId): Promise<readonly VoterInfo[]> {
    return this.changeVoters(async () => {
      const voters = this.node.status().voters;
      if (!voters.includes(id))
        throw rillError("VOTER_NOT_FOUND", `node_id: ${id} is not a voter of the controller quorum (voters: ${voters.join(", ")})`);
      if (voters.length === 1)
        throw rillError("INVALID_REQUEST", `node_id: ${id} is the last voter; the controller quorum cannot be empty`);
      return { type: "remove-voter", id };
    });
  }

  private async changeVoters(prepare: () => Promise<ConfChange>): Promise<readonly VoterInfo[]> {
    this.checkOpen();
    if (!this.isLeader) throw this.notController();
    if (this.changing)
      throw rillError("RECONFIGURATION_IN_PROGRESS", "another change of the controller voters is in progress; one change at a time");
    this.changing = true;
    try {
      await this.waitFor(() => this.isLeader && this.caughtUp(), "the new controller to catch up with its log");
      const cc = await prepare();
      // The leader must have committed an entry of its term, and a new voter every committed
      // entry; an earlier change (of a previous leader) must have committed: retried until then.
      let res: ReturnType<RaftNode["proposeConfChange"]> | null = null;
      const retry = new Set(["REQUEST_TIMED_OUT", "RECONFIGURATION_IN_PROGRESS"]);
      await this.waitFor(
        () => {
          if (!this.isLeader) return true;
          res = this.node.proposeConfChange(cc, this.peerDirs);
          return res.ok || !retry.has(res.error.kind.name);
        },
        cc.type === "add-voter" ? `node ${cc.id} to catch up with the metadata log` : "the controller to commit an entry of its term",
      );
      const r = res as ReturnType<RaftNode["proposeConfChange"]> | null;
      if (r === null || !this.isLeader) throw this.notController();
      if (!r.ok) throw r.error;
      const term = this.node.status().term;
      const applied = new Promise<MetadataChange>((resolve, reject) => this.pending.push({ index: r.index, term, resolve, reject }));
      this.pump();
      await this.withTimeout(applied, `the voter change at offset ${r.index}`);
      this.log.info(
        { change: cc.type, node: cc.id, voters: this.node.configAt(r.index).map((v) => v.id) },
        "metadata quorum: voters changed",
      );
      return this.node.configAt(r.index);
    } finally {
      this.changing = false;
    }
  }

  /** The leader replicates to every registered node with the controller role that is not a voter. */
  private syncObservers(): void {
    const voters = this.node.status().voters;
    const ids: NodeId[] = [];
    for (const [id, b] of this._image.brokers)
      if (b.roles.includes("controller") && !voters.includes(id) && id !== this.o.nodeId) ids.push(id);
    this.node.setObservers(ids);
  }

  /** The transport's report on a snapshot it was asked to send. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    if (this.closed) return;
    this.node.reportSnapshot(to, ok);
    this.pump();
  }

  /** Hands leadership to `to` (controlled shutdown of the active controller). */
  transferLeadership(to: NodeId): RillError | null {
    const e = this.node.transferLeadership(to);
    this.pump();
    return e;
  }

  commit(decide: (image: MetadataImage) => MetadataRecord[]): Promise<MetadataChange> {
    const run = async (): Promise<MetadataChange> => {
      this.checkOpen();
      if (!this.isLeader) throw this.notController();
      await this.waitFor(() => this.isLeader && this.caughtUp(), "the new controller to catch up with its log");
      const term = this.node.status().term;
      const records = decide(this._image);
      if (records.length === 0) return { records: [], offset: this._image.offset };
      const res = this.node.propose(encodeEntry(records));
      if (!res.ok) throw res.error;
      const applied = new Promise<MetadataChange>((resolve, reject) => this.pending.push({ index: res.index, term, resolve, reject }));
      this.pump();
      return this.withTimeout(applied, `metadata commit at offset ${res.index}`);
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  /**
   * Committed, applied entries after `after` for an observer (a broker that is not a voter):
   * the snapshot when they were truncated away, then entries up to `maxBytes`.
   */
  readCommitted(
    after: number,
    maxBytes: number,
  ): { snapshot: { offset: number; data: Uint8Array } | null; entries: Array<{ offset: number; records: Uint8Array }> } {
    this.checkOpen();
    const applied = this._image.offset;
    let from = after + 1;
    let snapshot: { offset: number; data: Uint8Array } | null = null;
    if (from < this.storage.firstIndex()) {
      const snap = this.storage.snapshot();
      if (snap.meta.index > 0 && snap.meta.index > after) snapshot = { offset: snap.meta.index, data: snap.data };
      from = Math.max(from, snap.meta.index + 1);
    }
    const entries: Array<{ offset: number; records: Uint8Array }> = [];
    if (from <= applied) {
      for (const e of this.storage.entries(from, applied + 1, maxBytes)) {
        entries.push({ offset: e.index, records: e.kind === "data" ? e.data : EMPTY_ENTRY });
      }
    }
    return { snapshot, entries };
  }

  /** Resolves once the image holds offset `offset` (or rejects after `timeoutMs`). */
  async waitForOffset(offset: number, timeoutMs: number): Promise<void> {
    await this.waitFor(() => this._image.offset >= offset, `metadata offset ${offset}`, timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.timers.clearInterval(this.ticker);
    for (const p of this.pending.splice(0)) p.reject(rillError("SHUTTING_DOWN", "the controller is shutting down"));
    this.waiters.close();
    await this.queue;
    // No loop starts once closed; wait for the one that may still be persisting.
    await this.loopDone.catch(() => undefined);
    this.storage.close();
  }

  private notController(): RillError {
    const leader = this.leader;
    return rillError(
      "NOT_CONTROLLER",
      `node ${this.o.nodeId} is not the active controller (${leader === 0 ? "no controller is elected yet" : `the active controller is node ${leader}`})`,
    );
  }

  private checkOpen(): void {
    if (this.closed) throw rillError("SHUTTING_DOWN", "the controller is shutting down");
    if (this.failure) throw rillError("KAFKA_STORAGE_ERROR", `the metadata log failed: ${this.failure.message}`);
  }

  private caughtUp(): boolean {
    const s = this.node.status();
    return s.applied === s.lastIndex;
  }

  private tick(): void {
    if (this.closed || this.failure) return;
    this.node.tick();
    this.pump();
  }

  /**
   * Waits until `cond` holds, re-checked after each Ready; rejects on close, when the Raft loop
   * fails, or on timeout (NOT_CONTROLLER naming the leader when another node leads by then).
   */
  private waitFor(cond: () => boolean, what: string, timeoutMs = this.o.commitTimeoutMs ?? 10_000): Promise<void> {
    return this.waiters.waitUntil(cond, what, timeoutMs, {
      failure: () => (this.failure ? rillError("KAFKA_STORAGE_ERROR", `the metadata log failed: ${this.failure.message}`) : null),
      timeoutError: () =>
        this.isLeader || this.leader === 0
          ? rillError("REQUEST_TIMED_OUT", `timed out after ${timeoutMs} ms waiting for ${what}`)
          : this.notController(),
    });
  }

  private withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
    const ms = this.o.commitTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const timer = this.o.timers.setTimeout(
        () => reject(rillError("REQUEST_TIMED_OUT", `timed out after ${ms} ms waiting for ${what}; it may still be applied`)),
        ms,
      );
      p.then(
        (v) => {
          this.o.timers.clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          this.o.timers.clearTimeout(timer);
          reject(e as Error);
        },
      );
    });
  }

  /** Applies the committed entries a restarted node already holds (synchronously). */
  private applyKnownCommitted(): void {
    const commit = this.storage.hardState().commit;
    let applied = this.storage.snapshot().meta.index;
    while (applied < commit) {
      const ents = this.storage.entries(applied + 1, commit + 1, 1 << 20);
      for (const e of ents) this.applyEntry(e);
      applied = ents[ents.length - 1]!.index;
    }
    // The core hands these out again in its first Ready; applyEntry skips what the image holds.
  }

  /** Runs the Ready loop until the core has nothing more; one loop at a time. */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    if (this.closed || this.failure) return;
    this.pumping = true;
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        while (!this.closed && this.node.hasReady()) {
          const rd = this.node.ready()!;
          await this.handle(rd);
        }
      } while (this.pumpAgain && !this.closed);
    } catch (e) {
      // A bug (a failed assertion in Raft, the image or a listener) stops the process: the
      // rejection of this loop is unhandled on purpose.
      if (e instanceof AssertionError) throw e;
      this.failure = e as Error;
      this.log.error({ err: e }, "metadata quorum: the Raft loop failed; this controller stops taking part");
      for (const p of this.pending.splice(0))
        p.reject(rillError("KAFKA_STORAGE_ERROR", `the metadata log failed: ${(e as Error).message}`));
    } finally {
      this.pumping = false;
      this.waiters.notify();
    }
  }

  private async handle(rd: Ready): Promise<void> {
    // 1. persist (snapshot, entries, fsync, hard state)
    await this.storage.persist(rd);
    if (this.closed) return;
    // 2. send, only now
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of rd.messages) {
      let list = byPeer.get(m.to);
      if (!list) byPeer.set(m.to, (list = []));
      list.push(m);
    }
    for (const [to, msgs] of byPeer) this.o.transport.send(to, msgs);
    // 3. apply
    if (rd.snapshot !== null) this.installSnapshot(rd.snapshot);
    for (const e of rd.committedEntries) this.applyEntry(e);
    // 4. advance
    this.node.advance(rd);
    if (rd.committedEntries.length > 0 || rd.snapshot !== null || rd.entries.some((e) => e.kind === "config")) this.syncObservers();
    if (rd.softState !== null) {
      const s = this.node.status();
      this.log.info({ leader: s.leader, term: s.term, role: s.role }, "metadata quorum: leader changed");
      this.leaderListeners.emit(s.leader, s.term);
    }
    this.maybeSnapshot();
    this.waiters.notify();
  }

  private installSnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this._image.offset) return;
    const records = decodeEntry(snap.data);
    this._image = MetadataImage.fromSnapshot(records, snap.meta.index);
    this.lastSnapshotIndex = snap.meta.index;
    this.failPendingUpTo(snap.meta.index);
    this.notify({ records, offset: snap.meta.index, snapshot: true });
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this._image.offset) return; // replayed at open, or covered by a snapshot
    let records: MetadataRecord[] = [];
    if (e.kind === "data") {
      records = decodeEntry(e.data);
      for (const r of records) this._image.apply(r, e.index);
    }
    this._image.offset = e.index;
    const change: MetadataChange = { records, offset: e.index };
    while (this.pending.length > 0 && this.pending[0]!.index <= e.index) {
      const p = this.pending.shift()!;
      if (p.index === e.index && p.term === e.term) p.resolve(change);
      else p.reject(rillError("NOT_CONTROLLER", `leadership changed before the change at offset ${p.index} committed; it was not applied`));
    }
    if (records.length > 0) this.notify(change);
  }

  /**
   * Tells every listener; a listener that throws is logged and does not stop the others, unless
   * it failed an assertion (a bug: it propagates and stops the process).
   */
  private notify(change: MetadataChange): void {
    this.listeners.emitGuarded((e) => this.log.error({ err: e, offset: change.offset }, "metadata listener failed"), change);
  }

  private failPendingUpTo(index: number): void {
    while (this.pending.length > 0 && this.pending[0]!.index <= index) {
      this.pending.shift()!.reject(rillError("NOT_CONTROLLER", "a snapshot replaced the log; the change's outcome is unknown"));
    }
  }

  /** Writes a snapshot of the image and truncates the log once enough entries were applied. */
  private maybeSnapshot(): void {
    const applied = this.node.status().applied;
    if (applied - this.lastSnapshotIndex < this.o.snapshotIntervalRecords) return;
    if (this._image.offset !== applied) return;
    this.storage.createSnapshot(applied, encodeEntry(snapshotRecords(this._image)));
    this.lastSnapshotIndex = applied;
    // Keep half an interval of entries so a briefly lagging voter catches up without a snapshot.
    const keepFrom = applied - Math.floor(this.o.snapshotIntervalRecords / 2);
    if (keepFrom > this.storage.firstIndex()) this.storage.compact(keepFrom);
    this.log.info({ index: applied }, "metadata quorum: wrote a snapshot");
  }
}
