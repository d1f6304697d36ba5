/**
 * The console's traffic and lag history (src/http/api/traffic.ts): per-second rates from
 * cumulative counts, a count that goes down taken as no growth, a topic that appears counted from
 * its second reading, "out" unknown stays null, the 15-minute window, the bound on topics, and
 * the lag series per group and partition.
 */
import { describe, expect, it } from "vitest";
import { ManualTimers } from "../../../src/base/timers.ts";
import { type GroupLag, type TopicTotals, TOPICS_TRACKED_MAX, TrafficHistory } from "../../../src/http/api/traffic.ts";

function source() {
  const totals = new Map<string, TopicTotals>();
  const set = (topic: string, recordsIn: number, bytesIn: number, out: number | null = null) =>
    totals.set(topic, { topic, recordsIn, bytesIn, recordsOut: out, bytesOut: out === null ? null : out * 10 });
  return { totals, set, read: () => [...totals.values()] };
}

describe("TrafficHistory", () => {
  it("answers per-second growth between samples; a decrease is no growth; out stays null when not counted", () => {
    const s = source();
    const h = new TrafficHistory(s.read, () => [], 1000);
    s.set("a", 100, 1000, 5);
    s.set("b", 0, 0);
    h.sample(10_000);
    s.set("a", 150, 3000, 15);
    s.set("b", 20, 40);
    h.sample(12_000); // 2 s later
    s.set("a", 120, 2000, 20); // a restarted source: no growth, never negative
    s.set("c", 7, 7); // new: counted from its next reading
    h.sample(13_000);
    expect(h.topic("a")).toEqual({
      topic: "a",
      t: [12_000, 13_000],
      recordsIn: [25, 0],
      bytesIn: [1000, 0],
      recordsOut: [5, 5],
      bytesOut: [50, 50],
    });
    expect(h.topic("b")).toMatchObject({ recordsIn: [10, 0], recordsOut: [null, null] });
    expect(h.topics(() => true).map((t) => t.topic)).toEqual(["a", "b"]);
    expect(h.topics((n) => n !== "a").map((t) => t.topic)).toEqual(["b"]);
  });

  it("keeps only the last windowMs of samples", () => {
    const s = source();
    const h = new TrafficHistory(s.read, () => [], 1000, 5000);
    for (let i = 0; i <= 20; i++) {
      s.set("a", i * 10, i * 100);
      h.sample(i * 1000);
    }
    expect(h.topic("a").t).toEqual([16_000, 17_000, 18_000, 19_000, 20_000]);
    expect(h.topic("a").recordsIn).toEqual([10, 10, 10, 10, 10]);
  });

  it("keeps the busiest TOPICS_TRACKED_MAX topics of a sample", () => {
    const s = source();
    const h = new TrafficHistory(s.read, () => [], 1000);
    const n = TOPICS_TRACKED_MAX + 10;
    for (let i = 0; i < n; i++) s.set(`t${i}`, 0, 0);
    h.sample(0);
    for (let i = 0; i < n; i++) s.set(`t${i}`, i, i);
    h.sample(1000);
    const tracked = h.topics(() => true).map((t) => t.topic);
    expect(tracked).toHaveLength(TOPICS_TRACKED_MAX);
    expect(tracked).not.toContain("t0");
    expect(tracked).toContain(`t${n - 1}`);
  });

  it("records each group's lag per partition and its total, with gaps where a partition was not sampled", () => {
    let lag: GroupLag[] = [{ group: "g", partitions: new Map([["t-0", 5]]) }];
    const h = new TrafficHistory(
      () => [],
      () => lag,
      1000,
    );
    h.sample(1000);
    lag = [
      {
        group: "g",
        partitions: new Map([
          ["t-0", 3],
          ["t-1", 4],
        ]),
      },
      { group: "other", partitions: new Map() },
    ];
    h.sample(2000);
    expect(h.groupLag("g")).toEqual({ group: "g", t: [1000, 2000], total: [5, 7], partitions: { "t-0": [5, 3], "t-1": [null, 4] } });
    expect(h.groupLag("nobody")).toEqual({ group: "nobody", t: [], total: [], partitions: {} });
  });

  it("samples on its timers until stopped", () => {
    const s = source();
    const timers = new ManualTimers();
    let now = 0;
    const h = new TrafficHistory(s.read, () => [], 500);
    s.set("a", 0, 0);
    h.start(timers, () => now);
    for (let i = 1; i <= 4; i++) {
      s.set("a", i * 50, i * 500);
      now += 500;
      timers.advance(500);
    }
    h.stop();
    s.set("a", 1000, 1000);
    now += 500;
    timers.advance(500);
    expect(h.topic("a").recordsIn).toEqual([100, 100, 100, 100]);
  });
});
