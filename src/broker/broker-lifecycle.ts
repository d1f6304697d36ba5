/**
 * The broker side of the cluster membership protocol: register with the active controller (a
 * fresh incarnation id per process run), then heartbeat every `broker.heartbeat.interval.ms`
 * reporting how far this node has applied the metadata log. The controller unfences the broker
 * once it has caught up with its own registration; it fences it when heartbeats stop for
 * `broker.session.timeout.ms`. A stale broker epoch (the controller lost or replaced the
 * registration) makes the broker register again. On shutdown the broker asks for a controlled
 * shutdown so that leadership moves away before it stops.
 *
 * A running broker that a heartbeat answer finds fenced (its session expired while its heartbeats
 * were lost) or unregistered tells `onLeftRunning`'s listeners: the controller has moved its
 * leaderships away, and its image, which may lag, can still name it leader (the broker then
 * leads nothing until unfenced again: src/broker/broker.ts holdLeadershipUntilUnfenced).
 */
import { AssertionError } from "../base/assert.ts";
import { RillError } from "../base/errors.ts";
import { systemTimers, type Timers } from "../base/timers.ts";
import { Listeners, Waiters } from "../base/waiters.ts";
import type { BrokerControl } from "../rpc/controller-service.ts";
import type { BrokerLog } from "./log.ts";

/** What the lifecycle needs. */
export interface BrokerLifecycleOptions {
  /** Random id of this process run. */
  readonly incarnationId: string;
  readonly nodeId: number;
  readonly clusterId: string;
  readonly address: () => string;
  /** The internal listener's address, "" for none (issue 13, cluster membership). */
  readonly internalAddress?: () => string;
  /** The Kafka listener's advertised address, "" for none (issue 15: Metadata answers it). */
  readonly kafkaAddress?: () => string;
  readonly rack: string;
  readonly roles: string[];
  /** This broker's effective `max.partitions`, sent at registration. */
  readonly maxPartitions?: number;
  readonly controller: BrokerControl;
  /** The offset of the last metadata record this node applied. */
  readonly metadataOffset: () => number;
  readonly heartbeatIntervalMs: number;
  readonly log: BrokerLog;
  /** Registration and heartbeat timers; default the runtime's (the cluster simulator injects its own). */
  readonly timers?: Timers;
  /** KIP-966: the previous process on this data dir may have lost acknowledged writes (LogManager.uncleanShutdown). */
  readonly uncleanShutdown?: boolean;
  /** The last incarnation that registered from this data dir (LogManager.previousIncarnationId); absent: none. */
  readonly previousIncarnationId?: string | null;
  /** Called once registered, with this incarnation (LogManager.recordRegistration). */
  readonly onRegistered?: (incarnationId: string) => void;
}

/** Where the broker stands with the controller. */
export type LifecycleState = "registering" | "fenced" | "running" | "shutting-down" | "stopped";

/** Registration and heartbeats of one broker process. */
export class BrokerLifecycle {
  private epoch = -1;
  private _state: LifecycleState = "registering";
  private timer: unknown = null;
  private readonly waiters: Waiters;
  private lastError: string | null = null;
  private stopped = false;
  private readonly leftRunning = new Listeners<[]>();

  constructor(private readonly o: BrokerLifecycleOptions) {
    this.waiters = new Waiters(this.o.timers ?? systemTimers, {
      onTimeout: (what, ms) => new Error(`${what} within ${ms} ms`),
      onClose: () => new Error(`broker ${this.o.nodeId} stopped`),
    });
  }

  get state(): LifecycleState {
    return this._state;
  }

  /** The broker epoch from the latest registration (-1 before the first). */
  get brokerEpoch(): number {
    return this.epoch;
  }

  /**
   * Calls `fn` each time the broker stops being "running" without shutting down: a heartbeat
   * answer says it is fenced, or its registration is gone (STALE_BROKER_EPOCH,
   * BROKER_ID_NOT_REGISTERED). Returns the function that removes it.
   */
  onLeftRunning(fn: () => void): () => void {
    return this.leftRunning.add(fn);
  }

  /** Starts registering and heartbeating in the background. */
  start(): void {
    this.schedule(0);
  }

