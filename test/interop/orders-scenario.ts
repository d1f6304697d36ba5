/**
 * The seed's consumer-group scenario, run by an order client of another language (Go, C++: see
 * examples/go/orders and examples/cpp/orders.cpp), each member a process of its own:
 *
 * 1. `produce` creates topic `orders` (6 partitions) and sends keyed JSON orders. Group
 *    `order-processing` gets 3 members (`op-1`, `op-2`, then `op-3`, the victim, which commits
 *    only once every VICTIM_COMMIT_EVERY records), group `analytics` 1; each member commits
 *    after processing (the others after every record). The members join while orders are
 *    there, so partitions move (and are committed on revocation) before the groups settle at
 *    2+2+2 and 6.
 * 2. More orders; both groups read every record. Once everything is processed and every commit
 *    the members sent is confirmed, the victim holds a range of processed, uncommitted records
 *    (orders are sent one by one until it holds UNCOMMITTED_MIN).
 * 3. The victim is killed (SIGKILL): its partitions go to the survivors, who start them at the
 *    committed offsets. More orders; everyone processes everything; SIGTERM ends every member
 *    cleanly (it commits, leaves, prints "closed", exits 0).
 *
 * The checker (`checkGroup`), over what every member printed: per group, every produced record
 * was delivered with its key and value (no record lost), no member went back on a partition or
 * its commits, and the records delivered twice are exactly the expected ones, each exactly
 * twice: in `order-processing` the victim's uncommitted range at its death, in `analytics` none.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { expect } from "vitest";
import { DescribeTopicsRequestSchema, type DescribeTopicsResponse } from "../../src/gen/rill/v1/admin_service_pb.ts";
import {
  DescribeGroupsRequestSchema,
  type DescribeGroupsResponse,
  FetchOffsetsRequestSchema,
  type FetchOffsetsResponse,
  GroupService,
  GroupState,
} from "../../src/gen/rill/v1/group_service_pb.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { call, clients } from "../integration/rpc-helpers.ts";
import { ROOT, run } from "./python-env.ts";

export const TOPIC = "orders";
export const PARTITIONS = 6;
export const OP = "order-processing";
export const AN = "analytics";
/** The victim commits once every this many records: it always has some processed and uncommitted. */
export const VICTIM_COMMIT_EVERY = 7;
/** Orders are sent one by one until the victim holds at least this many uncommitted records. */
const UNCOMMITTED_MIN = 3;
const SESSION_TIMEOUT_MS = 10_000;

/** One line a client printed (produce or consume mode). */
export interface Line {
  type: string;
  partition?: number;
  offset?: number;
  key?: string;
  value?: string;
  member?: string;
  partitions?: number[];
  commit_id?: number;
  offsets?: Array<{ partition: number; offset: number }>;
}

/** A produced record. */
export interface Produced {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

const at = (p: number, o: number): string => `${p}:${o}`;

/** What the checker reads of a member: its name and its output. */
export interface MemberLog {
  readonly name: string;
  readonly lines: readonly Line[];
}

/**
 * The records `m` processed and had not committed (at the end of its output): per partition, those
 * at or after its last confirmed commit there. Keys "partition:offset".
 */
export function uncommittedOf(m: MemberLog): Set<string> {
  const committed = new Map<number, number>();
  for (const l of m.lines) if (l.type === "committed") committed.set(l.partition!, l.offset!);
  return new Set(
    m.lines.filter((l) => l.type === "record" && l.offset! >= (committed.get(l.partition!) ?? -1)).map((l) => at(l.partition!, l.offset!)),
  );
}

/** Problems found in one group's output: see the file comment. Empty when there are none. */
export function checkGroup(
  group: string,
  members: readonly MemberLog[],
  produced: readonly Produced[],
  twice: ReadonlySet<string>,
): string[] {
  const problems: string[] = [];
  const want = new Map(produced.map((r) => [at(r.partition, r.offset), r]));
  const deliveries = new Map<string, string[]>();
  for (const m of members) {
    const lastRecord = new Map<number, number>();
    const lastCommit = new Map<number, number>();
    for (const l of m.lines) {
      if (l.type === "record") {
        const k = at(l.partition!, l.offset!);
        const w = want.get(k);
        if (w === undefined) problems.push(`${group}: ${m.name} got ${TOPIC}-${k}, which was never produced`);
        else if (w.key !== l.key || w.value !== l.value)
          problems.push(`${group}: ${m.name} got ${TOPIC}-${k} = ${l.key}/${l.value}, produced ${w.key}/${w.value}`);
        deliveries.set(k, [...(deliveries.get(k) ?? []), m.name]);
        const prev = lastRecord.get(l.partition!) ?? -1;
        if (l.offset! <= prev) problems.push(`${group}: ${m.name} got ${TOPIC}-${k} after offset ${prev}`);
        lastRecord.set(l.partition!, l.offset!);
      } else if (l.type === "committed") {
        const prev = lastCommit.get(l.partition!) ?? -1;
        if (l.offset! < prev) problems.push(`${group}: ${m.name} committed ${TOPIC}-${l.partition} at ${l.offset} after ${prev}`);
        lastCommit.set(l.partition!, l.offset!);
      }
    }
  }
  for (const k of want.keys()) if (!deliveries.has(k)) problems.push(`${group}: ${TOPIC}-${k} was never delivered`);
  for (const [k, who] of deliveries) {
    const n = twice.has(k) ? 2 : 1;
    if (who.length !== n) problems.push(`${group}: ${TOPIC}-${k} delivered ${who.length} times (to ${who.join(", ")}), expected ${n}`);
  }
  for (const k of twice) if (!deliveries.has(k)) problems.push(`${group}: ${TOPIC}-${k} (expected twice) was never delivered`);
  return problems;
}

/** A client program in consume mode: one group member. */
export class MemberProc implements MemberLog {
  readonly proc: ChildProcess;
  readonly lines: Line[] = [];
  readonly owned = new Set<number>();
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buf = "";

