/**
 * A restarted broker of a cluster acts as no partition's leader until it has caught up with the
 * cluster's metadata (ReplicaManager.holdLeadership / releaseLeadership): its image may still
 * name it leader of partitions moved while it was down. Found by kafka-failover.test.ts: a
 * producer that followed the stale leader got OUT_OF_ORDER_SEQUENCE_NUMBER.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";
import { type Core, openCore } from "../service/helpers.ts";

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

const batch = () => encodeBatch([{ value: "v" }], { nowMs: 1 });

describe("holding leadership while catching up", () => {
  it("refuses appends and leader logs with NOT_LEADER_OR_FOLLOWER, then serves once released", async () => {
    const c = openCore();
    cores.push(c);
    await c.topic("t", [1]);
    c.rm.holdLeadership();
    expect(c.rm.leading).toBe(false);
    let err: unknown;
    try {
      c.rm.append("t", 0, batch(), "leader");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RillError);
    expect((err as RillError).kind.name).toBe("NOT_LEADER_OR_FOLLOWER");
    expect((err as RillError).message).toMatch(/catching up with the cluster's metadata/);
    expect(() => c.rm.leaderLog("t", 0)).toThrow(/catching up/);
    c.rm.releaseLeadership();
    const r = c.rm.append("t", 0, batch(), "leader");
    expect(r.baseOffset).toBe(0);
    expect(c.rm.leaderLog("t", 0).logEndOffset).toBe(1);
  });
});
