/**
 * The seed's consumer-group story with real processes: a broker (`rill broker start`, a child
 * process) and consumer processes (group-consumer-proc.ts under bun, each a GroupConsumer that
 * prints one JSON line per record, assignment change and commit).
 *
 * 1. Topic `orders`, 6 partitions. Group `order-processing`: 3 consumers, each gets 2 partitions,
 *    disjoint. Group `analytics`: 2 consumers, 3 partitions each. Keyed records are produced
 *    (seeded keys) once both groups are stable.
 * 2. Every record is processed by order-processing and, independently, by analytics; each
 *    consumer commits after processing each record, except the victim (one order-processing
 *    consumer), whose commits trail by K records (NO_COMMIT_LAST=K).
 * 3. The victim is killed with SIGKILL: its partitions move to the two others within the session
 *    timeout; its K processed-but-uncommitted records are delivered again, its committed ones
 *    are not.
 * 4. More records; then the consumers leave (SIGTERM), the broker is restarted (SIGTERM, start
 *    on the same data dir): every committed offset survives (FetchOffsets, DescribeGroups), and
 *    a new consumer resumes exactly after the last commit.
 *
 * A checker (`check`) asserts over every consumer's output: no record lost (per group, every
 * produced record delivered, with its key and value), committed offsets never go backwards
 * (per process, and in FetchOffsets polled all along), and a record is delivered twice in a
 * group only where no commit covering it was made before the second delivery.
 *
 * Seeded: RILL_SEED=N replays the keys and K; the seed is printed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/base/random.ts";
import { Admin } from "../../src/client/admin.ts";
import { GroupAdmin, type GroupCommittedOffset, type GroupDescription } from "../../src/client/group-admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(".");
const BUN = path.join(ROOT, "node_modules/.bin/bun");
const PROC = path.join(ROOT, "test/integration/group-consumer-proc.ts");
const TOPIC = "orders";
const PARTITIONS = 6;
const OP = "order-processing";
const AN = "analytics";
const SESSION_TIMEOUT_MS = 6000;
const SEED = Number(process.env["RILL_SEED"] ?? Math.floor(Math.random() * 2 ** 31));

// ---------------------------------------------------------------------------------------------
// processes

interface BrokerProc {
  proc: ChildProcess;
  address: string;
  lines: string[];
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];

function startBroker(dataDir: string, listen = "127.0.0.1:0"): Promise<BrokerProc> {
  const proc = spawn(BUN, ["src/cli/main.ts", "broker", "start", "--data-dir", dataDir, "--listen", listen], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "broker started" within 30 s:\n${lines.join("\n")}`)), 30_000);
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.includes('"broker started"')) {
          clearTimeout(timer);
          resolve({ proc, address: (JSON.parse(line) as { address: string }).address, lines, exited });
        }
      }
    });
    proc.stderr!.on("data", (d: Buffer) => lines.push(d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before serving:\n${lines.join("\n")}`));
    });
  });
}

interface Line {
  type: string;
  name: string;
  t: number;
  topic?: string;
  partition?: number;
  offset?: number;
  key?: string | null;
  value?: string | null;
  partitions?: Array<{ topic: string; partition: number }>;
  error?: string;
}

class ConsumerProc {
  readonly proc: ChildProcess;
  readonly lines: Line[] = [];
  readonly owned = new Set<number>();
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buf = "";

  constructor(
    readonly name: string,
    readonly group: string,
    address: string,
    extraEnv: Record<string, string> = {},
  ) {
    this.proc = spawn(BUN, [PROC], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        RILL_BOOTSTRAP: address,
        GROUP: group,
        TOPICS: TOPIC,
        NAME: name,
        SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
        ...extraEnv,
      },
    });
    children.push(this.proc);
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve({ code, signal })));
    this.proc.stdout!.on("data", (d: Buffer) => {
      this.buf += d.toString();
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const text = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const line = JSON.parse(text) as Line;
        this.lines.push(line);
        if (line.type === "assigned") for (const p of line.partitions!) this.owned.add(p.partition);
        if (line.type === "revoked") for (const p of line.partitions!) this.owned.delete(p.partition);
      }
    });
    this.proc.stderr!.on("data", (d: Buffer) => this.stderr.push(d.toString()));
  }

  of(type: string): Line[] {
    return this.lines.filter((l) => l.type === type);
  }
}

async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 20_000, diag: () => string = () => ""): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------------------------
// produced records and the checker

interface Produced {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

const key = (p: number, o: number): string => `${p}:${o}`;

/** What the checker reads of a consumer process: its name and its output lines by type. */
interface ConsumerLog {
  readonly name: string;
  of(type: string): Line[];
}

