/**
 * Classic groups (Kafka's JoinGroup/SyncGroup/Heartbeat/LeaveGroup protocol, client-side
 * assignment), on the same coordinator shard as KIP-848 consumer groups.
 *
 * Members join with a protocol type ("consumer") and a list of (protocol name, metadata bytes).
 * The coordinator waits for every member to (re)join within the rebalance timeout (an empty
 * group's first rebalance also waits `initialRebalanceDelayMs` for more members, restarted by
 * each new one, bounded by the rebalance timeout, like Kafka's group.initial.rebalance.delay.ms),
 * picks a protocol every member supports (the one most members prefer), keeps or elects a
 * leader, and answers every waiting JoinGroup with the new generation; the leader's answer lists
 * every member's metadata. SyncGroup waits for the leader's assignments, then each member gets
 * its bytes and the group is Stable. Heartbeats answer REBALANCE_IN_PROGRESS while members must
 * rejoin. Members whose session runs out, or who do not sync in time, are removed.
 *
 * What is written (as Kafka's GroupMetadataValue): the group's generation — protocol type,
 * generation id, protocol, leader, members with their metadata and assignment — once the
 * leader's assignment is in, when the group becomes empty, and when a static member is
 * replaced. The rebalance in between (who has rejoined, who waits for an answer, pending member
 * ids, heartbeat times and deadlines) is live state of this coordinator, like the KIP-848
 * members' timers: never written, and rebuilt from the last written generation (as a Stable or
 * Empty group) by a coordinator that loads the shard. Members of a rebalance that was under way
 * then get ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID and join again, as with Kafka.
 *
 * Handlers change nothing: they work on a copy of the group's live state and return the
 * records, the answer, answers for other members' waiting requests (`deliveries`), and an
 * `effects` callback that installs the copy; the runtime calls it once the records are written
 * and replayed. A group uses one protocol at a time: a JoinGroup for a consumer group with
 * members is INCONSISTENT_GROUP_PROTOCOL (an empty one becomes classic), and the facade refuses a
 * KIP-848 join to a classic group with members (an empty one becomes a consumer group).
 */
import { assert } from "../base/assert.ts";
import type { RillError } from "../base/errors.ts";
import { rillError } from "../base/errors.ts";
import type { Random } from "../base/random.ts";
import type { GroupState } from "./group-state.ts";
import { REBALANCE_TIMEOUT_MAX_MS } from "./limits.ts";
import type { ClassicMemberEntry, GroupRecord } from "./records.ts";
import { classicGroupRecord } from "./records.ts";
import {
  checkListLength,
  validateClientString,
  validateGroupId,
  validateId,
  validateInstanceId,
  validateInt,
  validateMemberId,
} from "./validate.ts";

/** A classic group's state, by Kafka's names. */
export type ClassicStateName = "PreparingRebalance" | "CompletingRebalance" | "Stable" | "Empty" | "Dead";

/** One protocol a member supports (for "consumer": an assignor name and its subscription bytes). */
export interface ClassicProtocol {
  readonly name: string;
  readonly metadata: Uint8Array;
}

/** A JoinGroup. */
export interface JoinGroupRequest {
  readonly groupId: string;
  /** "" to join as a new member. */
  readonly memberId: string;
  readonly instanceId: string | null;
  readonly protocolType: string;
  readonly protocols: readonly ClassicProtocol[];
  readonly sessionTimeoutMs: number;
  /** How long the coordinator waits for members to rejoin; 0 or less: the session timeout. */
  readonly rebalanceTimeoutMs: number;
  readonly clientId: string;
  readonly clientHost: string;
  /** JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its id, and joins again with it. */
  readonly requireKnownMemberId: boolean;
}

/** A member as the leader's JoinGroup answer lists it. */
export interface JoinedMember {
  readonly memberId: string;
  readonly instanceId: string | null;
  readonly metadata: Uint8Array;
}

/** The answer to a JoinGroup. */
export interface JoinGroupResponse {
  readonly error: RillError | null;
  /** -1 with an error. */
  readonly generation: number;
  readonly protocolType: string | null;
  readonly protocol: string | null;
  readonly leader: string;
  /** The member's id (with MEMBER_ID_REQUIRED: the id to join again with). */
  readonly memberId: string;
  /** Every member with its metadata for the chosen protocol: for the leader only. */
  readonly members: readonly JoinedMember[];
}

/** A SyncGroup. The leader sends the assignments; the others send none. */
export interface SyncGroupRequest {
  readonly groupId: string;
  readonly memberId: string;
  readonly generation: number;
  readonly instanceId: string | null;
  /** SyncGroup v5+: checked against the group's when given. */
  readonly protocolType: string | null;
  readonly protocol: string | null;
  readonly assignments: readonly { readonly memberId: string; readonly assignment: Uint8Array }[];
}

/** The answer to a SyncGroup. */
export interface SyncGroupResponse {
  readonly error: RillError | null;
  readonly protocolType: string | null;
  readonly protocol: string | null;
  readonly assignment: Uint8Array;
}

/** A classic member's Heartbeat. */
export interface ClassicHeartbeatRequest {
  readonly groupId: string;
  readonly memberId: string;
  readonly generation: number;
  readonly instanceId: string | null;
}

/** A LeaveGroup: one or more members (v3+ batches them; a static member may give only its instance id). */
export interface LeaveGroupRequest {
  readonly groupId: string;
  readonly members: readonly { readonly memberId: string; readonly instanceId: string | null }[];
}

