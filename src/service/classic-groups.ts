/**
 * Classic groups (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), protocol-neutral: the long polls
 * around the coordinator's classic handlers (coordinator/classic.ts).
 *
 * A JoinGroup waits until its rebalance completes, a follower's SyncGroup until the leader sends
 * the assignments. The coordinator answers a request at once or says it waits; the answer then
 * comes as a *delivery* from a later call (another member's join, a leave, the leader's sync) or
 * from the group's deadlines (the rebalance timeout, the initial rebalance delay, session
 * timeouts). Here:
 * - each waiting request is a promise keyed by (kind, group, member), resolved by the delivery;
 *   a second request of the same member while one waits answers the first REBALANCE_IN_PROGRESS;
 * - one timer per group (injected Timers) is set for the group's next deadline
 *   (`GroupRuntime.classicDeadline`) and runs its timeouts (`GroupRuntime.classicTick`) then;
 *   the broker's periodic tick runs every group's too;
 * - a waiting request that hears nothing for its rebalance timeout (plus a margin) is answered
 *   NOT_COORDINATOR when the group moved away, else REBALANCE_IN_PROGRESS, so nothing waits forever.
 *
 * One instance per GroupRuntime (`classicGroupsOf`), shared by every adapter, so a delivery
 * finds its waiter whichever listener the member came through.
 */
import { RillError, rillError } from "../base/errors.ts";
import type { Timers } from "../base/timers.ts";
import type {
  ClassicDelivery,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  SyncGroupRequest,
  SyncGroupResponse,
} from "../coordinator/coordinator.ts";
import { type GroupRuntime, validateGroupId } from "../coordinator/group-runtime.ts";

export type {
  ClassicProtocol,
  JoinedMember,
  JoinGroupResponse as JoinGroupOutput,
  LeaveGroupResponse as LeaveGroupOutput,
  SyncGroupResponse as SyncGroupOutput,
} from "../coordinator/coordinator.ts";

/** A JoinGroup (rebalanceTimeoutMs 0 or less: the session timeout, as JoinGroup v0 has none). */
export type JoinGroupInput = JoinGroupRequest;
/** A SyncGroup (protocolType/protocol null when the request version has none). */
export type SyncGroupInput = SyncGroupRequest;
/** A LeaveGroup of one or more members. */
export type LeaveGroupInput = LeaveGroupRequest;
/** A classic member's heartbeat. */
export interface ClassicHeartbeatInput {
  readonly groupId: string;
  readonly memberId: string;
  readonly generation: number;
  readonly instanceId: string | null;
}

/** How much longer than its rebalance timeout a waiting request waits for its answer. */
const WAIT_MARGIN_MS = 5_000;

type Answer = JoinGroupResponse | SyncGroupResponse;

interface Waiter {
  readonly resolve: (a: Answer) => void;
  readonly timer: unknown;
}

const EMPTY = new Uint8Array(0);

function failedJoin(error: RillError, memberId: string): JoinGroupResponse {
  return { error, generation: -1, protocolType: null, protocol: null, leader: "", memberId, members: [] };
}

function failedSync(error: RillError): SyncGroupResponse {
  return { error, protocolType: null, protocol: null, assignment: EMPTY };
}

/** A system timer does not keep the process alive for a waiting member (the broker's own shutdown decides). */
function unref(handle: unknown): unknown {
  (handle as { unref?: () => void } | null)?.unref?.();
  return handle;
}

const shared = new WeakMap<GroupRuntime, ClassicGroups>();

/** The classic groups of a runtime (created on first use, with these timers). */
export function classicGroupsOf(rt: GroupRuntime, timers: Timers): ClassicGroups {
  let c = shared.get(rt);
  if (c === undefined) shared.set(rt, (c = new ClassicGroups(rt, timers)));
  return c;
}

/** The long polls of classic groups over one GroupRuntime. */
export class ClassicGroups {
  private readonly waiters = new Map<string, Waiter>();
  private readonly deadlines = new Map<string, { at: number; handle: unknown }>();

  constructor(
    private readonly rt: GroupRuntime,
    private readonly timers: Timers,
  ) {
    rt.onClassicDeliveries((d) => this.deliver(d));
  }

  /** Requests waiting for an answer now (for tests and metrics). */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Joins (or rejoins) a group; resolves with the new generation once the rebalance completes. */
  async join(req: JoinGroupInput): Promise<JoinGroupResponse> {
    validateGroupId(req.groupId);
    const out = this.rt.run(req.groupId, (shard, now) => shard.joinGroup(req, now));
    const wait = req.rebalanceTimeoutMs > 0 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs;
    const answer =
      out.answer !== null
        ? Promise.resolve(out.answer)
        : (this.wait("join", req.groupId, out.memberId, wait, (e) => failedJoin(e, out.memberId)) as Promise<JoinGroupResponse>);
    this.after(req.groupId, out.deliveries);
    await this.rt.replicated(req.groupId);
    return answer;
  }

