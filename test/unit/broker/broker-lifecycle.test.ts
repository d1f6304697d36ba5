import { describe, expect, it } from "vitest";
import { rillError } from "../../../src/base/errors.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { BrokerLifecycle } from "../../../src/broker/broker-lifecycle.ts";
import { silentLog } from "../../../src/broker/log.ts";
import type { BrokerControl } from "../../../src/rpc/controller-service.ts";

/** What the fake controller answers: fenced or not, or an error to throw. */
interface Answers {
  fenced: boolean;
  error: string | null;
  registrations: number;
}

/** A controller whose heartbeat answers as `a` says. */
function controller(a: Answers): BrokerControl {
  return {
    register: async () => ({ brokerEpoch: 10 + a.registrations++ }),
    heartbeat: async () => {
      if (a.error !== null) throw rillError(a.error as "STALE_BROKER_EPOCH", "stale");
      return { isCaughtUp: true, isFenced: a.fenced, shouldShutDown: false };
    },
    alterPartition: async () => [],
  };
}

async function run(timers: ManualTimers, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    timers.advance(50);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}

describe("BrokerLifecycle", () => {
  it("tells onLeftRunning when a heartbeat finds the running broker fenced or unregistered (cluster-sim seed 6223)", async () => {
    const timers = new ManualTimers();
    const c: Answers = { fenced: false, error: null, registrations: 0 };
    const l = new BrokerLifecycle({
      incarnationId: "i-1",
      nodeId: 4,
      clusterId: "c",
      address: () => "h:1",
      rack: "",
      roles: ["broker"],
      controller: controller(c),
      metadataOffset: () => 0,
      heartbeatIntervalMs: 500,
      log: silentLog,
      timers,
    });
    let left = 0;
    l.onLeftRunning(() => left++);
    l.start();
    await run(timers, 200);
    expect(l.state).toBe("running");
    expect(left).toBe(0);
    // Its session expired while its heartbeats were lost: the next answer says fenced.
    c.fenced = true;
    await run(timers, 1000);
    expect(l.state).toBe("fenced");
    expect(left).toBe(1);
    // Still fenced: told once, not at every heartbeat.
    await run(timers, 1000);
    expect(left).toBe(1);
    c.fenced = false;
    await run(timers, 500);
    expect(l.state).toBe("running");
    // Its registration was replaced: it registers again (at each failed heartbeat), and has left
    // running once more, told once.
    c.error = "STALE_BROKER_EPOCH";
    await run(timers, 1000);
    expect(left).toBe(2);
    c.error = null;
    await run(timers, 1000);
    expect(l.state).toBe("running");
    expect(l.brokerEpoch).toBeGreaterThan(10);
    expect(left).toBe(2);
    l.stop();
  });
});