/** The outcome per leaving member. */
export interface LeaveGroupResponse {
  readonly members: readonly { readonly memberId: string; readonly instanceId: string | null; readonly error: RillError | null }[];
}

/** An answer for a request that waits (a JoinGroup or SyncGroup), given when the rebalance gets there. */
export type ClassicDelivery =
  | { readonly kind: "join"; readonly groupId: string; readonly memberId: string; readonly response: JoinGroupResponse }
  | { readonly kind: "sync"; readonly groupId: string; readonly memberId: string; readonly response: SyncGroupResponse };

/** A handler's outcome: its answer now (null: it waits for a delivery), and answers for others. */
export interface ClassicOutcome<T> {
  /** The member the request is about (a new member's id once it has one). */
  readonly memberId: string;
  readonly answer: T | null;
  readonly deliveries: readonly ClassicDelivery[];
}

/** A classic member as DescribeGroups shows it. */
export interface ClassicMemberDescription {
  readonly memberId: string;
  readonly instanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  /** Its metadata for the group's protocol (empty while none is chosen). */
  readonly metadata: Uint8Array;
  readonly assignment: Uint8Array;
}

/** A classic group as DescribeGroups shows it. */
export interface ClassicGroupDescription {
  readonly state: ClassicStateName;
  readonly protocolType: string;
  readonly protocol: string;
  readonly generation: number;
  readonly leader: string;
  readonly members: ClassicMemberDescription[];
}

/** A handler's result with the callback that installs its live-state changes (after the records are written). */
export interface ClassicResult<T> {
  readonly records: GroupRecord[];
  readonly response: T;
  readonly effects: () => void;
}

/** What the manager needs (bounds already validated by the facade). */
export interface ClassicOptions {
  readonly random: Random;
  readonly minSessionTimeoutMs: number;
  readonly maxSessionTimeoutMs: number;
  readonly initialRebalanceDelayMs: number;
  readonly groupsMax: number;
  readonly membersPerGroupMax: number;
  /** Tombstones for what a consumer group without members leaves (it becomes classic). */
  readonly consumerLeftovers: (g: GroupState) => GroupRecord[];
}

/** Longest protocol type or protocol name, in characters. */
export const CLASSIC_PROTOCOL_NAME_MAX = 255;
/** Protocols one member may offer. */
export const CLASSIC_PROTOCOLS_MAX = 32;
/** Bytes of one member's metadata or assignment. */
export const CLASSIC_METADATA_BYTES_MAX = 1 << 20;

interface LiveMember {
  readonly memberId: string;
  readonly instanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: readonly ClassicProtocol[];
  assignment: Uint8Array;
  awaitingJoin: boolean;
  awaitingSync: boolean;
  lastHeartbeatMs: number;
}

interface LiveGroup {
  state: ClassicStateName;
  protocolType: string | null;
  generation: number;
  protocol: string | null;
  leader: string | null;
  /** In join order. */
  members: Map<string, LiveMember>;
  /** Member ids given with MEMBER_ID_REQUIRED, each until its join deadline. */
  pending: Map<string, number>;
  /** PreparingRebalance: when the join completes anyway; CompletingRebalance: when members that did not sync are removed. */
  deadlineMs: number | null;
  /** The first rebalance of an empty group: when it must complete at the latest (it waits for more members until then). */
  initialLimitMs: number | null;
}

const EMPTY = new Uint8Array(0);
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const ID_CHARS = 22;

function cloneLive(l: LiveGroup): LiveGroup {
  const members = new Map<string, LiveMember>();
  for (const [id, m] of l.members) members.set(id, { ...m });
  return { ...l, members, pending: new Map(l.pending) };
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function unb64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "base64"));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function sameProtocols(a: readonly ClassicProtocol[], b: readonly ClassicProtocol[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i]!.name && sameBytes(p.metadata, b[i]!.metadata));
}

function errorJoin(error: RillError, memberId: string): JoinGroupResponse {
  return { error, generation: -1, protocolType: null, protocol: null, leader: "", memberId, members: [] };
}

function errorSync(error: RillError): SyncGroupResponse {
  return { error, protocolType: null, protocol: null, assignment: EMPTY };
}

/** A handler's working copy of one group: its live state, the records and the deliveries. */
class ClassicTx {
  readonly records: GroupRecord[] = [];
  readonly deliveries: ClassicDelivery[] = [];
  constructor(
    readonly groupId: string,
    readonly live: LiveGroup,
  ) {}

  deliverJoin(memberId: string, response: JoinGroupResponse): void {
    this.deliveries.push({ kind: "join", groupId: this.groupId, memberId, response });
  }

  deliverSync(memberId: string, response: SyncGroupResponse): void {
    this.deliveries.push({ kind: "sync", groupId: this.groupId, memberId, response });
  }
}

/** The classic groups of one coordinator shard. */
export class ClassicManager {
  private readonly live = new Map<string, LiveGroup>();

  /** `groups`: the shard's groups as replayed (read only here; the facade replays). */
  constructor(
    private readonly groups: ReadonlyMap<string, GroupState>,
    private readonly o: ClassicOptions,
  ) {}

  /** Forgets a group's live state (its classic record was deleted). */
  forget(groupId: string): void {
    this.live.delete(groupId);
  }

  /** True when the group is classic and has members (or members in the middle of joining). */
  isActive(groupId: string): boolean {
    const l = this.live.get(groupId);
    if (l !== undefined) return l.members.size > 0 || l.pending.size > 0;
    return (this.groups.get(groupId)?.classic?.members.length ?? 0) > 0;
  }