  /** Resolves once the controller has unfenced this broker (or rejects after `timeoutMs`). */
  whenUnfenced(timeoutMs: number): Promise<void> {
    return this.waiters.waitUntil(() => this._state === "running", `broker ${this.o.nodeId} to be unfenced`, timeoutMs, {
      timeoutError: () =>
        new Error(
          `broker ${this.o.nodeId} was not unfenced within ${timeoutMs} ms${this.lastError ? ` (last error: ${this.lastError})` : ""}`,
        ),
    });
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = (this.o.timers ?? systemTimers).setTimeout(() => void this.step(), ms);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.epoch < 0) {
        const res = await this.o.controller.register({
          nodeId: this.o.nodeId,
          clusterId: this.o.clusterId,
          incarnationId: this.o.incarnationId,
          address: this.o.address(),
          rack: this.o.rack,
          roles: this.o.roles,
          ...(this.o.maxPartitions !== undefined ? { maxPartitions: this.o.maxPartitions } : {}),
          ...(this.o.internalAddress?.() ? { internalAddress: this.o.internalAddress() } : {}),
          ...(this.o.kafkaAddress?.() ? { kafkaAddress: this.o.kafkaAddress() } : {}),
          ...(this.o.uncleanShutdown ? { uncleanShutdown: true } : {}),
          ...(this.o.previousIncarnationId ? { previousIncarnationId: this.o.previousIncarnationId } : {}),
        });
        this.o.onRegistered?.(this.o.incarnationId);
        this.epoch = res.brokerEpoch;
        this._state = "fenced";
        this.o.log.info({ brokerEpoch: this.epoch }, "registered with the controller");
      }
      const res = await this.o.controller.heartbeat({
        nodeId: this.o.nodeId,
        brokerEpoch: this.epoch,
        currentMetadataOffset: this.o.metadataOffset(),
        wantFence: false,
        wantShutDown: false,
      });
      this.lastError = null;
      if (!res.isFenced && this._state !== "running") {
        this._state = "running";
        this.o.log.info({ brokerEpoch: this.epoch }, "unfenced: serving as a broker of the cluster");
        this.waiters.notify();
      } else if (res.isFenced && this._state === "running") {
        this._state = "fenced";
        this.o.log.warn({ brokerEpoch: this.epoch }, "fenced by the controller");
        this.leftRunning.emit();
      }
      // While fenced, heartbeat quickly so catching up is noticed at once.
      this.schedule(this._state === "running" ? this.o.heartbeatIntervalMs : Math.min(this.o.heartbeatIntervalMs, 100));
    } catch (e) {
      if (e instanceof AssertionError) throw e; // a bug: the rejection stops the process
      const name = e instanceof RillError ? e.kind.name : "";
      if (name === "STALE_BROKER_EPOCH" || name === "BROKER_ID_NOT_REGISTERED") {
        const wasRunning = this._state === "running";
        this.epoch = -1;
        this._state = "registering";
        if (wasRunning) this.leftRunning.emit();
      }
      const msg = (e as Error).message;
      if (msg !== this.lastError)
        this.o.log.warn({ err: msg }, this.epoch < 0 ? "registration with the controller failed; retrying" : "heartbeat failed; retrying");
      this.lastError = msg;
      this.schedule(Math.min(this.o.heartbeatIntervalMs, name === "DUPLICATE_BROKER_REGISTRATION" ? 1000 : 200));
    }
  }

  /**
   * Controlled shutdown: asks the controller to move leadership away and waits (at most
   * `timeoutMs`) until it says the broker may stop. Then stops heartbeating.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) (this.o.timers ?? systemTimers).clearTimeout(this.timer);
    if (this.epoch < 0) return;
    this._state = "shutting-down";
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      try {
        const left = until - Date.now();
        const res = await Promise.race([
          this.o.controller.heartbeat({
            nodeId: this.o.nodeId,
            brokerEpoch: this.epoch,
            currentMetadataOffset: this.o.metadataOffset(),
            wantFence: false,
            wantShutDown: true,
          }),
          new Promise<null>((r) => setTimeout(() => r(null), Math.max(0, left)).unref?.()),
        ]);
        if (res === null || res.shouldShutDown) break;
      } catch {
        // the controller may be moving too; try again until the deadline
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this._state = "stopped";
  }

  /** Stops at once, without a controlled shutdown (tests of a crash use kill -9 instead). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) (this.o.timers ?? systemTimers).clearTimeout(this.timer);
    this._state = "stopped";
  }
}
