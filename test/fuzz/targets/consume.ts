/**
 * Fuzz target "consume": random event sequences on one or two ConsumeSessions
 * (src/service/consume-session.ts) of one group over an in-memory broker (the groups fixture of
 * test/unit/service): subscribe with edge fields, commit (owned, foreign, negative, unknown
 * partitions), flow credit (negative too), a sink that fills and drains, produce in between,
 * close and abort, in any order.
 *
 * Properties: no call throws; no promise rejects unhandled; `end` is called exactly once (after
 * close at the latest) and nothing reaches the sink after it; every error handed to the sink
 * (end, a commit's, an offset's) is a catalog RillError; records arrive only for partitions the
 * member owns at that moment (per its assignment events) and decode record by record.
 */
import fc from "fast-check";
import type { RillError } from "../../../src/base/errors.ts";
import { systemTimers } from "../../../src/base/timers.ts";
import {
  type AssignmentChange,
  type CommitResultOutput,
  type ConsumeSink,
  ConsumeSession,
  type ConsumeSubscription,
  type DeliveredRecords,
} from "../../../src/service/consume-session.ts";
import { type GroupWorld, groupWorld } from "../../unit/service/groups-fixture.ts";
import { edgyInt } from "../lib/batch-model.ts";
import { expectCatalogError, type FuzzContext, type FuzzTarget, holds, PropertyFailure, showJson } from "../lib/harness.ts";
import { readAll } from "./batch.ts";

type Event =
  | {
      readonly op: "subscribe";
      readonly s: number;
      readonly sub: Omit<ConsumeSubscription, "groupId" | "clientId" | "clientHost"> & { readonly group: string };
    }
  | {
      readonly op: "commit";
      readonly s: number;
      readonly id: bigint;
      readonly offsets: ReadonlyArray<{ topic: string; partition: number; offset: number }>;
    }
  | { readonly op: "flow"; readonly s: number; readonly records: number; readonly bytes: number }
  | { readonly op: "full"; readonly s: number; readonly full: boolean }
  | { readonly op: "drained"; readonly s: number }
  | { readonly op: "produce"; readonly topic: string; readonly partition: number; readonly n: number }
  | { readonly op: "wait"; readonly ms: number }
  | { readonly op: "close"; readonly s: number }
  | { readonly op: "abort"; readonly s: number };

const s = fc.constantFrom(0, 1);
const topic = fc.constantFrom("t", "t", "other", "missing", "");
const event: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("subscribe" as const),
      s,
      sub: fc.record({
        group: fc.constantFrom("g", "g", "g", "", "x".repeat(300)),
        topics: fc.oneof(fc.constant(["t"]), fc.array(topic, { maxLength: 3 })),
        instanceId: fc.constantFrom(null, null, "i1", ""),
        autoOffsetReset: fc.constantFrom("earliest" as const, "latest" as const, "none" as const),
        maxOutstandingRecords: fc.constantFrom(0, 0, 1, 3, -1),
        maxOutstandingBytes: fc.constantFrom(0, 0, 1, 200, -1),
        sessionTimeoutMs: fc.constantFrom(0, 0, 1, 10_000),
        assignor: fc.constantFrom("", "uniform", "range", "bogus"),
      }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("commit" as const),
      s,
      id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      offsets: fc.array(
        fc.record({
          topic: fc.constantFrom("t", "t", "t", "other", "missing", ""),
          partition: fc.constantFrom(0, 1, 0, 1, 2, -1),
          offset: fc.oneof({ weight: 4, arbitrary: fc.nat(10) }, { weight: 1, arbitrary: edgyInt }),
        }),
        { maxLength: 3 },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("flow" as const),
      s,
      records: fc.oneof({ weight: 4, arbitrary: fc.nat(10) }, { weight: 1, arbitrary: edgyInt }),
      bytes: fc.oneof({ weight: 4, arbitrary: fc.nat(1000) }, { weight: 1, arbitrary: edgyInt }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("full" as const), s, full: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("drained" as const), s }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("produce" as const),
      topic: fc.constantFrom("t", "other"),
      partition: fc.constantFrom(0, 1),
      n: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("wait" as const), ms: fc.constantFrom(0, 1, 5, 20) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("close" as const), s }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("abort" as const), s }) },
);

/** Session 0 (and 1 when `both`) subscribed to "t" from the earliest offset, records in both partitions, a wait. */
function validStart(both: boolean): Event[] {
  const sub = (s: number): Event => ({
    op: "subscribe",
    s,
    sub: {
      group: "g",
      topics: ["t"],
      instanceId: null,
      autoOffsetReset: "earliest",
      maxOutstandingRecords: 0,
      maxOutstandingBytes: 0,
      sessionTimeoutMs: 0,
      assignor: "",
    },
  });
  return [
    { op: "produce", topic: "t", partition: 0, n: 3 },
    { op: "produce", topic: "t", partition: 1, n: 2 },
    sub(0),
    ...(both ? [sub(1)] : []),
    { op: "wait", ms: 20 },
  ];
}