  /** True when the group is classic (with or without members). */
  isClassic(groupId: string): boolean {
    return this.live.has(groupId) || (this.groups.get(groupId)?.classic ?? null) !== null;
  }

  /** Ids of classic groups that exist only live (their first generation is not written yet). */
  liveOnlyGroupIds(): string[] {
    return [...this.live.keys()].filter((id) => !this.groups.has(id));
  }

  /** Members of a classic group (0 for other groups). */
  memberCount(groupId: string): number {
    const l = this.live.get(groupId);
    if (l !== undefined) return l.members.size;
    return this.groups.get(groupId)?.classic?.members.length ?? 0;
  }

  /** A copy of the group's live state (built from its last written generation after a load), or undefined. */
  private liveCopy(groupId: string, now: number): LiveGroup | undefined {
    const l = this.live.get(groupId);
    if (l !== undefined) return cloneLive(l);
    const c = this.groups.get(groupId)?.classic;
    if (c === undefined || c === null) return undefined;
    const members = new Map<string, LiveMember>();
    for (const m of c.members) {
      members.set(m.memberId, {
        memberId: m.memberId,
        instanceId: m.instanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        protocols: c.protocol === null ? [] : [{ name: c.protocol, metadata: unb64(m.metadata) }],
        assignment: unb64(m.assignment),
        awaitingJoin: false,
        awaitingSync: false,
        lastHeartbeatMs: now,
      });
    }
    return {
      state: members.size > 0 ? "Stable" : "Empty",
      protocolType: c.protocolType === "" ? null : c.protocolType,
      generation: c.generation,
      protocol: c.protocol,
      leader: c.leader,
      members,
      pending: new Map(),
      deadlineMs: null,
      initialLimitMs: null,
    };
  }

  private result<T>(tx: ClassicTx | null, response: T): ClassicResult<T> {
    if (tx === null) return { records: [], response, effects: () => {} };
    const { groupId, live } = tx;
    return {
      records: tx.records,
      response,
      effects: () => this.install(groupId, live),
    };
  }

  /** Installs a handler's live state; an empty group with nothing written is forgotten. */
  private install(groupId: string, live: LiveGroup): void {
    const written = (this.groups.get(groupId)?.classic ?? null) !== null;
    if (!written && live.members.size === 0 && live.pending.size === 0) this.live.delete(groupId);
    else this.live.set(groupId, live);
  }

  // -------------------------------------------------------------------------------------------
  // JoinGroup

