/**
 * GroupsService (src/service/groups.ts) on domain types, over an in-memory broker: no gRPC, no
 * generated code. Each test checks an answer and what is (or is not) stored afterwards.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RillError } from "../../../src/base/errors.ts";
import { OFFSETS_TOPIC } from "../../../src/coordinator/group-runtime.ts";
import {
  GroupsService,
  type HeartbeatInput,
  type HeartbeatOutput,
  type ResetOffsetsInput,
  commitChecked,
  currentAssignment,
} from "../../../src/service/groups.ts";
import { type GroupWorld, groupWorld } from "./groups-fixture.ts";

const G = "g1";

let w: GroupWorld;
let groups: GroupsService;

beforeEach(async () => {
  w = await groupWorld({ t: 2, u: 1 });
  groups = new GroupsService(w.rt, w.rm);
});
afterEach(async () => {
  await w.close();
});

function join(over: Partial<HeartbeatInput> = {}) {
  return groups.heartbeat({
    groupId: G,
    memberId: "",
    memberEpoch: 0,
    instanceId: null,
    topics: ["t"],
    owned: [],
    assignor: "",
    sessionTimeoutMs: 0,
    rebalanceTimeoutMs: 0,
    clientId: "test",
    ...over,
  });
}

/** Heartbeats `member` (owning what it was told to) until its assignment stops changing. */
function settle(member: HeartbeatOutput, groupId = G): HeartbeatOutput {
  let m = member;
  for (let i = 0; i < 10; i++) {
    const next = groups.heartbeat({
      groupId,
      memberId: m.memberId,
      memberEpoch: m.memberEpoch,
      instanceId: null,
      topics: null,
      owned: m.assignment,
      assignor: "",
      sessionTimeoutMs: 0,
      rebalanceTimeoutMs: 0,
      clientId: "test",
    });
    if (next.memberEpoch === m.memberEpoch && JSON.stringify(next.assignment) === JSON.stringify(m.assignment)) return next;
    m = next;
  }
  return m;
}

const offset = (topic: string, partition: number, o: number) => ({ topic, partition, offset: o, metadata: "", leaderEpoch: -1 });
const names = (errors: ReadonlyArray<{ error: RillError | null }>) => errors.map((e) => e.error?.kind.name ?? null);

async function thrown(fn: () => unknown): Promise<RillError> {
  try {
    await fn();
  } catch (e) {
    return e as RillError;
  }
  throw new Error("expected an error");
}

describe("GroupsService.heartbeat", () => {
  it("a joining member gets an id, an epoch and the whole assignment", () => {
    const m = settle(join());
    expect(m.memberId).not.toBe("");
    expect(m.memberEpoch).toBeGreaterThan(0);
    expect(m.assignment).toEqual([{ topic: "t", partitions: [0, 1] }]);
    expect(currentAssignment(w.rt, G, m.memberId)).toEqual([{ topic: "t", partitions: [0, 1] }]);
    expect(currentAssignment(w.rt, G, "")).toEqual([]);
  });

  it("refuses an unknown assignor and an invalid group id, naming the field; no group is created", async () => {
    const bad = await thrown(() => join({ assignor: "roundrobin" }));
    expect(bad.kind.name).toBe("INVALID_REQUEST");
    expect(bad.message).toMatch(/^assignor: unknown assignor "roundrobin"/);
    expect((await thrown(() => join({ groupId: "" }))).kind.name).toBe("INVALID_GROUP_ID");
    expect(groups.listGroups([])).toEqual([]);
  });
});

