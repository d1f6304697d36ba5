/**
 * A group shard's load (replaying its `__consumer_offsets` partition) yields between slices when
 * the runtime is given `defer`, as the broker gives it setImmediate: the other shards' groups are
 * served during the load, the loading shard's groups are told COORDINATOR_NOT_AVAILABLE
 * ("loading"), and once the replay reaches the log end the shard serves exactly the state it
 * would have after a synchronous load. Ordering and progress only: nothing here measures time.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { GroupRuntime, offsetsPartitionFor } from "../../../src/coordinator/group-runtime.ts";
import { GroupsService } from "../../../src/service/groups.ts";
import { type GroupWorld, groupWorld } from "./groups-fixture.ts";

const BIG = "load-big";
/** A group in another `__consumer_offsets` partition than BIG. */
const SMALL = ["load-small", "load-small-2", "load-small-3"].find((g) => offsetsPartitionFor(g) !== offsetsPartitionFor(BIG))!;
const COMMITS = 300;
const SLICE = 4096;

let w: GroupWorld;

const commit = (groups: GroupsService, groupId: string, offset: number) =>
  groups.commitOffsets({
    groupId,
    memberId: "",
    memberEpoch: -1,
    offsets: [{ topic: "t", partition: 0, offset, metadata: "", leaderEpoch: -1 }],
  });

const committed = async (groups: GroupsService, groupId: string) => (await groups.fetchOffsets(groupId, null)).map((o) => o.offset);

beforeEach(async () => {
  w = await groupWorld({ t: 1 });
  const groups = new GroupsService(w.rt, w.rm, new ManualTimers());
  for (let i = 0; i < COMMITS; i++) await commit(groups, BIG, i); // one batch per commit: many slices of SLICE bytes
  await commit(groups, SMALL, 7);
});
afterEach(async () => w.close());

describe("a group shard's load yields to other work", () => {
  it("between slices, another shard's group is served and the loading one is told it is loading; then it serves the replayed state", async () => {
    const queue: Array<() => void> = [];
    const rt = GroupRuntime.start(w.rm, w.clock, new SeededRandom(1), 1, { defer: (fn) => queue.push(fn), loadSliceBytes: SLICE });
    const groups = new GroupsService(rt, w.rm, new ManualTimers());
    const p = offsetsPartitionFor(BIG);
    // The first slice ran inside start; the rest waits in the queue.
    expect(queue.length).toBe(1);
    const progress = [rt.loadProgress(p)!];
    expect(progress[0]).toBeGreaterThanOrEqual(SLICE);
    // Served during the load: the small group's shard loaded at once.
    expect(await committed(groups, SMALL)).toEqual([7]);
    const e = await groups.fetchOffsets(BIG, null).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind.name).toBe("COORDINATOR_NOT_AVAILABLE");
    expect((e as RillError).message).toMatch(/is loading on this broker \(\d+ bytes replayed so far\)/);
    // Each slice moves the replay on; between them the small group keeps answering.
    while (queue.length > 0) {
      queue.shift()!();
      const now = rt.loadProgress(p);
      if (now !== null) {
        expect(now).toBeGreaterThan(progress.at(-1)!);
        progress.push(now);
        expect(await committed(groups, SMALL)).toEqual([7]);
      }
    }
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(rt.loadProgress(p)).toBeNull();
    expect(await committed(groups, BIG)).toEqual([COMMITS - 1]);
  });

  it("with setImmediate, a request queued during the load is answered before the load ends", async () => {
    const rt = GroupRuntime.start(w.rm, w.clock, new SeededRandom(1), 1, { defer: (fn) => setImmediate(fn), loadSliceBytes: SLICE });
    const groups = new GroupsService(rt, w.rm, new ManualTimers());
    const p = offsetsPartitionFor(BIG);
    const seen: Array<{ loading: number | null; offsets: number[] }> = [];
    const answered = new Promise<void>((resolve) =>
      setImmediate(() => {
        const loading = rt.loadProgress(p);
        void committed(groups, SMALL).then((offsets) => {
          seen.push({ loading, offsets });
          resolve();
        });
      }),
    );
    await answered;
    expect(seen[0]!.loading).not.toBeNull(); // the load was still going when the request ran
    expect(seen[0]!.offsets).toEqual([7]);
    while (rt.loadProgress(p) !== null) await new Promise((r) => setImmediate(r));
    expect(await committed(groups, BIG)).toEqual([COMMITS - 1]);
  });

  it("without defer the load is synchronous (the simulator and tests), and syncShards under the same leadership lets a load go on", async () => {
    const sync = GroupRuntime.start(w.rm, w.clock, new SeededRandom(1), 1);
    expect(sync.loadProgress(offsetsPartitionFor(BIG))).toBeNull();
    expect(await committed(new GroupsService(sync, w.rm, new ManualTimers()), BIG)).toEqual([COMMITS - 1]);

    const queue: Array<() => void> = [];
    const rt = GroupRuntime.start(w.rm, w.clock, new SeededRandom(1), 1, { defer: (fn) => queue.push(fn), loadSliceBytes: SLICE });
    const p = offsetsPartitionFor(BIG);
    queue.shift()!();
    const before = rt.loadProgress(p)!;
    rt.syncShards(); // same leadership: the load goes on, not restarted
    expect(rt.loadProgress(p)).toBe(before);
    while (queue.length > 0) queue.shift()!();
    expect(await committed(new GroupsService(rt, w.rm, new ManualTimers()), BIG)).toEqual([COMMITS - 1]);
  });
});