/** What the sessions handed their sinks over a run: shows what the event sequences reach. */
export const consumeStats = { assignments: 0, records: 0, commitResults: 0, endedWithError: 0 };

/** A sink that checks the session's outputs as they come. */
class CheckingSink implements ConsumeSink {
  full = false;
  ends = 0;
  readonly owned = new Set<string>();
  readonly violations: string[] = [];

  assignment(change: AssignmentChange): void {
    this.afterEnd("assignment");
    consumeStats.assignments++;
    for (const tp of change.revoked) this.owned.delete(`${tp.topic}-${tp.partition}`);
    for (const tp of change.assigned) this.owned.add(`${tp.topic}-${tp.partition}`);
  }
  records(r: DeliveredRecords): boolean {
    this.afterEnd("records");
    consumeStats.records++;
    if (!this.owned.has(`${r.topic}-${r.partition}`)) this.violations.push(`records of ${r.topic}-${r.partition}, which it does not own`);
    for (const chunk of r.chunks) this.guard(() => readAll(chunk));
    return !this.full;
  }
  commitResult(result: CommitResultOutput): void {
    this.afterEnd("commitResult");
    consumeStats.commitResults++;
    if (result.error !== null) this.guard(() => expectCatalogError(result.error));
    for (const o of result.offsets) if (o.error !== null) this.guard(() => expectCatalogError(o.error));
  }
  end(error: RillError | null): void {
    this.afterEnd("end");
    this.ends++;
    if (error !== null) consumeStats.endedWithError++;
    if (error !== null) this.guard(() => expectCatalogError(error));
  }
  private afterEnd(what: string): void {
    if (this.ends > 0) this.violations.push(`${what} after end`);
  }
  private guard(f: () => unknown): void {
    try {
      f();
    } catch (e) {
      this.violations.push(e instanceof Error ? e.message : String(e));
    }
  }
}

interface World extends FuzzContext {
  readonly w: GroupWorld;
  cases: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function check(events: readonly Event[], ctx: World): Promise<void> {
  const n = ++ctx.cases;
  const sinks = [new CheckingSink(), new CheckingSink()];
  const sessions = sinks.map((sink) => new ConsumeSession(ctx.w.rt, ctx.w.rm, systemTimers, sink));
  try {
    for (const e of events) {
      try {
        await apply(e, sessions, sinks, ctx.w, n);
      } catch (err) {
        throw new PropertyFailure(`event ${showJson(e)} threw: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    for (const session of sessions) session.close();
  }
  const deadline = Date.now() + 2000;
  while (sinks.some((k) => k.ends === 0) && Date.now() < deadline) await sleep(2);
  await sleep(1);
  sinks.forEach((k, i) => {
    holds(k.violations.length === 0, () => `session ${i}: ${k.violations.join("; ")}`);
    holds(k.ends === 1, `session ${i}: end called ${k.ends} times`);
  });
}

async function apply(e: Event, sessions: ConsumeSession[], sinks: CheckingSink[], w: GroupWorld, n: number): Promise<void> {
  switch (e.op) {
    case "subscribe": {
      const { group, ...rest } = e.sub;
      sessions[e.s]!.subscribe({ ...rest, groupId: group === "g" ? `g${n}` : group, clientId: "fuzz", clientHost: "fuzz" });
      return;
    }
    case "commit":
      sessions[e.s]!.commit(
        e.id,
        e.offsets.map((o) => ({ ...o, metadata: "", leaderEpoch: -1 })),
      );
      return;
    case "flow":
      sessions[e.s]!.flow(e.records, e.bytes);
      return;
    case "full":
      sinks[e.s]!.full = e.full;
      return;
    case "drained":
      sessions[e.s]!.drained();
      return;
    case "produce":
      w.produce(
        e.topic,
        e.topic === "other" ? 0 : e.partition,
        Array.from({ length: e.n }, (_, i) => `v${i}`),
      );
      return;
    case "wait":
      await sleep(e.ms);
      return;
    case "close":
      sessions[e.s]!.close();
      return;
    case "abort":
      sessions[e.s]!.abort(new Error("the transport broke"));
      return;
  }
}

/** The "consume" target. */
export const consumeTarget: FuzzTarget<Event[], World> = {
  name: "consume",
  doc: "Consume sessions driven by random event sequences (subscribe, commit, flow, full/drained sink, produce, close, abort)",
  ciCases: 150,
  // Mostly a valid start (one or both sessions subscribed, some records, a wait), so the random
  // events that follow meet members that own partitions and have records to commit.
  arbitrary: fc
    .tuple(fc.boolean(), fc.boolean(), fc.array(event, { minLength: 1, maxLength: 12 }))
    .map(([valid, both, rest]) => (valid ? [...validStart(both), ...rest] : rest)),
  open: async () => {
    const w = await groupWorld({ t: 2, other: 1 });
    return { w, cases: 0, close: () => w.close() };
  },
  check,
  show: (events) => showJson(events),
};