describe("GroupsService.commitOffsets and fetchOffsets", () => {
  it("a member commits what it owns; fetchOffsets answers it, and -1 for partitions without a commit", async () => {
    const m = settle(join());
    const res = await groups.commitOffsets({
      groupId: G,
      memberId: m.memberId,
      memberEpoch: m.memberEpoch,
      offsets: [{ ...offset("t", 1, 7), metadata: "m", leaderEpoch: 0 }],
    });
    expect(res.error).toBeNull();
    expect(res.offsets).toEqual([{ topic: "t", partition: 1, offset: 7, error: null }]);
    expect(await groups.fetchOffsets(G, null)).toEqual([
      { topic: "t", partition: 1, offset: 7, metadata: "m", leaderEpoch: 0, commitTimestampMs: w.clock.nowMs() },
    ]);
    const asked = await groups.fetchOffsets(G, [{ topic: "t", partitions: [] }]);
    expect(asked.map((o) => [o.partition, o.offset])).toEqual([
      [0, -1],
      [1, 7],
    ]);
  });

  it("a commit by a member that does not own the partition is refused in its result and not applied", async () => {
    const a = settle(join());
    const b = join({ clientId: "b" }); // joins; owns nothing until `a` gives partitions up
    expect(b.assignment).toEqual([]);
    const res = await groups.commitOffsets({
      groupId: G,
      memberId: b.memberId,
      memberEpoch: b.memberEpoch,
      offsets: [offset("t", 0, 5)],
    });
    expect(names(res.offsets)).toEqual(["STALE_MEMBER_EPOCH"]);
    expect(res.offsets[0]!.error!.message).toMatch(/t\/0 is not owned by member/);
    // A stranger is refused as a whole.
    const stranger = await groups.commitOffsets({ groupId: G, memberId: "nobody", memberEpoch: 1, offsets: [offset("t", 0, 5)] });
    expect(stranger.error?.kind.name).toBe("UNKNOWN_MEMBER_ID");
    expect(names(stranger.offsets)).toEqual(["UNKNOWN_MEMBER_ID"]);
    expect(await groups.fetchOffsets(G, null)).toEqual([]);
    // The owner's commit of the same partition goes through.
    const ok = await groups.commitOffsets({ groupId: G, memberId: a.memberId, memberEpoch: a.memberEpoch, offsets: [offset("t", 0, 5)] });
    expect(names(ok.offsets)).toEqual([null]);
    expect((await groups.fetchOffsets(G, null)).map((o) => o.offset)).toEqual([5]);
  });

  it("offsets of topics or partitions that do not exist fail one by one, naming their index; the rest keep input order", async () => {
    const m = settle(join());
    const res = commitChecked(w.rt, w.rm, G, m.memberId, m.memberEpoch, [
      offset("nope", 0, 1),
      offset("t", 1, 3),
      offset("t", 9, 1),
      offset(OFFSETS_TOPIC, 0, 1),
      offset("t", 0, 2),
    ]);
    expect(names(res.offsets)).toEqual([
      "UNKNOWN_TOPIC_OR_PARTITION",
      null,
      "UNKNOWN_TOPIC_OR_PARTITION",
      "UNKNOWN_TOPIC_OR_PARTITION",
      null,
    ]);
    expect(res.offsets.map((o) => [o.topic, o.partition, o.offset])).toEqual([
      ["nope", 0, 1],
      ["t", 1, 3],
      ["t", 9, 1],
      [OFFSETS_TOPIC, 0, 1],
      ["t", 0, 2],
    ]);
    expect(res.offsets[0]!.error!.message).toBe('offsets[0].topic: topic "nope" does not exist');
    expect(res.offsets[2]!.error!.message).toBe('offsets[2].partition: 9 is out of range for topic "t" (partitions 0..1)');
    expect((await groups.fetchOffsets(G, null)).map((o) => [o.partition, o.offset])).toEqual([
      [0, 2],
      [1, 3],
    ]);
  });

  it("refuses an empty commit, a negative offset and a bad group id as a whole; nothing is applied", async () => {
    const m = settle(join());
    const base = { groupId: G, memberId: m.memberId, memberEpoch: m.memberEpoch };
    const empty = await thrown(() => groups.commitOffsets({ ...base, offsets: [] }));
    expect([empty.kind.name, empty.message]).toEqual(["INVALID_REQUEST", "offsets: at least one offset is required"]);
    const negative = await thrown(() => groups.commitOffsets({ ...base, offsets: [offset("t", 0, 4), offset("t", 1, -1)] }));
    expect([negative.kind.name, negative.message]).toEqual(["INVALID_REQUEST", "offsets[1].offset: -1 is negative"]);
    const id = await thrown(() => groups.commitOffsets({ ...base, groupId: "x".repeat(250), offsets: [offset("t", 0, 4)] }));
    expect(id.kind.name).toBe("INVALID_GROUP_ID");
    expect(await groups.fetchOffsets(G, null)).toEqual([]);
  });

  it("an empty group takes commits without membership", async () => {
    const res = await groups.commitOffsets({ groupId: "free", memberId: "", memberEpoch: -1, offsets: [offset("u", 0, 0)] });
    expect(names(res.offsets)).toEqual([null]);
    expect((await groups.fetchOffsets("free", null)).map((o) => o.offset)).toEqual([0]);
  });
});

