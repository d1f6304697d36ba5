/**
 * The broker's periodic work: a condition is logged and the work goes on; a failed assertion
 * is a bug and escapes (the timer's uncaught exception or unhandled rejection stops the process).
 */
import { describe, expect, it } from "vitest";
import { AssertionError } from "../../../src/base/assert.ts";
import { ManualClock } from "../../../src/base/clock.ts";
import { rillError } from "../../../src/base/errors.ts";
import { type PeriodicWork, logUnlessBug, maintainIsr, runPeriodicWork } from "../../../src/broker/periodic.ts";
import type { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { PartitionReplica } from "../../../src/replication/partition-replica.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { PartitionLog } from "../../../src/storage/partition-log.ts";
import { defaultTopicConfig } from "../../../src/config/schema.ts";

function recordingLog(): { log: PeriodicWork["log"]; lines: string[] } {
  const lines: string[] = [];
  const put = (_o: object, msg?: string): void => void lines.push(msg ?? "");
  return { log: { info: put, warn: put, error: put }, lines };
}

function work(groupsTick: () => void, logsTick: () => Promise<void>) {
  const { log, lines } = recordingLog();
  const calls: string[] = [];
  const w: PeriodicWork = {
    groups: {
      tick: () => {
        calls.push("groups");
        groupsTick();
      },
    },
    logs: {
      tick: () => {
        calls.push("logs");
        return logsTick();
      },
    },
    clock: new ManualClock(),
    log,
  };
  return { w, lines, calls };
}

describe("runPeriodicWork", () => {
  it("runs the group coordinators, then the logs", async () => {
    const { w, calls, lines } = work(
      () => {},
      () => Promise.resolve(),
    );
    await runPeriodicWork(w);
    expect(calls).toEqual(["groups", "logs"]);
    expect(lines).toEqual([]);
  });

  it("logs a failing group tick and still runs the logs' work", async () => {
    const { w, calls, lines } = work(
      () => {
        throw rillError("NOT_LEADER_OR_FOLLOWER", "moved");
      },
      () => Promise.resolve(),
    );
    await runPeriodicWork(w);
    expect(calls).toEqual(["groups", "logs"]);
    expect(lines).toEqual(["group coordinator tick failed"]);
  });

  it("an AssertionError in the group tick escapes instead of being logged and run past", () => {
    const { w, calls, lines } = work(
      () => {
        throw new AssertionError("partition owned twice");
      },
      () => Promise.resolve(),
    );
    expect(() => runPeriodicWork(w)).toThrow(AssertionError);
    expect(calls).toEqual(["groups"]);
    expect(lines).toEqual(["group coordinator tick failed: an assertion failed; stopping"]);
  });

  it("the logs' work: a condition is logged, an AssertionError rejects", async () => {
    const failing = work(
      () => {},
      () => Promise.reject(new Error("disk full")),
    );
    await expect(runPeriodicWork(failing.w)).resolves.toBeUndefined();
    expect(failing.lines).toEqual(["periodic storage work failed"]);
    const buggy = work(
      () => {},
      () => Promise.reject(new AssertionError("segment order")),
    );
    await expect(runPeriodicWork(buggy.w)).rejects.toThrow(AssertionError);
  });
});

describe("logUnlessBug", () => {
  it("logs conditions and rethrows assertion failures", () => {
    const { log, lines } = recordingLog();
    logUnlessBug(log, "x failed", new Error("condition"));
    expect(() => logUnlessBug(log, "y failed", new AssertionError("bug"))).toThrow("bug");
    expect(lines).toEqual(["x failed", "y failed: an assertion failed; stopping"]);
  });
});

describe("maintainIsr", () => {
  const rmWith = (changes: () => unknown[]) =>
    ({ closed: false, isrChanges: changes, replica: () => undefined }) as unknown as ReplicaManager;

  it("a failed AlterPartition is logged and asked again later", async () => {
    const { log, lines } = recordingLog();
    const change = { topic: "t", partition: 0, leaderEpoch: 1, partitionEpoch: 1, newIsr: [1] };
    await maintainIsr({
      rm: rmWith(() => [change]),
      channel: { alterPartition: () => Promise.reject(rillError("NOT_CONTROLLER", "moving")) },
      nodeId: 1,
      replicaLagTimeMaxMs: 1000,
      brokerEpoch: () => 3,
      log,
    });
    expect(lines).toEqual(["AlterPartition failed; retrying"]);
  });

  it("a change whose outcome is unknown (a failed call, a stale epoch) stays pending; only a refusal of the change itself releases it", async () => {
    const fs = new MemoryFileSystem();
    const config = { ...defaultTopicConfig };
    const log0 = PartitionLog.open({ fs, dir: "/p", clock: new ManualClock(0), config, tailCacheBytes: 0, recover: true });
    const r = new PartitionReplica("t", 0, log0, 1);
    r.update({ leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2], isr: [1] }, 0);
    r.onFollowerFetch(2, 0, 1);
    const rm = {
      closed: false,
      isrChanges: () => {
        const c = r.wantedIsrChange(2, 1000, () => true);
        if (c) r.isrChangeInFlight = true;
        return c ? [c] : [];
      },
      replica: () => r,
    } as unknown as ReplicaManager;
    const { log, lines } = recordingLog();
    const answer = (error: Error) => () =>
      Promise.resolve([{ topic: "t", partition: 0, leader: 1, leaderEpoch: 0, partitionEpoch: 1, isr: [1, 2], error }]);
    const round = (alterPartition: () => Promise<never[]> | ReturnType<ReturnType<typeof answer>>) =>
      maintainIsr({ rm, channel: { alterPartition } as never, nodeId: 1, replicaLagTimeMaxMs: 1000, brokerEpoch: () => 3, log });
    await round(() => Promise.reject(rillError("REQUEST_TIMED_OUT", "no answer")));
    expect([r.pendingIsrAdds, r.isrChangeInFlight]).toEqual([[2], false]);
    await round(answer(rillError("INVALID_UPDATE_VERSION", "partition_epoch: 0 is not t-0's current partition epoch 1")));
    expect(r.pendingIsrAdds).toEqual([2]); // an earlier try may have been committed
    await round(answer(rillError("INELIGIBLE_REPLICA", "new_isr: replica 2 of t-0 is fenced")));
    expect([r.pendingIsrAdds, r.isrChangeInFlight]).toEqual([[], false]);
    expect(lines).toEqual(["AlterPartition failed; retrying", "ISR change refused", "ISR change refused"]);
  });

  it("an AssertionError (from the replicas or the controller) rejects", async () => {
    const { log } = recordingLog();
    const base = { nodeId: 1, replicaLagTimeMaxMs: 1000, brokerEpoch: () => 3, log };
    await expect(
      maintainIsr({
        ...base,
        rm: rmWith(() => {
          throw new AssertionError("ISR outside the replicas");
        }),
        channel: { alterPartition: () => Promise.resolve([]) },
      }),
    ).rejects.toThrow(AssertionError);
    const change = { topic: "t", partition: 0, leaderEpoch: 1, partitionEpoch: 1, newIsr: [1] };
    await expect(
      maintainIsr({
        ...base,
        rm: rmWith(() => [change]),
        channel: { alterPartition: () => Promise.reject(new AssertionError("epoch backwards")) },
      }),
    ).rejects.toThrow(AssertionError);
  });
});
