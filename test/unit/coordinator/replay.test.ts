import { describe, expect, it } from "vitest";
import type { GroupRecord } from "../../../src/coordinator/records.ts";
import { fromKeyValue, isTombstone, toKeyValue } from "../../../src/coordinator/records.ts";
import { Harness, TestMember, stabilize } from "./helpers.ts";

/** What a compacted topic keeps: the latest record per key, in log order (optionally without tombstones). */
function compact(log: readonly GroupRecord[], dropTombstones: boolean): GroupRecord[] {
  const last = new Map<string, number>();
  log.forEach((r, i) => last.set(r.key, i));
  return log.filter((r, i) => last.get(r.key) === i && !(dropTombstones && isTombstone(r)));
}

function expectReplayEqual(h: Harness): void {
  const live = h.c.toJSON();
  expect(h.replayed().toJSON()).toEqual(live);
  expect(h.replayed(compact(h.log, false)).toJSON()).toEqual(live);
  expect(h.replayed(compact(h.log, true)).toJSON()).toEqual(live);
  const viaKeyValue = compact(h.log, false).map((r) => {
    const kv = toKeyValue(r);
    return fromKeyValue(kv.key, kv.value);
  });
  expect(h.replayed(viaKeyValue).toJSON()).toEqual(live);
}

describe("coordinator: replay", () => {
  it("rebuilds the live state from the log (whole, or compacted with or without tombstones) after every step", () => {
    const h = new Harness();
    h.topics.set("orders", 6);
    h.topics.set("audit", 2);
    const G = "group:with%odd:chars";
    const steps: [string, () => void][] = [];
    const a = new TestMember(h, G, ["orders"], { instanceId: "static-a" });
    const b = new TestMember(h, G, ["orders", "audit"]);
    const c = new TestMember(h, G, ["orders"]);
    let a2: TestMember | null = null;
    steps.push(["a joins", () => void a.join()]);
    steps.push(["b joins", () => void b.join()]);
    steps.push(["c joins", () => void c.join()]);
    steps.push(["stabilize", () => stabilize(h, G, [a, b, c])]);
    steps.push([
      "b commits",
      () =>
        void h.write(
          h.c.commitOffsets(
            {
              groupId: G,
              memberId: b.memberId,
              memberEpoch: b.epoch,
              offsets: b.owned.map((tp) => ({ topic: tp.topic, partition: tp.partitions[0]!, offset: 11 })),
            },
            h.now,
          ),
        ),
    ]);
    steps.push(["a leaves for a while", () => void a.staticLeave()]);
    steps.push(["a comes back as a2", () => void (a2 = new TestMember(h, G, ["orders"], { instanceId: "static-a" })).join()]);
    steps.push([
      "orders grows",
      () => {
        h.topics.set("orders", 9);
        h.append(h.c.onTopicsChanged(new Map([["orders", 9]])));
      },
    ]);
    steps.push(["stabilize again", () => stabilize(h, G, [a2 as unknown as TestMember, b, c])]);
    steps.push([
      "c times out",
      () => {
        for (let i = 0; i < 11; i++) {
          h.advance(1_000);
          (a2 as unknown as TestMember).heartbeat();
          b.heartbeat();
          h.tick();
        }
      },
    ]);
    steps.push(["b leaves", () => void b.leave()]);
    steps.push(["a2 leaves", () => void (a2 as unknown as TestMember).leave()]);
    steps.push(["reset offsets", () => void h.write(h.c.resetOffsets(G, [{ topic: "orders", partition: 8, offset: 1 }], h.now))]);
    steps.push(["delete audit offsets", () => void h.write(h.c.deleteOffsets(G, [{ topic: "audit", partitions: [] }]))]);
    steps.push([
      "another group commits",
      () =>
        void h.write(
          h.c.commitOffsets(
            { groupId: "other", memberId: "", memberEpoch: -1, offsets: [{ topic: "orders", partition: 0, offset: 1 }] },
            h.now,
          ),
        ),
    ]);
    steps.push(["delete the group", () => void h.write(h.c.deleteGroups([G]))]);
    for (const [name, step] of steps) {
      step();
      try {
        expectReplayEqual(h);
      } catch (e) {
        throw new Error(`after "${name}": ${(e as Error).message}`);
      }
    }
    expect(h.c.listGroups().map((g) => g.groupId)).toEqual(["other"]);
    // Tombstones matter: without them, compaction would bring the deleted group back.
    expect(h.log.some((r) => r.type === "group-tombstone")).toBe(true);
  });

  it("changes nothing in a handler: only replay does", () => {
    const h = new Harness();
    h.topics.set("orders", 2);
    const a = new TestMember(h, "g", ["orders"]);
    a.join();
    const before = JSON.stringify(h.c.toJSON());
    const join = h.c.heartbeat({ groupId: "g", memberId: "", memberEpoch: 0, subscribedTopics: ["orders"] }, h.now);
    const leave = h.c.heartbeat({ groupId: "g", memberId: a.memberId, memberEpoch: -1 }, h.now);
    h.advance(60_000);
    const tick = h.c.tick(h.now);
    expect(join.records.length).toBeGreaterThan(0);
    expect(leave.records.length).toBeGreaterThan(0);
    expect(tick.length).toBeGreaterThan(0);
    expect(JSON.stringify(h.c.toJSON())).toBe(before);
    // Dropping a result (a failed append) leaves the coordinator as if the request never came.
    h.append(leave.records);
    expect(h!.c.describeGroups(["g"])[0]!.members).toHaveLength(0);
  });
});
