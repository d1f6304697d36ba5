/**
 * The broker's periodic work: the group coordinators' session timeouts and the logs' flush,
 * retention and compaction on one ticker, and the ISR changes led partitions want on another.
 *
 * A condition (a RillError: a coordinator that moved, a disk that filled) is logged and the
 * work runs again on the next tick. A failed assertion is a bug: it is logged and rethrown, so
 * the process stops (an uncaught exception in a timer, an unhandled rejection in a promise)
 * and its supervisor restarts it — a broker never runs on with state it knows is wrong.
 */
import { AssertionError } from "../base/assert.ts";
import type { Clock } from "../base/clock.ts";
import { Errors, RillError } from "../base/errors.ts";
import type { ControllerChannel } from "../rpc/controller-channel.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { LogManager } from "../storage/log-manager.ts";
import type { BrokerLog } from "./log.ts";

/** Logs `e` under `msg`; rethrows it when it is a failed assertion (a bug stops the process). */
export function logUnlessBug(log: BrokerLog, msg: string, e: unknown): void {
  if (e instanceof AssertionError) {
    log.error({ err: e }, `${msg}: an assertion failed; stopping`);
    throw e;
  }
  log.error({ err: e }, msg);
}

/** What one tick works on. */
export interface PeriodicWork {
  readonly groups: { tick(): void };
  readonly logs: Pick<LogManager, "tick">;
  readonly clock: Clock;
  readonly log: BrokerLog;
}

/**
 * One tick: the group coordinators first (throws when they fail an assertion), then the logs'
 * periodic work, whose promise rejects only when it fails an assertion — the ticker drops the
 * promise, so that rejection is unhandled and stops the process.
 */
export function runPeriodicWork(w: PeriodicWork): Promise<void> {
  try {
    w.groups.tick();
  } catch (e) {
    logUnlessBug(w.log, "group coordinator tick failed", e);
  }
  return w.logs.tick(w.clock.nowMs()).catch((e: unknown) => logUnlessBug(w.log, "periodic storage work failed", e));
}

/** What ISR maintenance needs. */
export interface IsrMaintenance {
  readonly rm: ReplicaManager;
  readonly channel: Pick<ControllerChannel, "alterPartition">;
  readonly nodeId: number;
  readonly replicaLagTimeMaxMs: number;
  /** This broker's epoch; -1 until it registered. */
  readonly brokerEpoch: () => number;
  readonly log: BrokerLog;
}

/**
 * Asks the controller for the ISR changes this broker's led partitions want (laggards out,
 * caught-up followers in). A refused or failed change is asked again on the next round; a
 * failed assertion rejects (and stops the process).
 */
export async function maintainIsr(m: IsrMaintenance): Promise<void> {
  const { rm, log } = m;
  if (rm.closed || m.brokerEpoch() < 0) return;
  const changes = rm.isrChanges(m.replicaLagTimeMaxMs);
  if (changes.length === 0) return;
  const release = (): void => {
    for (const c of changes) {
      const r = rm.replica(c.topic, c.partition);
      if (r) r.isrChangeInFlight = false;
    }
  };
  try {
    const res = await m.channel.alterPartition(m.nodeId, m.brokerEpoch(), changes);
    res.forEach((o, i) => {
      const c = changes[i]!;
      if (o.error) {
        log.warn({ topic: c.topic, partition: c.partition, newIsr: c.newIsr, err: o.error.message }, "ISR change refused");
        // Only a refusal of the change itself, reached after the partition epoch was found
        // current, proves no try of it was committed; any other (a stale epoch: an earlier try
        // may have been) waits for the metadata to settle it (PartitionReplica.pendingIsrAdds).
        if (settledAsRefused(o.error)) rm.replica(c.topic, c.partition)?.isrChangeRefused();
      } else {
        log.info({ topic: c.topic, partition: c.partition, isr: o.isr }, "ISR changed");
      }
    });
    release();
  } catch (e) {
    if (e instanceof AssertionError) throw e;
    // The controller may have committed the changes before the call failed: they stay pending,
    // asked again next round until the metadata settles them.
    log.warn({ err: (e as Error).message }, "AlterPartition failed; retrying");
    release();
  }
}

/** Whether an AlterPartition item's error proves the change was not committed (see decideAlterPartition's order of checks). */
function settledAsRefused(e: Error): boolean {
  return e instanceof RillError && (e.kind === Errors.INVALID_REQUEST || e.kind === Errors.INELIGIBLE_REPLICA);
}

/** How often ISR changes are looked for: a quarter of replica.lag.time.max.ms, within 50 ms..1 s. */
export function isrCheckIntervalMs(replicaLagTimeMaxMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(replicaLagTimeMaxMs / 4)));
}