  /** Syncs: resolves with the member's assignment once the leader has sent it. */
  async sync(req: SyncGroupInput): Promise<SyncGroupResponse> {
    validateGroupId(req.groupId);
    const out = this.rt.run(req.groupId, (shard, now) => shard.syncGroup(req, now));
    const answer =
      out.answer !== null
        ? Promise.resolve(out.answer)
        : (this.wait("sync", req.groupId, out.memberId, this.syncWaitMs(req.groupId), failedSync) as Promise<SyncGroupResponse>);
    this.after(req.groupId, out.deliveries);
    await this.rt.replicated(req.groupId);
    return answer;
  }

  /** A heartbeat: null when all is well, else the error to answer (REBALANCE_IN_PROGRESS: rejoin). */
  heartbeat(req: ClassicHeartbeatInput): RillError | null {
    validateGroupId(req.groupId);
    const error = this.rt.run(req.groupId, (shard, now) => shard.classicHeartbeat(req, now));
    this.schedule(req.groupId);
    return error;
  }

  /** Members leave; each gets its own outcome. */
  async leave(req: LeaveGroupInput): Promise<LeaveGroupResponse> {
    validateGroupId(req.groupId);
    const out = this.rt.run(req.groupId, (shard, now) => shard.leaveGroup(req, now));
    this.after(req.groupId, out.deliveries);
    await this.rt.replicated(req.groupId);
    return out.answer ?? { members: [] };
  }

  private syncWaitMs(groupId: string): number {
    const at = this.rt.classicDeadline(groupId);
    return at === null ? WAIT_MARGIN_MS : Math.max(0, at - this.rt.nowMs());
  }

  private after(groupId: string, deliveries: readonly ClassicDelivery[]): void {
    this.rt.deliver(deliveries);
    this.schedule(groupId);
  }

  private wait(
    kind: "join" | "sync",
    groupId: string,
    memberId: string,
    waitMs: number,
    failed: (e: RillError) => Answer,
  ): Promise<Answer> {
    const key = `${kind}\u0000${groupId}\u0000${memberId}`;
    const previous = this.waiters.get(key);
    if (previous !== undefined) {
      this.timers.clearTimeout(previous.timer);
      this.waiters.delete(key);
      previous.resolve(
        failed(rillError("REBALANCE_IN_PROGRESS", `member ${memberId} sent another ${kind} request while this one waited; join again`)),
      );
    }
    return new Promise<Answer>((resolve) => {
      const timer = unref(
        this.timers.setTimeout(() => {
          if (this.waiters.get(key)?.resolve !== resolve) return;
          this.waiters.delete(key);
          resolve(failed(this.whyNoAnswer(groupId)));
        }, waitMs + WAIT_MARGIN_MS),
      );
      this.waiters.set(key, { resolve, timer });
    });
  }

  private whyNoAnswer(groupId: string): RillError {
    try {
      this.rt.shardFor(groupId);
    } catch (e) {
      return RillError.from(e);
    }
    return rillError("REBALANCE_IN_PROGRESS", `group ${groupId}: no answer within the rebalance timeout; join again`);
  }

  private deliver(deliveries: readonly ClassicDelivery[]): void {
    for (const groupId of new Set(deliveries.map((d) => d.groupId))) this.schedule(groupId);
    for (const d of deliveries) {
      const key = `${d.kind}\u0000${d.groupId}\u0000${d.memberId}`;
      const w = this.waiters.get(key);
      if (w === undefined) continue; // its connection is gone, or it was answered already
      this.waiters.delete(key);
      this.timers.clearTimeout(w.timer);
      w.resolve(d.response);
    }
  }

  /** Sets the group's timer for its next deadline (or clears it). */
  private schedule(groupId: string): void {
    const at = this.rt.classicDeadline(groupId);
    const cur = this.deadlines.get(groupId);
    if (cur !== undefined && cur.at === at) return;
    if (cur !== undefined) this.timers.clearTimeout(cur.handle);
    this.deadlines.delete(groupId);
    if (at === null) return;
    const handle: unknown = unref(
      this.timers.setTimeout(
        () => {
          if (this.deadlines.get(groupId)?.handle !== handle) return;
          this.deadlines.delete(groupId);
          try {
            this.rt.classicTick(groupId);
          } catch (e) {
            // The group moved to another coordinator (or its log is unavailable): nothing to run here.
            if (!(e instanceof RillError)) throw e;
            return;
          }
          this.schedule(groupId);
        },
        Math.max(1, at - this.rt.nowMs()),
      ),
    );
    this.deadlines.set(groupId, { at, handle });
  }
}