  /** A JoinGroup: answered now (an error, MEMBER_ID_REQUIRED, or the current generation) or once the rebalance completes. */
  join(req: JoinGroupRequest, now: number): ClassicResult<ClassicOutcome<JoinGroupResponse>> {
    const groupId = validateGroupId(req.groupId);
    const memberId = validateMemberId(req.memberId, true);
    const instanceId = req.instanceId === null ? null : validateInstanceId(req.instanceId);
    const clientId = validateClientString(req.clientId, "clientId");
    const clientHost = validateClientString(req.clientHost, "clientHost");
    const protocolType = validateId(req.protocolType, "protocolType", CLASSIC_PROTOCOL_NAME_MAX, true);
    checkListLength(req.protocols, "protocols", CLASSIC_PROTOCOLS_MAX);
    req.protocols.forEach((p, i) => {
      validateId(p.name, `protocols[${i}].name`, CLASSIC_PROTOCOL_NAME_MAX, false);
      if (p.metadata.byteLength > CLASSIC_METADATA_BYTES_MAX)
        throw rillError(
          "INVALID_ARGUMENT",
          `protocols[${i}].metadata: ${p.metadata.byteLength} bytes, more than ${CLASSIC_METADATA_BYTES_MAX}`,
        );
    });
    const refuse = (error: RillError) => this.result(null, { memberId, answer: errorJoin(error, memberId), deliveries: [] });
    const s = req.sessionTimeoutMs;
    if (!Number.isSafeInteger(s) || s < this.o.minSessionTimeoutMs || s > this.o.maxSessionTimeoutMs)
      return refuse(
        rillError(
          "INVALID_SESSION_TIMEOUT",
          `sessionTimeoutMs: ${s} is outside ${this.o.minSessionTimeoutMs}..${this.o.maxSessionTimeoutMs} (group.min/max.session.timeout.ms)`,
        ),
      );
    const rebalanceTimeoutMs =
      req.rebalanceTimeoutMs <= 0 ? s : validateInt(req.rebalanceTimeoutMs, "rebalanceTimeoutMs", 1, REBALANCE_TIMEOUT_MAX_MS);
    if (protocolType === "" || req.protocols.length === 0)
      return refuse(
        rillError("INCONSISTENT_GROUP_PROTOCOL", "protocolType, protocols: a member must give a protocol type and at least one protocol"),
      );

    const g = this.groups.get(groupId);
    if (g !== undefined && g.members.size > 0)
      return refuse(
        rillError(
          "INCONSISTENT_GROUP_PROTOCOL",
          `groupId: ${groupId} is a consumer group (KIP-848 heartbeats) with ${g.members.size} members; a group uses one protocol at a time`,
        ),
      );
    let live = this.liveCopy(groupId, now);
    if (live === undefined) {
      if (g === undefined && this.groups.size + this.liveOnlyGroupIds().length >= this.o.groupsMax)
        return refuse(
          rillError("GROUP_MAX_SIZE_REACHED", `groupId: this coordinator already holds ${this.o.groupsMax} groups (the limit)`),
        );
      live = {
        state: "Empty",
        protocolType: null,
        generation: g?.classic?.generation ?? 0,
        protocol: null,
        leader: null,
        members: new Map(),
        pending: new Map(),
        deadlineMs: null,
        initialLimitMs: null,
      };
    }
    if (live.members.size > 0 && !this.supports(live, protocolType, req.protocols))
      return refuse(
        rillError(
          "INCONSISTENT_GROUP_PROTOCOL",
          `protocols: group ${groupId} uses protocol type "${live.protocolType}" with protocols every member supports (${this.candidates(live).join(", ")}); this member offers type "${protocolType}" with ${req.protocols.map((p) => p.name).join(", ")}`,
        ),
      );
    const tx = new ClassicTx(groupId, live);
    if (g !== undefined && g.classic === null && g.members.size === 0) tx.records.push(...this.o.consumerLeftovers(g));
    const want: Omit<LiveMember, "memberId" | "instanceId" | "awaitingJoin" | "awaitingSync" | "lastHeartbeatMs" | "assignment"> = {
      clientId,
      clientHost,
      sessionTimeoutMs: s,
      rebalanceTimeoutMs,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: Uint8Array.from(p.metadata) })),
    };
    const outcome = (id: string, answer: JoinGroupResponse | null): ClassicResult<ClassicOutcome<JoinGroupResponse>> =>
      this.result(tx, { memberId: id, answer, deliveries: tx.deliveries });

    if (memberId === "") {
      if (instanceId !== null) return outcome(...this.joinStatic(tx, instanceId, protocolType, want, now));
      const newId = this.newMemberId(live, clientId);
      if (req.requireKnownMemberId) {
        live.pending.set(newId, now + s);
        return outcome(newId, errorJoin(rillError("MEMBER_ID_REQUIRED", `memberId: join again with member id ${newId}`), newId));
      }
      const full = this.addMember(tx, newId, null, protocolType, want, now);
      return outcome(newId, full);
    }
    if (live.pending.has(memberId)) {
      live.pending.delete(memberId);
      const full = this.addMember(tx, memberId, instanceId, protocolType, want, now);
      return outcome(memberId, full);
    }
    const member = live.members.get(memberId);
    if (member === undefined) {
      if (instanceId !== null && this.holderOf(live, instanceId) !== undefined)
        return refuse(rillError("FENCED_INSTANCE_ID", `instanceId: "${instanceId}" is held by another member of group ${groupId}`));
      return refuse(
        rillError("UNKNOWN_MEMBER_ID", `memberId: ${memberId} is not a member of group ${groupId}; join with an empty member id`),
      );
    }
    if (member.instanceId !== instanceId)
      return refuse(rillError("FENCED_INSTANCE_ID", `instanceId: member ${memberId} joined with instance id ${String(member.instanceId)}`));
    member.lastHeartbeatMs = now;
    const unchanged = sameProtocols(member.protocols, want.protocols);
    if ((live.state === "CompletingRebalance" && unchanged) || (live.state === "Stable" && unchanged && memberId !== live.leader)) {
      // Nothing changed for this member: it gets the current generation again (a lost answer).
      return outcome(memberId, this.joinAnswer(live, memberId));
    }
    Object.assign(member, want);
    member.awaitingJoin = true;
    if (live.state !== "PreparingRebalance") this.prepareRebalance(tx, now);
    this.tryCompleteJoin(tx, now);
    return outcome(memberId, this.ownAnswer(tx, memberId));
  }

  /** A static member joins with an empty member id: a new one, or one that takes over its instance's place. */
  private joinStatic(
    tx: ClassicTx,
    instanceId: string,
    protocolType: string,
    want: Omit<LiveMember, "memberId" | "instanceId" | "awaitingJoin" | "awaitingSync" | "lastHeartbeatMs" | "assignment">,
    now: number,
  ): [string, JoinGroupResponse | null] {
    const live = tx.live;
    const newId = this.newMemberId(live, instanceId);
    const oldId = this.holderOf(live, instanceId);
    if (oldId === undefined) return [newId, this.addMember(tx, newId, instanceId, protocolType, want, now)];
    // Replace the old member: its waiting requests are fenced, the new id takes its place and assignment.
    const old = live.members.get(oldId);
    assert(old);
    const fenced = rillError("FENCED_INSTANCE_ID", `instanceId: "${instanceId}" joined again as member ${newId}`);
    if (old.awaitingJoin) tx.deliverJoin(oldId, errorJoin(fenced, oldId));
    if (old.awaitingSync) tx.deliverSync(oldId, errorSync(fenced));
    const entries = [...live.members];
    live.members = new Map(entries.map(([id, m]) => (id === oldId ? [newId, { ...m, memberId: newId }] : [id, m])));
    if (live.leader === oldId) live.leader = newId;
    const member = live.members.get(newId);
    assert(member);
    member.lastHeartbeatMs = now;
    const unchanged = sameProtocols(member.protocols, want.protocols);
    if (live.state === "Stable" && unchanged) {
      // Kafka's static member rejoin: no rebalance; the group's record names the new member id.
      Object.assign(member, want);
      member.awaitingJoin = false;
      member.awaitingSync = false;
      tx.records.push(this.generationRecord(tx.groupId, live));
      return [newId, this.joinAnswer(live, newId)];
    }
    Object.assign(member, want);
    member.awaitingJoin = true;
    member.awaitingSync = false;
    if (live.state !== "PreparingRebalance") this.prepareRebalance(tx, now);
    this.tryCompleteJoin(tx, now);
    return [newId, this.ownAnswer(tx, newId)];
  }

  /** Adds a member that waits for the rebalance; an answer when it could not be added. */
  private addMember(
    tx: ClassicTx,
    memberId: string,
    instanceId: string | null,
    protocolType: string,
    want: Omit<LiveMember, "memberId" | "instanceId" | "awaitingJoin" | "awaitingSync" | "lastHeartbeatMs" | "assignment">,
    now: number,
  ): JoinGroupResponse | null {
    const live = tx.live;
    if (live.members.size >= this.o.membersPerGroupMax)
      return errorJoin(
        rillError("GROUP_MAX_SIZE_REACHED", `groupId: group ${tx.groupId} already has ${live.members.size} members (the limit)`),
        memberId,
      );
    if (live.members.size === 0) live.protocolType = protocolType;
    live.members.set(memberId, {
      memberId,
      instanceId,
      ...want,
      assignment: EMPTY,
      awaitingJoin: true,
      awaitingSync: false,
      lastHeartbeatMs: now,
    });
    if (live.state !== "PreparingRebalance") this.prepareRebalance(tx, now);
    else if (live.initialLimitMs !== null) live.deadlineMs = Math.min(now + this.o.initialRebalanceDelayMs, live.initialLimitMs);
    this.tryCompleteJoin(tx, now);
    return this.ownAnswer(tx, memberId);
  }

  /** The member's own join answer when the rebalance completed in this request (null: it waits). */
  private ownAnswer(tx: ClassicTx, memberId: string): JoinGroupResponse | null {
    const i = tx.deliveries.findIndex((d) => d.kind === "join" && d.memberId === memberId);
    if (i < 0) return null;
    const d = tx.deliveries[i]!;
    tx.deliveries.splice(i, 1);
    return d.response as JoinGroupResponse;
  }

  private holderOf(live: LiveGroup, instanceId: string): string | undefined {
    for (const [id, m] of live.members) if (m.instanceId === instanceId) return id;
    return undefined;
  }

  /** Protocols every member supports, in the first member's order of preference. */
  private candidates(live: LiveGroup): string[] {
    const members = [...live.members.values()];
    if (members.length === 0) return [];
    return members[0]!.protocols.map((p) => p.name).filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)));
  }

  private supports(live: LiveGroup, protocolType: string, protocols: readonly ClassicProtocol[]): boolean {
    if (live.protocolType !== protocolType) return false;
    const c = new Set(this.candidates(live));
    return protocols.some((p) => c.has(p.name));
  }

  /** The protocol most members prefer among those all support (ties: the first member's order). */
  private selectProtocol(live: LiveGroup): string {
    const candidates = this.candidates(live);
    assert(candidates.length > 0, "classic group members without a common protocol");
    const votes = new Map<string, number>();
    for (const m of live.members.values()) {
      const choice = m.protocols.find((p) => candidates.includes(p.name));
      if (choice !== undefined) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
    }
    let best = candidates[0]!;
    for (const c of candidates) if ((votes.get(c) ?? 0) > (votes.get(best) ?? 0)) best = c;
    return best;
  }

  private maxRebalanceTimeout(live: LiveGroup): number {
    let t = 0;
    for (const m of live.members.values()) t = Math.max(t, m.rebalanceTimeoutMs);
    return t;
  }

  /** Starts a rebalance: members must rejoin; sync requests waiting for an assignment are told to. */
  private prepareRebalance(tx: ClassicTx, now: number): void {
    const live = tx.live;
    if (live.state === "CompletingRebalance") {
      for (const m of live.members.values()) {
        if (m.awaitingSync)
          tx.deliverSync(m.memberId, errorSync(rillError("REBALANCE_IN_PROGRESS", `group ${tx.groupId} is rebalancing; join again`)));
        m.awaitingSync = false;
        m.assignment = EMPTY;
      }
    }
    const initial = live.state === "Empty";
    live.state = "PreparingRebalance";
    const timeout = this.maxRebalanceTimeout(live);
    if (initial) {
      live.initialLimitMs = now + timeout;
      live.deadlineMs = Math.min(now + this.o.initialRebalanceDelayMs, live.initialLimitMs);
    } else {
      live.initialLimitMs = null;
      live.deadlineMs = now + timeout;
    }
  }

  /** Completes the join when every member rejoined (not before an initial delay ends), or its deadline passed. */
  private tryCompleteJoin(tx: ClassicTx, now: number): void {
    const live = tx.live;
    if (live.state !== "PreparingRebalance") return;
    const due = live.deadlineMs !== null && now >= live.deadlineMs;
    const allJoined = live.pending.size === 0 && [...live.members.values()].every((m) => m.awaitingJoin);
    if (due || (allJoined && live.initialLimitMs === null)) this.completeJoin(tx, now);
  }

  /** The new generation: members that did not rejoin are dropped (static ones kept), every waiting join is answered. */
  private completeJoin(tx: ClassicTx, now: number): void {
    const live = tx.live;
    for (const [id, m] of [...live.members]) if (!m.awaitingJoin && m.instanceId === null) live.members.delete(id);
    live.generation += 1;
    live.initialLimitMs = null;
    if (live.members.size === 0) {
      live.state = "Empty";
      live.protocol = null;
      live.leader = null;
      live.deadlineMs = null;
      tx.records.push(this.generationRecord(tx.groupId, live));
      return;
    }
    live.protocol = this.selectProtocol(live);
    if (live.leader === null || !live.members.has(live.leader)) {
      const joined = [...live.members.values()].find((m) => m.awaitingJoin);
      live.leader = (joined ?? [...live.members.values()][0]!).memberId;
    }
    live.state = "CompletingRebalance";
    live.deadlineMs = now + this.maxRebalanceTimeout(live);
    for (const m of live.members.values()) {
      m.assignment = EMPTY;
      m.lastHeartbeatMs = now;
      if (m.awaitingJoin) {
        m.awaitingJoin = false;
        tx.deliverJoin(m.memberId, this.joinAnswer(live, m.memberId));
      }
    }
  }

  private joinAnswer(live: LiveGroup, memberId: string): JoinGroupResponse {
    const isLeader = memberId === live.leader;
    return {
      error: null,
      generation: live.generation,
      protocolType: live.protocolType,
      protocol: live.protocol,
      leader: live.leader ?? "",
      memberId,
      members: isLeader
        ? [...live.members.values()].map((m) => ({
            memberId: m.memberId,
            instanceId: m.instanceId,
            metadata: m.protocols.find((p) => p.name === live.protocol)?.metadata ?? EMPTY,
          }))
        : [],
    };
  }

  /** The record of the group's generation as it stands in `live`. */
  private generationRecord(groupId: string, live: LiveGroup): GroupRecord {
    const members: ClassicMemberEntry[] = [...live.members.values()].map((m) => ({
      memberId: m.memberId,
      instanceId: m.instanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      sessionTimeoutMs: m.sessionTimeoutMs,
      metadata: b64(m.protocols.find((p) => p.name === live.protocol)?.metadata ?? EMPTY),
      assignment: b64(m.assignment),
    }));
    return classicGroupRecord({
      groupId,
      protocolType: live.protocolType ?? "",
      generation: live.generation,
      protocol: live.protocol,
      leader: live.leader,
      members,
    });
  }

  private newMemberId(live: LiveGroup, prefix: string): string {
    for (let attempt = 0; attempt < 100; attempt++) {
      let id = `${prefix.slice(0, 100)}-`;
      for (let i = 0; i < ID_CHARS; i++) id += ID_ALPHABET[this.o.random.int(ID_ALPHABET.length)];
      if (!live.members.has(id) && !live.pending.has(id)) return id;
    }
    assert(false, "100 random member ids collided");
  }

  // -------------------------------------------------------------------------------------------
  // SyncGroup, Heartbeat, LeaveGroup

  /** A SyncGroup: the member's assignment now (Stable, or the leader's own sync), or once the leader sends it. */
  sync(req: SyncGroupRequest, now: number): ClassicResult<ClassicOutcome<SyncGroupResponse>> {
    const groupId = validateGroupId(req.groupId);
    const memberId = validateMemberId(req.memberId, false);
    const instanceId = req.instanceId === null ? null : validateInstanceId(req.instanceId);
    checkListLength(req.assignments, "assignments", this.o.membersPerGroupMax);
    req.assignments.forEach((a, i) => {
      validateMemberId(a.memberId, false, `assignments[${i}].memberId`);
      if (a.assignment.byteLength > CLASSIC_METADATA_BYTES_MAX)
        throw rillError(
          "INVALID_ARGUMENT",
          `assignments[${i}].assignment: ${a.assignment.byteLength} bytes, more than ${CLASSIC_METADATA_BYTES_MAX}`,
        );
    });
    const refuse = (error: RillError) => this.result(null, { memberId, answer: errorSync(error), deliveries: [] });
    const live = this.liveCopy(groupId, now);
    const member = live?.members.get(memberId);
    if (live === undefined || member === undefined)
      return refuse(rillError("UNKNOWN_MEMBER_ID", `memberId: ${memberId} is not a member of group ${groupId}`));
    if (instanceId !== null && member.instanceId !== instanceId)
      return refuse(rillError("FENCED_INSTANCE_ID", `instanceId: member ${memberId} joined with instance id ${String(member.instanceId)}`));
    if (live.state === "PreparingRebalance")
      return refuse(rillError("REBALANCE_IN_PROGRESS", `group ${groupId} is rebalancing; join again`));
    if (req.generation !== live.generation)
      return refuse(
        rillError("ILLEGAL_GENERATION", `generation: ${req.generation} is not group ${groupId}'s generation ${live.generation}`),
      );
    if ((req.protocolType !== null && req.protocolType !== live.protocolType) || (req.protocol !== null && req.protocol !== live.protocol))
      return refuse(
        rillError(
          "INCONSISTENT_GROUP_PROTOCOL",
          `protocolType, protocol: group ${groupId} uses "${live.protocolType}"/"${live.protocol}", not "${req.protocolType}"/"${req.protocol}"`,
        ),
      );
    const tx = new ClassicTx(groupId, live);
    member.lastHeartbeatMs = now;
    const answerOf = (m: LiveMember): SyncGroupResponse => ({
      error: null,
      protocolType: live.protocolType,
      protocol: live.protocol,
      assignment: m.assignment,
    });
    if (live.state === "Stable") return this.result(tx, { memberId, answer: answerOf(member), deliveries: [] });
    // CompletingRebalance: wait for the leader's assignment, or (the leader) hand it out.
    member.awaitingSync = true;
    if (memberId === live.leader) {
      const given = new Map(req.assignments.map((a) => [a.memberId, a.assignment]));
      for (const m of live.members.values()) m.assignment = Uint8Array.from(given.get(m.memberId) ?? EMPTY);
      live.state = "Stable";
      live.deadlineMs = null;
      tx.records.push(this.generationRecord(groupId, live));
      for (const m of live.members.values()) {
        if (m.awaitingSync) tx.deliverSync(m.memberId, answerOf(m));
        m.awaitingSync = false;
      }
    }
    const i = tx.deliveries.findIndex((d) => d.memberId === memberId);
    const own = i < 0 ? null : (tx.deliveries.splice(i, 1)[0]!.response as SyncGroupResponse);
    return this.result(tx, { memberId, answer: own, deliveries: tx.deliveries });
  }

  /** A classic Heartbeat: null when all is well, else the error to answer. */
  heartbeat(req: ClassicHeartbeatRequest, now: number): ClassicResult<RillError | null> {
    const groupId = validateGroupId(req.groupId);
    const memberId = validateMemberId(req.memberId, true);
    const instanceId = req.instanceId === null ? null : validateInstanceId(req.instanceId);
    const live = this.liveCopy(groupId, now);
    const member = live?.members.get(memberId);
    if (live === undefined || member === undefined)
      return this.result(null, rillError("UNKNOWN_MEMBER_ID", `memberId: "${memberId}" is not a member of group ${groupId}`));
    if (instanceId !== null && member.instanceId !== instanceId)
      return this.result(
        null,
        rillError("FENCED_INSTANCE_ID", `instanceId: member ${memberId} joined with instance id ${String(member.instanceId)}`),
      );
    const tx = new ClassicTx(groupId, live);
    if (live.state === "PreparingRebalance") {
      member.lastHeartbeatMs = now;
      return this.result(tx, rillError("REBALANCE_IN_PROGRESS", `group ${groupId} is rebalancing; join again`));
    }
    if (req.generation !== live.generation)
      return this.result(
        null,
        rillError("ILLEGAL_GENERATION", `generation: ${req.generation} is not group ${groupId}'s generation ${live.generation}`),
      );
    member.lastHeartbeatMs = now;
    return this.result(tx, null);
  }

  /** LeaveGroup: removes the members (each answered), then rebalances the rest. */
  leave(req: LeaveGroupRequest, now: number): ClassicResult<ClassicOutcome<LeaveGroupResponse>> {
    const groupId = validateGroupId(req.groupId);
    checkListLength(req.members, "members", this.o.membersPerGroupMax);
    const asked = req.members.map((m, i) => ({
      memberId: validateMemberId(m.memberId, true, `members[${i}].memberId`),
      instanceId: m.instanceId === null ? null : validateInstanceId(m.instanceId, `members[${i}].instanceId`),
    }));
    if (asked.length === 0) throw rillError("INVALID_ARGUMENT", "members: at least one member is required");
    const live = this.liveCopy(groupId, now);
    const unknown = (m: { memberId: string; instanceId: string | null }) => ({
      ...m,
      error: rillError("UNKNOWN_MEMBER_ID", `memberId: "${m.memberId}" is not a member of group ${groupId}`),
    });
    if (live === undefined) return this.result(null, { memberId: "", answer: { members: asked.map(unknown) }, deliveries: [] });
    const tx = new ClassicTx(groupId, live);
    const removed: string[] = [];
    const members = asked.map((m) => {
      if (m.memberId === "" && m.instanceId === null) return unknown(m);
      if (live.pending.delete(m.memberId)) return { ...m, error: null };
      const id = m.memberId !== "" ? m.memberId : this.holderOf(live, m.instanceId!);
      const member = id === undefined ? undefined : live.members.get(id);
      if (member === undefined) return unknown(m);
      if (m.instanceId !== null && member.instanceId !== m.instanceId)
        return {
          ...m,
          error: rillError(
            "FENCED_INSTANCE_ID",
            `instanceId: member ${member.memberId} joined with instance id ${String(member.instanceId)}`,
          ),
        };
      removed.push(member.memberId);
      return { ...m, error: null };
    });
    this.removeMembers(tx, removed, "left the group", now);
    return this.result(tx, { memberId: "", answer: { members }, deliveries: tx.deliveries });
  }

  /** Removes members (their waiting requests answered UNKNOWN_MEMBER_ID) and rebalances the rest. */
  private removeMembers(tx: ClassicTx, memberIds: readonly string[], why: string, now: number): void {
    if (memberIds.length === 0) return;
    const live = tx.live;
    for (const id of memberIds) {
      const m = live.members.get(id);
      if (m === undefined) continue;
      const gone = rillError("UNKNOWN_MEMBER_ID", `memberId: ${id} ${why}`);
      if (m.awaitingJoin) tx.deliverJoin(id, errorJoin(gone, id));
      if (m.awaitingSync) tx.deliverSync(id, errorSync(gone));
      live.members.delete(id);
    }
    if (live.state === "Stable" || live.state === "CompletingRebalance") this.prepareRebalance(tx, now);
    this.tryCompleteJoin(tx, now);
  }

  // -------------------------------------------------------------------------------------------
  // Time

  /**
   * Session timeouts, pending member ids that were never used, and rebalance deadlines — of one
   * group, or of every classic group. Groups loaded from the log start their members' sessions here.
   */
  tick(now: number, only?: string): ClassicResult<ClassicDelivery[]> {
    const ids =
      only !== undefined
        ? [only]
        : [...new Set([...this.live.keys(), ...[...this.groups.values()].filter((g) => g.classic !== null).map((g) => g.groupId)])].sort();
    const txs: ClassicTx[] = [];
    for (const groupId of ids) {
      // Nothing due yet for a group already live: skip it (a loaded group's sessions start here).
      const due = this.nextDeadline(groupId);
      if (this.live.has(groupId) && (due === null || due > now)) continue;
      const live = this.liveCopy(groupId, now);
      if (live === undefined) continue;
      const tx = new ClassicTx(groupId, live);
      for (const [id, until] of [...live.pending]) if (now >= until) live.pending.delete(id);
      const expired = [...live.members.values()]
        .filter((m) => !this.keptAlive(live, m) && now - m.lastHeartbeatMs >= m.sessionTimeoutMs)
        .map((m) => m.memberId);
      this.removeMembers(tx, expired, "was removed: its session timed out", now);
      if (live.state === "CompletingRebalance" && live.deadlineMs !== null && now >= live.deadlineMs) {
        const late = [...live.members.values()].filter((m) => !m.awaitingSync).map((m) => m.memberId);
        this.removeMembers(tx, late, "was removed: it did not sync within the rebalance timeout", now);
      }
      this.tryCompleteJoin(tx, now);
      txs.push(tx);
    }
    return {
      records: txs.flatMap((t) => t.records),
      response: txs.flatMap((t) => t.deliveries),
      effects: () => {
        for (const t of txs) this.install(t.groupId, t.live);
      },
    };
  }

  /** A member waiting for its join or sync answer is not expired (Kafka keeps it alive meanwhile). */
  private keptAlive(live: LiveGroup, m: LiveMember): boolean {
    return (live.state === "PreparingRebalance" && m.awaitingJoin) || (live.state === "CompletingRebalance" && m.awaitingSync);
  }

  /** When `tick` next has something to do for the group (null: nothing pending). */
  nextDeadline(groupId: string): number | null {
    const live = this.live.get(groupId);
    if (live === undefined) return null;
    let at = live.deadlineMs ?? Number.POSITIVE_INFINITY;
    for (const until of live.pending.values()) at = Math.min(at, until);
    for (const m of live.members.values()) if (!this.keptAlive(live, m)) at = Math.min(at, m.lastHeartbeatMs + m.sessionTimeoutMs);
    return Number.isFinite(at) ? at : null;
  }

  // -------------------------------------------------------------------------------------------
  // Offsets and admin

  /**
   * Whether a commit by (memberId, generation) is accepted for a classic group: undefined when the
   * group is not classic (the consumer-group rules apply), null when accepted, or the error.
   * Generation -1 with an empty member id commits without membership, only while it is Empty.
   */
  commitError(groupId: string, memberId: string, generation: number, now: number): RillError | null | undefined {
    const live = this.liveCopy(groupId, now);
    if (live === undefined) return undefined;
    if (generation < 0 && memberId === "") {
      if (live.members.size === 0) return null;
      return rillError(
        "UNKNOWN_MEMBER_ID",
        `memberId: empty, but classic group ${groupId} has ${live.members.size} members; only they commit`,
      );
    }
    const m = live.members.get(memberId);
    if (m === undefined) return rillError("UNKNOWN_MEMBER_ID", `memberId: ${memberId} is not a member of group ${groupId}`);
    if (generation !== live.generation)
      return rillError("ILLEGAL_GENERATION", `generation: ${generation} is not group ${groupId}'s generation ${live.generation}`);
    if (live.state === "CompletingRebalance")
      return rillError("REBALANCE_IN_PROGRESS", `group ${groupId} is completing a rebalance; commit once it synced`);
    return null;
  }

  /**
   * Topics the members of a classic "consumer" group subscribe to, from their metadata (Kafka's
   * ConsumerProtocolSubscription: int16 version, then an int32 count of int16-length topic
   * names); null when some member's metadata cannot be read that way (then every topic counts
   * as subscribed). Empty for a group without members.
   */
  subscribedTopics(groupId: string, now: number): Set<string> | null {
    const live = this.liveCopy(groupId, now);
    const topics = new Set<string>();
    if (live === undefined || live.members.size === 0) return topics;
    if (live.protocolType !== "consumer") return null;
    for (const m of live.members.values()) {
      const meta = live.protocol !== null ? m.protocols.find((p) => p.name === live.protocol) : m.protocols[0];
      const got = meta === undefined ? null : consumerSubscriptionTopics(meta.metadata);
      if (got === null) return null;
      for (const t of got) topics.add(t);
    }
    return topics;
  }

  /** The group as DescribeGroups shows it, or null when it is not classic. */
  describe(groupId: string, now: number): ClassicGroupDescription | null {
    const live = this.liveCopy(groupId, now);
    if (live === undefined) return null;
    return {
      state: live.state,
      protocolType: live.protocolType ?? this.groups.get(groupId)?.classic?.protocolType ?? "",
      protocol: live.state === "Stable" || live.state === "CompletingRebalance" ? (live.protocol ?? "") : "",
      generation: live.generation,
      leader: live.leader ?? "",
      members: [...live.members.values()].map((m) => ({
        memberId: m.memberId,
        instanceId: m.instanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        metadata: m.protocols.find((p) => p.name === live.protocol)?.metadata ?? EMPTY,
        assignment: m.assignment,
      })),
    };
  }
}

/** The topic names at the start of a ConsumerProtocolSubscription, or null when the bytes are not one. */
export function consumerSubscriptionTopics(bytes: Uint8Array): string[] | null {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 6) return null;
  const n = b.readInt32BE(2);
  if (n < 0 || n > 100_000) return null;
  const out: string[] = [];
  let pos = 6;
  for (let i = 0; i < n; i++) {
    if (pos + 2 > b.length) return null;
    const len = b.readInt16BE(pos);
    pos += 2;
    if (len < 0 || pos + len > b.length) return null;
    out.push(b.toString("utf8", pos, pos + len));
    pos += len;
  }
  return out;
}