/** A checker failure list for one group's consumers (all processes that were ever in it). */
function check(group: string, procs: readonly ConsumerLog[], produced: readonly Produced[]): string[] {
  const problems: string[] = [];
  const want = new Map(produced.map((r) => [key(r.partition, r.offset), r]));
  const deliveries = new Map<string, Line[]>();
  for (const pr of procs) {
    for (const l of pr.of("record")) {
      const k = key(l.partition!, l.offset!);
      const w = want.get(k);
      if (w === undefined) problems.push(`${group}: ${pr.name} got ${TOPIC}-${k}, which was never produced`);
      else if (w.key !== l.key || w.value !== l.value)
        problems.push(`${group}: ${pr.name} got ${TOPIC}-${k} = ${l.key}/${l.value}, produced ${w.key}/${w.value}`);
      deliveries.set(k, [...(deliveries.get(k) ?? []), l]);
    }
    // Per process: its confirmed commits of a partition never go backwards.
    const last = new Map<number, number>();
    for (const c of pr.of("committed")) {
      const prev = last.get(c.partition!) ?? -1;
      if (c.offset! < prev) problems.push(`${group}: ${pr.name} committed ${TOPIC}-${c.partition} at ${c.offset} after ${prev}`);
      last.set(c.partition!, c.offset!);
    }
  }
  // No record lost.
  for (const r of produced)
    if (!deliveries.has(key(r.partition, r.offset))) problems.push(`${group}: ${TOPIC}-${key(r.partition, r.offset)} was never delivered`);
  // Duplicates only where no commit covered the record before it came again.
  const commitsBy = new Map(procs.map((p) => [p.name, p.of("committed")]));
  for (const [k, ds] of deliveries) {
    if (ds.length < 2) continue;
    const [p, o] = k.split(":").map(Number) as [number, number];
    for (let i = 1; i < ds.length; i++) {
      for (const earlier of ds.slice(0, i)) {
        const covering = commitsBy.get(earlier.name)!.find((c) => c.partition === p && c.offset! > o && c.t < ds[i]!.t);
        if (covering) {
          problems.push(
            `${group}: ${TOPIC}-${k} delivered again to ${ds[i]!.name} at ${ds[i]!.t} although ${earlier.name} had committed offset ${covering.offset} at ${covering.t}`,
          );
        }
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------

const dirs: string[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmTmp(d);
});

describe("the checker", () => {
  const log = (name: string, lines: Array<Partial<Line> & { type: string; t: number }>): ConsumerLog => ({
    name,
    of: (type) => lines.filter((l) => l.type === type).map((l) => ({ name, ...l }) as Line),
  });
  const produced: Produced[] = [0, 1, 2].map((o) => ({ partition: 0, offset: o, key: `k${o}`, value: `v${o}` }));
  const rec = (o: number, t: number) => ({ type: "record", partition: 0, offset: o, key: `k${o}`, value: `v${o}`, t });
  const committed = (o: number, t: number) => ({ type: "committed", partition: 0, offset: o, t });

  it("passes a clean run, and a duplicate that was not committed before it came again", () => {
    const a = log("a", [rec(0, 1), committed(1, 2), rec(1, 3)]);
    const b = log("b", [rec(1, 10), rec(2, 11), committed(3, 12)]);
    expect(check("g", [a, b], produced)).toEqual([]);
  });

  it("finds a lost record, a changed record, a commit going backwards and a duplicate after a commit", () => {
    const a = log("a", [rec(0, 1), committed(1, 2), committed(0, 3), { ...rec(1, 4), value: "changed" }]);
    const b = log("b", [rec(0, 10)]);
    const problems = check("g", [a, b], produced);
    expect(problems.some((p) => /0:2 was never delivered/.test(p))).toBe(true);
    expect(problems.some((p) => /got orders-0:1 = k1\/changed/.test(p))).toBe(true);
    expect(problems.some((p) => /committed orders-0 at 0 after 1/.test(p))).toBe(true);
    expect(problems.some((p) => /0:0 delivered again to b .* although a had committed offset 1/.test(p))).toBe(true);
  });
});

describe("consumer groups, the seed's scenario, with broker and consumer processes", () => {
  it("splits, reads independently, survives a SIGKILLed consumer and a broker restart; the checker finds nothing", async () => {
    const random = new SeededRandom(SEED);
    const K = 3 + Math.floor(random.next() * 5);
    console.log(`groups scenario: seed ${SEED} (RILL_SEED=${SEED} replays it), victim holds back K=${K} commits`);
    const dir = tmpDir("rill-groups-");
    dirs.push(dir);
    let broker = await startBroker(dir);
    let address = broker.address;
    const admin = new Admin({ bootstrap: address });
    await admin.createTopics([{ name: TOPIC, partitions: PARTITIONS }]);
    await admin.close();

    // Committed offsets polled all along: they must never go backwards.
    const polled: Array<{ group: string; at: number; offsets: GroupCommittedOffset[] }> = [];
    let polling = true;
    let groupAdmin = new GroupAdmin({ bootstrap: address, retry: { retries: 0 } });
    const poller = (async () => {
      while (polling) {
        for (const group of [OP, AN]) {
          try {
            polled.push({ group, at: Date.now(), offsets: await groupAdmin.fetchOffsets(group) });
          } catch {
            // the broker is restarting
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    // 1. Both groups join; stable before anything is produced.
    const op = [1, 2, 3].map((i) => new ConsumerProc(`op-${i}`, OP, address, i === 3 ? { NO_COMMIT_LAST: String(K) } : {}));
    const an = [1, 2].map((i) => new ConsumerProc(`an-${i}`, AN, address));
    const victim = op[2]!;
    const diag = (): string =>
      [...op, ...an]
        .map((p) => `${p.name}: owns [${[...p.owned].sort()}], ${p.lines.length} lines, stderr ${p.stderr.join("").slice(0, 500)}`)
        .join("\n");
    const splitEvenly = (procs: readonly ConsumerProc[], each: number): boolean => {
      const all = procs.flatMap((p) => [...p.owned]);
      return procs.every((p) => p.owned.size === each) && new Set(all).size === PARTITIONS;
    };
    const stable = async (group: string, members: number): Promise<boolean> => {
      const [d] = await groupAdmin.describeGroups([group]);
      return d!.state === "stable" && d!.members.length === members;
    };
    await until(
      "3 order-processing consumers own 2 partitions each, 2 analytics consumers 3 each",
      async () => splitEvenly(op, 2) && splitEvenly(an, 3) && (await stable(OP, 3)) && (await stable(AN, 2)),
      30_000,
      diag,
    );
    const opSplit = op.map((p) => [...p.owned].sort());
    expect(new Set(opSplit.flat()).size).toBe(PARTITIONS); // disjoint
    const [described] = await groupAdmin.describeGroups([OP]);
    expect(described!.members.map((m) => m.assignment.flatMap((t) => t.partitions).length)).toEqual([2, 2, 2]);

    // 2. Keyed records (seeded keys: customers), routed by murmur2.
    const produced: Produced[] = [];
    const producer = new Producer({ bootstrap: address, lingerMs: 2 });
    let orderNo = 0;
    const produce = async (n: number): Promise<Produced[]> => {
      const batch = Array.from({ length: n }, () => {
        orderNo++;
        const customer = `customer-${Math.floor(random.next() * 40)}`;
        return { key: customer, value: JSON.stringify({ order: orderNo, customer, amount: Math.floor(random.next() * 10_000) }) };
      });
      const sent = await Promise.all(batch.map((r) => producer.send({ topic: TOPIC, key: r.key, value: r.value })));
      const out = sent.map((m, i) => ({ partition: m.partition, offset: m.offset, key: batch[i]!.key, value: batch[i]!.value }));
      produced.push(...out);
      return out;
    };
    await produce(300);
    const endOffsets = (): number[] => {
      const end = new Array<number>(PARTITIONS).fill(0);
      for (const r of produced) end[r.partition] = Math.max(end[r.partition]!, r.offset + 1);
      return end;
    };
    const seenIn = (procs: readonly ConsumerProc[]): Set<string> =>
      new Set(procs.flatMap((p) => p.of("record").map((l) => key(l.partition!, l.offset!))));
    const allSeen = (procs: readonly ConsumerProc[]): boolean => {
      const seen = seenIn(procs);
      return produced.every((r) => seen.has(key(r.partition, r.offset)));
    };
    const committedOf = async (group: string): Promise<Map<number, number>> =>
      new Map((await groupAdmin.fetchOffsets(group)).filter((o) => o.topic === TOPIC).map((o) => [o.partition, o.offset]));
    const victimParts = [...victim.owned];
    // Quiescent: everything delivered; the victim is exactly K commits behind, the others caught up.
    await until(
      "phase 1 processed and committed (the victim K behind)",
      async () => {
        if (!allSeen(op) || !allSeen(an)) return false;
        const c = await committedOf(OP);
        const end = endOffsets();
        let behind = 0;
        for (let p = 0; p < PARTITIONS; p++) {
          const gap = end[p]! - (c.get(p) ?? 0);
          if (victimParts.includes(p)) behind += gap;
          else if (gap !== 0) return false;
        }
        const a = await committedOf(AN);
        return behind === K && end.every((e, p) => a.get(p) === e);
      },
      30_000,
      diag,
    );

    // 3. SIGKILL the victim: its K processed, uncommitted records must come again; nothing it committed.
    const lastCommitted = new Map<number, number>();
    for (const c of victim.of("committed")) lastCommitted.set(c.partition!, c.offset!);
    const uncommitted = victim.of("record").filter((l) => l.offset! >= (lastCommitted.get(l.partition!) ?? 0));
    expect(uncommitted.length).toBe(K);
    const killedAt = Date.now();
    victim.proc.kill("SIGKILL");
    expect((await victim.exited).signal).toBe("SIGKILL");
    const survivors = op.slice(0, 2);
    const movedMs = await until(
      "the survivors own all 6 partitions, 3 each",
      () => splitEvenly(survivors, 3),
      SESSION_TIMEOUT_MS + 5000,
      diag,
    );
    console.log(
      `groups scenario: the victim's partitions [${victimParts.sort()}] moved ${movedMs} ms after SIGKILL (session timeout ${SESSION_TIMEOUT_MS} ms)`,
    );
    expect(Date.now() - killedAt).toBeLessThan(SESSION_TIMEOUT_MS + 5000);
    for (let i = 0; i < 2; i++)
      expect([...survivors[i]!.owned].filter((p) => opSplit[i]!.includes(p)).sort(), "sticky: a survivor keeps its partitions").toEqual(
        opSplit[i],
      );
    await until(
      "the victim's uncommitted records are delivered again",
      () => {
        const seen = seenIn(survivors);
        return uncommitted.every((l) => seen.has(key(l.partition!, l.offset!)));
      },
      15_000,
      diag,
    );
    const again = survivors
      .flatMap((p) => p.of("record"))
      .filter((l) => victimParts.includes(l.partition!) && l.offset! < (lastCommitted.get(l.partition!) ?? 0));
    expect(again, "records the victim committed are not delivered again").toEqual([]);

    // 4. More records, all processed; then everyone leaves and the broker restarts.
    await produce(120);
    let phase2 = "";
    await until(
      "phase 2 processed and committed by both groups",
      async () => {
        const end = endOffsets();
        const [c, a] = [await committedOf(OP), await committedOf(AN)];
        const unseen = (procs: readonly ConsumerProc[]) => {
          const seen = seenIn(procs);
          return produced.filter((r) => !seen.has(key(r.partition, r.offset))).map((r) => key(r.partition, r.offset));
        };
        phase2 = `end ${end}; ${OP} committed ${[...c].sort()} unseen ${unseen(op).slice(0, 20)}; ${AN} committed ${[...a].sort()} unseen ${unseen(an).slice(0, 20)}`;
        if (!allSeen(op) || !allSeen(an)) return false;
        return end.every((e, p) => c.get(p) === e && a.get(p) === e);
      },
      30_000,
      () => `${phase2}\n${diag()}`,
    );
    await producer.close();
    for (const p of [...survivors, ...an]) p.proc.kill("SIGTERM");
    for (const p of [...survivors, ...an]) expect((await p.exited).code, `${p.name} exits 0 after SIGTERM`).toBe(0);
    for (const p of [...survivors, ...an]) expect(p.of("closed").length).toBe(1);
    await until("both groups are empty", async () => {
      const groups = await groupAdmin.listGroups();
      return [OP, AN].every((g) => groups.find((x) => x.groupId === g)?.members === 0);
    });
    const before = {
      fetched: await Promise.all([OP, AN].map((g) => groupAdmin.fetchOffsets(g))),
      described: await groupAdmin.describeGroups([OP, AN]),
    };

    polling = false;
    await poller;
    await groupAdmin.close();
    broker.proc.kill("SIGTERM");
    expect(await broker.exited).toBe(0);
    broker = await startBroker(dir);
    address = broker.address;
    groupAdmin = new GroupAdmin({ bootstrap: address });
    polling = true;
    const poller2 = (async () => {
      while (polling) {
        for (const group of [OP, AN]) polled.push({ group, at: Date.now(), offsets: await groupAdmin.fetchOffsets(group) });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const after = {
      fetched: await Promise.all([OP, AN].map((g) => groupAdmin.fetchOffsets(g))),
      described: await groupAdmin.describeGroups([OP, AN]),
    };
    expect(after.fetched, "FetchOffsets after the restart").toEqual(before.fetched);
    const lagOf = (ds: GroupDescription[]) => ds.map((d) => ({ groupId: d.groupId, state: d.state, offsets: d.offsets }));
    expect(lagOf(after.described), "DescribeGroups after the restart").toEqual(lagOf(before.described));
    const end = endOffsets();
    for (const f of after.fetched) expect(f.map((o) => [o.partition, o.offset])).toEqual(end.map((e, p) => [p, e]));
    expect(after.described.flatMap((d) => d.offsets.map((o) => o.lag))).toEqual(new Array(2 * PARTITIONS).fill(0));

    // A new member resumes after the last commit: only records produced from now on.
    const late = new ConsumerProc("op-4", OP, address);
    await until(
      "op-4 owns all 6 partitions",
      () => late.owned.size === PARTITIONS,
      20_000,
      () => late.stderr.join(""),
    );
    const producer2 = new Producer({ bootstrap: address, lingerMs: 2 });
    const fresh: Produced[] = [];
    for (let i = 0; i < 30; i++) {
      orderNo++;
      const customer = `customer-${Math.floor(random.next() * 40)}`;
      const value = JSON.stringify({ order: orderNo, customer, amount: 1 });
      const m = await producer2.send({ topic: TOPIC, key: customer, value });
      fresh.push({ partition: m.partition, offset: m.offset, key: customer, value });
    }
    produced.push(...fresh);
    await producer2.close();
    await until(
      "op-4 processed the 30 new records",
      () => late.of("record").length >= 30,
      15_000,
      () => late.stderr.join(""),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(
      late
        .of("record")
        .map((l) => key(l.partition!, l.offset!))
        .sort(),
      "op-4 got exactly the new records",
    ).toEqual(fresh.map((r) => key(r.partition, r.offset)).sort());
    await until("op-4 committed them", async () => {
      const c = await committedOf(OP);
      return endOffsets().every((e, p) => c.get(p) === e);
    });
    late.proc.kill("SIGTERM");
    expect((await late.exited).code).toBe(0);
    polling = false;
    await poller2;
    await groupAdmin.close();

    // The checker.
    const problems = [
      ...check(OP, [...op, late], produced),
      ...check(
        AN,
        an,
        produced.filter((r) => !fresh.includes(r)),
      ),
    ];
    for (const group of [OP, AN]) {
      const last = new Map<number, number>();
      for (const s of polled.filter((x) => x.group === group)) {
        for (const o of s.offsets) {
          const prev = last.get(o.partition) ?? -1;
          if (o.offset < prev)
            problems.push(
              `${group}: committed offset of ${TOPIC}-${o.partition} went from ${prev} back to ${o.offset} (FetchOffsets at ${s.at})`,
            );
          last.set(o.partition, o.offset);
        }
      }
    }
    const dupes = (procs: readonly ConsumerProc[]): number => procs.flatMap((p) => p.of("record")).length - seenIn(procs).size;
    console.log(
      `groups scenario: ${produced.length} records; order-processing ${dupes([...op, late])} delivered twice (K=${K}), analytics ${dupes(an)}; ` +
        `${polled.length} FetchOffsets samples; problems: ${problems.length}`,
    );
    expect(problems).toEqual([]);
    expect(dupes(an), "analytics never lost a member: no record twice").toBe(0);
    expect(dupes([...op, late]), "order-processing: exactly the victim's K uncommitted records twice").toBe(K);
    broker.proc.kill("SIGTERM");
    expect(await broker.exited).toBe(0);
  }, 120_000);
});
