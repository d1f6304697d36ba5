/**
 * GroupsService.deleteOffsets (Kafka's OffsetDelete) over an in-memory broker: offsets of topics
 * a live member subscribes to stay (GROUP_SUBSCRIBED_TO_TOPIC), the others go.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RillError } from "../../../src/base/errors.ts";
import { GroupsService } from "../../../src/service/groups.ts";
import { type GroupWorld, groupWorld } from "./groups-fixture.ts";

let w: GroupWorld;
let groups: GroupsService;

beforeEach(async () => {
  w = await groupWorld({ t: 2, u: 1 });
  groups = new GroupsService(w.rt, w.rm);
});
afterEach(async () => {
  await w.close();
});

const offset = (topic: string, partition: number, o: number) => ({ topic, partition, offset: o, metadata: "", leaderEpoch: -1 });
const names = (rs: ReadonlyArray<{ error: RillError | null }>) => rs.map((r) => r.error?.kind.name ?? null);

/** Commits t-0, t-1 and u-0 for group `g` while it is empty. */
async function committed(g: string): Promise<void> {
  const res = await groups.commitOffsets({
    groupId: g,
    memberId: "",
    memberEpoch: -1,
    offsets: [offset("t", 0, 3), offset("t", 1, 4), offset("u", 0, 5)],
  });
  expect(names(res.offsets)).toEqual([null, null, null]);
}

/** A member of `g` subscribed to `topics`. */
function member(g: string, topics: string[]) {
  return groups.heartbeat({
    groupId: g,
    memberId: "",
    memberEpoch: 0,
    instanceId: null,
    topics,
    owned: [],
    assignor: "",
    sessionTimeoutMs: 0,
    rebalanceTimeoutMs: 0,
    clientId: "test",
  });
}

async function stored(g: string): Promise<string[]> {
  return (await groups.fetchOffsets(g, null)).map((o) => `${o.topic}-${o.partition}:${o.offset}`);
}

describe("GroupsService.deleteOffsets", () => {
  it("deletes the offsets of an empty group's partitions, one result per partition in request order", async () => {
    await committed("g");
    const res = await groups.deleteOffsets("g", [
      { topic: "u", partitions: [0] },
      { topic: "t", partitions: [1, 0] },
    ]);
    expect(res).toEqual([
      { topic: "u", partition: 0, error: null },
      { topic: "t", partition: 1, error: null },
      { topic: "t", partition: 0, error: null },
    ]);
    expect(await stored("g")).toEqual([]);
  });

  it("keeps the offsets of topics a live member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC); deletes the others", async () => {
    await committed("g");
    const m = member("g", ["t"]);
    const res = await groups.deleteOffsets("g", [
      { topic: "t", partitions: [0, 1] },
      { topic: "u", partitions: [0] },
    ]);
    expect(names(res)).toEqual(["GROUP_SUBSCRIBED_TO_TOPIC", "GROUP_SUBSCRIBED_TO_TOPIC", null]);
    expect(res[0]!.error!.message).toMatch(/subscribes to t/);
    expect(await stored("g")).toEqual(["t-0:3", "t-1:4"]);
    // Once the member has left, they can go.
    groups.heartbeat({
      groupId: "g",
      memberId: m.memberId,
      memberEpoch: -1,
      instanceId: null,
      topics: null,
      owned: [],
      assignor: "",
      sessionTimeoutMs: 0,
      rebalanceTimeoutMs: 0,
      clientId: "test",
    });
    expect(names(await groups.deleteOffsets("g", [{ topic: "t", partitions: [0, 1] }]))).toEqual([null, null]);
    expect(await stored("g")).toEqual([]);
  });

  it("answers a partition that does not exist with UNKNOWN_TOPIC_OR_PARTITION; one without an offset is fine", async () => {
    await committed("g");
    const res = await groups.deleteOffsets("g", [
      { topic: "nope", partitions: [0] },
      { topic: "t", partitions: [9, 0] },
    ]);
    expect(names(res)).toEqual(["UNKNOWN_TOPIC_OR_PARTITION", "UNKNOWN_TOPIC_OR_PARTITION", null]);
    expect(await stored("g")).toEqual(["t-1:4", "u-0:5"]);
    expect(names(await groups.deleteOffsets("g", [{ topic: "t", partitions: [0] }]))).toEqual([null]);
  });

  it("refuses an unknown group, an empty request and a topic without partitions as a whole; nothing changes", async () => {
    await committed("g");
    await expect(groups.deleteOffsets("none", [{ topic: "t", partitions: [0] }])).rejects.toThrow(/group none does not exist/);
    await expect(groups.deleteOffsets("g", [])).rejects.toThrow(/partitions: at least one topic/);
    await expect(groups.deleteOffsets("g", [{ topic: "t", partitions: [] }])).rejects.toThrow(
      /partitions\[0\]\.partitions: name at least one/,
    );
    await expect(groups.deleteOffsets("", [{ topic: "t", partitions: [0] }])).rejects.toThrow();
    expect(await stored("g")).toEqual(["t-0:3", "t-1:4", "u-0:5"]);
  });
});
