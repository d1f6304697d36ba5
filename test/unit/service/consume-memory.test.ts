/**
 * Consume messages hold memory of the broker's fetch budget (`fetch.memory.max.bytes`,
 * src/service/consume-session.ts): each message reserves before it reads and gives it back once
 * the sink has written it. Two sessions (two groups) read four partitions of 100 KiB records
 * under a 1 MiB budget while the sink "writes" each message 3 ms later: the budget is never
 * exceeded, the pumps wait for room (they do not fail), and every record arrives in order.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RillError } from "../../../src/base/errors.ts";
import { MemoryBudget } from "../../../src/base/memory-budget.ts";
import { systemTimers } from "../../../src/base/timers.ts";
import { type ConsumeSink, ConsumeSession, type DeliveredRecords } from "../../../src/service/consume-session.ts";
import { RESPONSE_COPIES } from "../../../src/service/fetch.ts";
import { type GroupWorld, groupWorld, recordsIn, subscription, until } from "./groups-fixture.ts";

const KiB = 1024;
const PARTITIONS = 4;
const RECORDS = 12;
const VALUE_BYTES = 100 * KiB;

/** Records values per partition; writes each message (calls `onSent`) 3 ms later; tracks the budget's peak. */
class SlowSink implements ConsumeSink {
  readonly values = new Map<number, string[]>();
  peak = 0;
  unsent = 0;
  errors: Array<RillError | null> = [];
  constructor(private readonly budget: MemoryBudget) {}
  assignment(): void {}
  records(r: DeliveredRecords, onSent?: () => void): boolean {
    this.peak = Math.max(this.peak, this.budget.bytesUsed);
    expect(r.error).toBeNull();
    const list = this.values.get(r.partition) ?? [];
    for (const v of recordsIn(r.chunks, r.firstOffset)) list.push(v.value.slice(0, 12));
    this.values.set(r.partition, list);
    this.unsent++;
    setTimeout(() => {
      this.unsent--;
      onSent?.();
    }, 3);
    return true;
  }
  commitResult(): void {}
  end(error: RillError | null): void {
    this.errors.push(error);
  }
  count(): number {
    let n = 0;
    for (const v of this.values.values()) n += v.length;
    return n;
  }
}

const tag = (p: number, i: number): string => `p${p}-r${String(i).padStart(3, "0")}`.padEnd(12, ".");

let w: GroupWorld;
const sessions: ConsumeSession[] = [];
beforeEach(async () => {
  w = await groupWorld({ t: PARTITIONS });
  for (let p = 0; p < PARTITIONS; p++) for (let i = 0; i < RECORDS; i++) w.produce("t", p, [tag(p, i) + "x".repeat(VALUE_BYTES - 12)]);
});
afterEach(async () => {
  for (const s of sessions.splice(0)) s.close();
  await w.close();
});

describe("Consume within fetch.memory.max.bytes", () => {
  it("two sessions of four 1.2 MiB partitions under a 1 MiB budget: never above it, wait for room, deliver everything in order", async () => {
    const budget = new MemoryBudget(1024 * KiB, systemTimers);
    const memory = { budget, responseBytesMax: 64 * 1024 * KiB };
    const sinks = ["cg1", "cg2"].map((groupId) => {
      const sink = new SlowSink(budget);
      const session = new ConsumeSession(w.rt, w.rm, systemTimers, sink, memory);
      sessions.push(session);
      session.subscribe(subscription({ groupId }));
      return sink;
    });
    await until(() => sinks.every((s) => s.count() === PARTITIONS * RECORDS && s.unsent === 0), "every record to both groups", 20_000);
    for (const s of sinks) {
      for (let p = 0; p < PARTITIONS; p++) expect(s.values.get(p)).toEqual(Array.from({ length: RECORDS }, (_, i) => tag(p, i)));
      expect(s.peak).toBeLessThanOrEqual(budget.bytesMax);
      expect(s.errors).toEqual([]);
    }
    // Messages were reserved (at least one record's four copies each), and some had to wait.
    expect(budget.stats.granted).toBeGreaterThanOrEqual((2 * PARTITIONS * RECORDS * VALUE_BYTES) / (budget.bytesMax / RESPONSE_COPIES));
    expect(budget.stats.waited).toBeGreaterThan(0);
    expect(budget.bytesUsed).toBe(0); // everything written gave its memory back
  });

  it("a session that ends gives back what its unwritten messages held", async () => {
    const budget = new MemoryBudget(1024 * KiB, systemTimers);
    const sink = new SlowSink(budget);
    sink.records = (r, _onSent) => {
      sink.values.set(r.partition, [...(sink.values.get(r.partition) ?? []), "m"]);
      return true; // never written
    };
    const session = new ConsumeSession(w.rt, w.rm, systemTimers, sink, { budget, responseBytesMax: 64 * 1024 * KiB });
    sessions.push(session);
    session.subscribe(subscription());
    await until(() => budget.waiting > 0, "the pump to wait for memory held by unwritten messages");
    expect(budget.bytesUsed).toBeGreaterThan(0);
    session.close();
    expect(budget.bytesUsed).toBe(0);
    expect(budget.waiting).toBe(0);
  });
});