  constructor(
    readonly name: string,
    readonly group: string,
    bin: string,
    address: string,
    commitEvery = 1,
  ) {
    const args = ["consume", "--addr", address, "--topic", TOPIC, "--group", group];
    args.push("--commit-every", String(commitEvery), "--session-timeout-ms", String(SESSION_TIMEOUT_MS));
    this.proc = spawn(bin, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => this.proc.on("close", (code, signal) => resolve({ code, signal })));
    this.proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const text = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let line: Line;
        try {
          line = JSON.parse(text) as Line;
        } catch {
          this.stderr.push(`(stdout, not JSON) ${text}\n`);
          continue;
        }
        this.lines.push(line);
        if (line.type === "assigned") for (const p of line.partitions!) this.owned.add(p);
        if (line.type === "revoked") for (const p of line.partitions!) this.owned.delete(p);
      }
    });
    this.proc.stderr!.setEncoding("utf8").on("data", (d: string) => this.stderr.push(d));
  }

  of(type: string): Line[] {
    return this.lines.filter((l) => l.type === type);
  }

  /** Every commit it sent has been answered. */
  settled(): boolean {
    const answered = new Set(this.of("committed").map((l) => l.commit_id));
    return this.of("commit").every((l) => answered.has(l.commit_id));
  }

  describe(): string {
    const answered = new Set(this.of("committed").map((l) => l.commit_id));
    const unanswered = this.of("commit").filter((l) => !answered.has(l.commit_id));
    return (
      `${this.name} (${this.group}): owns [${[...this.owned].sort((a, b) => a - b)}], ${this.lines.length} lines, ${this.of("record").length} records, ` +
      `unanswered commits ${JSON.stringify(unanswered.slice(0, 5))}; last lines ${JSON.stringify(this.lines.slice(-4))}; stderr: ${this.stderr.join("").slice(-800)}`
    );
  }
}