describe("GroupsService.describeGroups, listGroups and deleteGroups", () => {
  it("describes members, assignments and each partition's committed offset, log end and lag", async () => {
    w.produce("t", 0, ["a", "b", "c", "d", "e"]);
    w.produce("t", 1, ["x"]);
    const m = settle(join());
    await groups.commitOffsets({ groupId: G, memberId: m.memberId, memberEpoch: m.memberEpoch, offsets: [offset("t", 0, 3)] });
    const [d] = groups.describeGroups([G]);
    expect(d!.error).toBeNull();
    const g = d!.group!;
    expect(g.state).toBe("stable");
    expect(g.coordinatorId).toBe(1);
    expect(g.members.map((x) => [x.memberId, x.clientId, x.assignment])).toEqual([
      [m.memberId, "test", [{ topic: "t", partitions: [0, 1] }]],
    ]);
    expect(g.offsets).toEqual([
      { topic: "t", partition: 0, committedOffset: 3, logEndOffset: 5, lag: 2, memberId: m.memberId },
      { topic: "t", partition: 1, committedOffset: -1, logEndOffset: 1, lag: -1, memberId: m.memberId },
    ]);
  });

  it("answers per group: an unknown group and an invalid id get their own error; an empty list is refused", async () => {
    settle(join());
    const res = groups.describeGroups(["nope", G, ""]);
    expect(res.map((r) => r.groupId)).toEqual(["nope", G, ""]);
    expect(names(res)).toEqual(["GROUP_ID_NOT_FOUND", null, "INVALID_GROUP_ID"]);
    expect(res[2]!.error!.message).toMatch(/^group_ids\[2\]: /);
    expect((await thrown(() => groups.describeGroups([]))).message).toBe("group_ids: at least one group is required");
  });

  it("lists groups by id, filtered by state; deletes only groups without members", async () => {
    const m = settle(join());
    await groups.commitOffsets({ groupId: "a-empty", memberId: "", memberEpoch: -1, offsets: [offset("u", 0, 1)] });
    expect(groups.listGroups([]).map((g) => [g.groupId, g.state, g.members])).toEqual([
      ["a-empty", "empty", 0],
      [G, "stable", 1],
    ]);
    expect(groups.listGroups(["stable"]).map((g) => g.groupId)).toEqual([G]);
    expect(names(groups.deleteGroups([G, "a-empty", "nope"]))).toEqual(["NON_EMPTY_GROUP", null, "GROUP_ID_NOT_FOUND"]);
    expect(groups.listGroups([]).map((g) => g.groupId)).toEqual([G]);
    groups.heartbeat({
      groupId: G,
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
    expect(names(groups.deleteGroups([G]))).toEqual([null]);
    expect(groups.listGroups([])).toEqual([]);
    expect((await thrown(() => groups.deleteGroups([]))).kind.name).toBe("INVALID_REQUEST");
  });
});

describe("GroupsService.resetOffsets", () => {
  const reset = (over: Partial<ResetOffsetsInput>) =>
    groups.resetOffsets({
      groupId: "r",
      partitions: [{ topic: "t", partitions: [] }],
      spec: null,
      offset: null,
      timestampMs: 0,
      dryRun: false,
      ...over,
    });

  beforeEach(async () => {
    w.produce("t", 0, ["a", "b", "c", "d"]);
    w.produce("t", 1, ["x", "y"]);
    await groups.commitOffsets({ groupId: "r", memberId: "", memberEpoch: -1, offsets: [offset("t", 0, 1), offset("t", 1, 1)] });
  });
  const committed = async () => (await groups.fetchOffsets("r", null)).map((o) => [o.partition, o.offset]);

  it("refuses bad requests naming the field, and changes nothing", async () => {
    const cases: Array<[Partial<ResetOffsetsInput>, string, string]> = [
      [{ spec: "earliest", offset: 1 }, "INVALID_REQUEST", "spec, offset: give one of them, not both"],
      [{}, "INVALID_REQUEST", "spec, offset: one of them is required"],
      [{ offset: -2 }, "INVALID_REQUEST", "offset: -2 is negative"],
      [{ spec: "timestamp", timestampMs: -5 }, "INVALID_TIMESTAMP", "timestamp_ms: -5 is negative"],
      [{ spec: "7" }, "INVALID_REQUEST", "spec: 7 is not EARLIEST, LATEST or TIMESTAMP"],
      [{ spec: "earliest", partitions: [] }, "INVALID_REQUEST", "partitions: at least one topic is required"],
      [
        { spec: "earliest", partitions: [{ topic: OFFSETS_TOPIC, partitions: [] }] },
        "INVALID_REQUEST",
        `partitions[0].topic: cannot reset offsets of ${OFFSETS_TOPIC}`,
      ],
      [{ spec: "earliest", groupId: "" }, "INVALID_GROUP_ID", "group_id: group id is empty"],
    ];
    for (const [over, name, message] of cases) {
      const e = await thrown(() => reset(over));
      expect([e.kind.name, e.message]).toEqual([name, message]);
    }
    const unknown = await thrown(() =>
      reset({
        spec: "earliest",
        partitions: [
          { topic: "u", partitions: [] },
          { topic: "nope", partitions: [] },
        ],
      }),
    );
    expect(unknown.kind.name).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(unknown.message).toMatch(/partitions\[1\]\.topic/);
    expect(await committed()).toEqual([
      [0, 1],
      [1, 1],
    ]);
  });

  it("moves offsets to earliest, latest, a clamped offset or a timestamp; a dry run only answers", async () => {
    expect(reset({ spec: "latest", dryRun: true }).map((o) => [o.partition, o.offset, o.error])).toEqual([
      [0, 4, null],
      [1, 2, null],
    ]);
    expect(await committed()).toEqual([
      [0, 1],
      [1, 1],
    ]);
    reset({ spec: "latest" });
    expect(await committed()).toEqual([
      [0, 4],
      [1, 2],
    ]);
    reset({ spec: "earliest", partitions: [{ topic: "t", partitions: [1] }] });
    expect(await committed()).toEqual([
      [0, 4],
      [1, 0],
    ]);
    expect(reset({ offset: 3 }).map((o) => o.offset)).toEqual([3, 2]);
    expect(reset({ spec: "timestamp", timestampMs: w.clock.nowMs() + 1 }).map((o) => o.offset)).toEqual([4, 2]);
    expect(reset({ spec: "timestamp", timestampMs: 0 }).map((o) => o.offset)).toEqual([0, 0]);
  });

  it("refuses a group with members (NON_EMPTY_GROUP)", async () => {
    settle(join({ groupId: "r" }), "r");
    const e = await thrown(() => reset({ spec: "earliest" }));
    expect(e.kind.name).toBe("NON_EMPTY_GROUP");
  });
});