async function until(what: string, pred: () => boolean | Promise<boolean>, ms: number, diag: () => string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What a scenario run measured, for the test's log line. */
export interface ScenarioFigures {
  produced: number;
  victimPartitions: number[];
  duplicates: number;
  takeoverMs: number;
}

/**
 * Runs the scenario with the client program `bin` against the broker at `address` (no topic
 * `orders` yet); `clientId` is what the program reports (DescribeGroups shows it). Every child
 * process it starts is pushed on `children` (the caller kills what is left after a failure).
 */
export async function runOrdersScenario(
  bin: string,
  clientId: string,
  address: string,
  children: ChildProcess[],
): Promise<ScenarioFigures> {
  const admin = clients(address);
  const groups = new (clientConstructor(GroupService))(address, grpc.credentials.createInsecure());
  try {
    return await scenario(bin, clientId, address, children, admin, groups);
  } finally {
    groups.close();
    admin.close();
  }
}

async function scenario(
  bin: string,
  clientId: string,
  address: string,
  children: ChildProcess[],
  admin: ReturnType<typeof clients>,
  groups: grpc.Client,
): Promise<ScenarioFigures> {
  const produced: Produced[] = [];
  let nextOrder = 1;
  const produce = async (count: number): Promise<void> => {
    const r = await run(bin, ["produce", "--addr", address, "--count", String(count), "--first", String(nextOrder)], {
      cwd: ROOT,
      timeoutMs: 30_000,
    });
    expect(r.code, `${bin} produce: exit ${r.code}${r.timedOut ? " (timed out)" : ""}\n${r.stderr}`).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((t) => JSON.parse(t) as Line);
    expect(lines.length, "one line per order").toBe(count);
    for (const l of lines) {
      expect(l.type).toBe("produced");
      expect(JSON.parse(l.value!), "a JSON order").toMatchObject({ order: nextOrder++, customer: l.key });
      produced.push({ partition: l.partition!, offset: l.offset!, key: l.key!, value: l.value! });
    }
  };
  const ends = (): number[] => {
    const end = new Array<number>(PARTITIONS).fill(0);
    for (const r of produced) end[r.partition] = Math.max(end[r.partition]!, r.offset + 1);
    return end;
  };
  const committed = async (group: string): Promise<number[]> => {
    const f: FetchOffsetsResponse = await call(groups, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: group }));
    const out = new Array<number>(PARTITIONS).fill(0);
    for (const o of f.offsets) if (o.topic === TOPIC && o.offset >= 0n) out[o.partition] = Number(o.offset);
    lastCommitted = `${group} committed [${out}]`;
    return out;
  };

  // 1. The topic, orders in it, both groups joining. ------------------------------------------
  await produce(30);
  const d: DescribeTopicsResponse = await call(admin.admin, "describeTopics", create(DescribeTopicsRequestSchema, { topics: [TOPIC] }));
  expect(d.topics[0]?.partitions.length, "produce created the topic with 6 partitions").toBe(PARTITIONS);
  const start = (name: string, group: string, commitEvery = 1): MemberProc => {
    const m = new MemberProc(name, group, bin, address, commitEvery);
    children.push(m.proc);
    return m;
  };
  // The survivors-to-be and analytics first (partitions move while they read and commit); the
  // victim joins once they split the topic, so it is never revoked: it only takes partitions.
  const survivors = [start("op-1", OP), start("op-2", OP)];
  const op: MemberProc[] = [...survivors];
  const an = [start("an-1", AN)];
  let lastCommitted = "";
  const diag = (): string => {
    const unseen = (members: readonly MemberProc[]) => {
      const s = seen(members);
      return produced.filter((r) => !s.has(at(r.partition, r.offset))).map((r) => at(r.partition, r.offset));
    };
    return [
      `ends [${ends()}]; ${lastCommitted}`,
      `unseen by ${OP}: ${unseen(op).slice(0, 20)}; by ${AN}: ${unseen(an).slice(0, 20)}`,
      ...[...op, ...an].map((m) => m.describe()),
    ].join("\n");
  };
  const split = (members: readonly MemberProc[], each: number): boolean =>
    members.every((m) => m.owned.size === each) && new Set(members.flatMap((m) => [...m.owned])).size === PARTITIONS;
  const seen = (members: readonly MemberProc[]): Set<string> =>
    new Set(members.flatMap((m) => m.of("record").map((l) => at(l.partition!, l.offset!))));
  /** Everything produced is processed, and every commit sent is confirmed. */
  const settled = (members: readonly MemberProc[]): boolean => {
    const s = seen(members);
    return produced.every((r) => s.has(at(r.partition, r.offset))) && members.every((m) => m.settled());
  };
  const stable = async (group: string, members: number): Promise<boolean> => {
    const r: DescribeGroupsResponse = await call(groups, "describeGroups", create(DescribeGroupsRequestSchema, { groupIds: [group] }));
    const g = r.groups[0]!;
    return g.state === GroupState.STABLE && g.members.length === members && g.members.every((m) => m.clientId === clientId);
  };
  await until("op-1 and op-2 split the topic 3+3", () => split(survivors, 3), 30_000, diag);
  const victim = start("op-3", OP, VICTIM_COMMIT_EVERY);
  op.push(victim);
  await until(
    "order-processing split 2+2+2 and analytics 6, both stable, every record processed and every commit confirmed",
    async () => split(op, 2) && split(an, 6) && settled(op) && settled(an) && (await stable(OP, 3)) && (await stable(AN, 1)),
    30_000,
    diag,
  );

  // 2. More orders, until the victim holds processed, uncommitted records (UNCOMMITTED_MIN). ------------------
  const victimParts = [...victim.owned].sort((a, b) => a - b);
  await produce(150);
  const ready = async (): Promise<boolean> => {
    if (!settled(op) || !settled(an)) return false;
    const [c, a, end] = [await committed(OP), await committed(AN), ends()];
    return end.every((e, p) => a[p] === e && (victimParts.includes(p) || c[p] === e));
  };
  let uncommitted = new Set<string>();
  for (let topUps = 0; ; topUps++) {
    await until("both groups processed everything and their commits are confirmed", ready, 30_000, diag);
    uncommitted = uncommittedOf(victim);
    if (uncommitted.size >= UNCOMMITTED_MIN) break;
    expect(topUps, "the victim's partitions got no more orders").toBeLessThan(60);
    await produce(1);
  }
  expect(
    [...victim.owned].sort((a, b) => a - b),
    "no rebalance since",
  ).toEqual(victimParts);
  const atKill = await committed(OP);
  const end = ends();
  for (let p = 0; p < PARTITIONS; p++) {
    const held = [...uncommitted].filter((k) => k.startsWith(`${p}:`)).length;
    expect(atKill[p], `order-processing's committed offset of ${TOPIC}-${p}: its end less the victim's uncommitted records`).toBe(
      end[p]! - held,
    );
  }

  // 3. SIGKILL the victim; the survivors take over from the committed offsets. --------------
  const mark = survivors.map((m) => m.lines.length);
  victim.proc.kill("SIGKILL");
  expect((await victim.exited).signal).toBe("SIGKILL");
  const takeoverMs = await until(
    "the survivors own all 6 partitions, 3 each",
    () => split(survivors, 3),
    SESSION_TIMEOUT_MS + 10_000,
    diag,
  );
  await produce(30);
  await until(
    "order-processing processed everything again and committed to the end",
    async () => settled(op) && (await committed(OP)).every((c, p) => c === ends()[p]),
    30_000,
    diag,
  );
  await until(
    "analytics processed everything and committed to the end",
    async () => settled(an) && (await committed(AN)).every((c, p) => c === ends()[p]),
    30_000,
    diag,
  );
  for (const p of victimParts.filter((q) => atKill[q]! < ends()[q]!)) {
    const after = survivors.flatMap((m, i) => m.lines.slice(mark[i]).filter((l) => l.type === "record" && l.partition === p));
    expect(after[0]?.offset, `the new owner of ${TOPIC}-${p} started at the committed offset`).toBe(atKill[p]);
  }

  // The end: every member leaves cleanly.
  for (const m of [...survivors, ...an]) m.proc.kill("SIGTERM");
  for (const m of [...survivors, ...an]) {
    const { code } = await m.exited;
    expect(code, `${m.name} exits 0 after SIGTERM: ${m.stderr.join("")}`).toBe(0);
    expect(m.lines.at(-1)?.type, `${m.name} printed "closed" last`).toBe("closed");
  }
  expect(await committed(OP)).toEqual(ends());
  expect(await committed(AN)).toEqual(ends());

  await expectBadInput(bin, address);

  const problems = [...checkGroup(OP, op, produced, uncommitted), ...checkGroup(AN, an, produced, new Set())];
  expect(problems).toEqual([]);
  return { produced: produced.length, victimPartitions: victimParts, duplicates: uncommitted.size, takeoverMs };
}

/** Bad input: a clear error on stderr, a non-zero exit, nothing printed on stdout. */
async function expectBadInput(bin: string, address: string): Promise<void> {
  const cases: Array<{ args: string[]; stderr: RegExp }> = [
    { args: ["consume", "--addr", address, "--commit-every", "0"], stderr: /commit-every 0: must be 1 to 500/ },
    { args: ["consume", "--addr", address, "--from", "middle"], stderr: /from "?middle"?: must be earliest or latest/ },
    { args: ["consume", "--addr", address, "--topic", "no-such-topic", "--group", "g"], stderr: /no-such-topic/ },
    { args: ["produce", "--addr", address, "--count", "x"], stderr: /count/ },
  ];
  for (const c of cases) {
    const r = await run(bin, c.args, { cwd: ROOT, timeoutMs: 20_000 });
    expect(r.code, `${c.args.join(" ")}: exit ${r.code}, stderr ${r.stderr}`).not.toBe(0);
    expect(r.stderr, c.args.join(" ")).toMatch(c.stderr);
    expect(r.stdout, c.args.join(" ")).toBe("");
  }
}
