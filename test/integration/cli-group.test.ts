/**
 * `rill consume --group` and `rill group list|describe|reset-offsets|delete` (bin/rill, under
 * the package's Bun) against a real broker on 127.0.0.1: consuming in a group commits what was
 * printed (a second run continues after it), two consumers split a topic, describe shows members,
 * committed offsets, log end offsets and lag (table and --json), reset-offsets moves offsets only
 * while the group is empty (--dry-run commits nothing), delete removes the group; errors are one
 * `rill: ...` line and exit 1.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(".");
const RILL = path.join(ROOT, "bin/rill");

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let dir: string;
let broker: Broker;
let bootstrap: string;
let groupAdmin: GroupAdmin;

function spawnRill(args: readonly string[]): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, RILL_BOOTSTRAP: bootstrap };
  delete env["RILL_RUNTIME"];
  return spawn(RILL, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
}

function rill(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const proc = spawnRill(args);
    let stdout = "";
    let stderr = "";
    proc.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    proc.stdin!.end();
  });
}

function expectOneErrorLine(r: Result, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^rill: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

async function until(pred: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Produces `n` records "KEY\tVALUE" with keys k0..k(n-1) to `topic`; returns their offsets per partition. */
async function produce(topic: string, n: number, from = 0): Promise<number[]> {
  const p = new Producer({ bootstrap });
  const sent = await Promise.all(Array.from({ length: n }, (_, i) => p.send({ topic, key: `k${from + i}`, value: `v${from + i}` })));
  await p.close();
  return sent.map((s) => s.partition);
}

beforeAll(async () => {
  dir = tmpDir("rill-cli-group-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  bootstrap = broker.address;
  const admin = new Admin({ bootstrap });
  await admin.createTopics([
    { name: "events", partitions: 3 },
    { name: "split", partitions: 4 },
  ]);
  await admin.close();
  groupAdmin = new GroupAdmin({ bootstrap });
});

afterAll(async () => {
  await groupAdmin?.close();
  await broker?.close();
  rmTmp(dir);
});

describe("rill consume --group", () => {
  it("-e reads every assigned partition to its end and exits: run again it prints nothing and exits; several topics by --regex", async () => {
    const admin = new Admin({ bootstrap });
    await admin.createTopics([
      { name: "ends-a", partitions: 3 },
      { name: "ends-b", partitions: 1 },
    ]);
    await admin.close();
    await produce("ends-a", 9);
    const args = ["consume", "ends-a", "--group", "enders", "--from-beginning", "-e", "-f", "%k\\n"];
    const first = await rill(args);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trimEnd().split("\n").sort()).toEqual(Array.from({ length: 9 }, (_, i) => `k${i}`).sort());
    // Everything is committed: the same command ends at once (it waited for new records before -e).
    expect(await rill(args)).toMatchObject({ code: 0, stdout: "" });
    await produce("ends-a", 2, 9);
    expect((await rill(args)).stdout.trimEnd().split("\n").sort()).toEqual(["k10", "k9"]);
    // Two topics by a pattern, one group: every record of both.
    await produce("ends-b", 3, 100);
    const both = await rill(["consume", "ends-.*", "--regex", "--group", "both", "--from-beginning", "-e", "-f", "%t %k\\n"]);
    expect(both.code, both.stderr).toBe(0);
    const lines = both.stdout.trimEnd().split("\n");
    expect(lines.filter((l) => l.startsWith("ends-a ")).length).toBe(11);
    expect(lines.filter((l) => l.startsWith("ends-b ")).sort()).toEqual(["ends-b k100", "ends-b k101", "ends-b k102"]);
  });

  it("commits what it printed: a second run continues after it, and nothing is printed twice", async () => {
    await produce("events", 30);
    const first = await rill(["consume", "events", "--group", "readers", "--from-beginning", "-n", "12", "--format", "json"]);
    expect(first.code, first.stderr).toBe(0);
    const a = first.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { partition: number; offset: number; key: string; value: string });
    expect(a).toHaveLength(12);
    // The group's committed offsets are exactly one past what was printed, per partition.
    const printed = new Map<number, number>();
    for (const r of a) printed.set(r.partition, Math.max(printed.get(r.partition) ?? 0, r.offset + 1));
    const committed = new Map((await groupAdmin.fetchOffsets("readers")).map((o) => [o.partition, o.offset]));
    expect(committed).toEqual(printed);

    // --from-beginning only applies to partitions without a committed offset (as in Kafka).
    const second = await rill(["consume", "events", "--group", "readers", "--from-beginning", "--format", "json", "--timeout-ms", "1500"]);
    expect(second.code, second.stderr).toBe(0);
    const b = second.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { partition: number; offset: number });
    const seen = [...a, ...b].map((r) => `${r.partition}:${r.offset}`);
    expect(new Set(seen).size, "no record printed twice").toBe(seen.length);
    expect(seen).toHaveLength(30);
    const all = await groupAdmin.describeGroups(["readers"]);
    expect(all[0]!.offsets.map((o) => o.lag)).toEqual([0, 0, 0]);
  });

  it("two consumers in one group split the partitions; text format with --print-key", async () => {
    // Both join before anything is produced: a rebalance while records are being printed would
    // deliver the revoked partitions' uncommitted records again (at-least-once).
    const procs = [0, 1].map(() => spawnRill(["consume", "split", "--group", "splitters", "--from-beginning", "--print-key"]));
    const outs = procs.map(() => ({ text: "" }));
    procs.forEach((p, i) => p.stdout!.on("data", (d: Buffer) => (outs[i]!.text += d.toString())));
    const exited = procs.map((p) => new Promise<number | null>((r) => p.on("close", (code) => r(code))));
    const described0 = async () => (await groupAdmin.describeGroups(["splitters"]).catch(() => [undefined]))[0];
    await until(async () => {
      const d = await described0();
      return (
        d !== undefined &&
        d.state === "stable" &&
        d.members.length === 2 &&
        d.members.every((m) => m.assignment.flatMap((t) => t.partitions).length === 2)
      );
    });
    await produce("split", 40);
    await until(async () => {
      const d = await described0();
      return d !== undefined && d.offsets.length === 4 && d.offsets.every((o) => o.lag === 0 && o.committedOffset > 0);
    });
    // describe while both are members: one row per partition with its owner, then the members.
    const described = await rill(["group", "describe", "splitters"]);
    expect(described.code, described.stderr).toBe(0);
    const lines = described.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^Group: splitters\tState: stable\tMembers: 2\t/);
    expect(lines[2]).toMatch(/^TOPIC\s+PARTITION\s+COMMITTED-OFFSET\s+LOG-END-OFFSET\s+LAG\s+MEMBER-ID\s+CLIENT-ID\s+HOST$/);
    const rows = lines.slice(3, 7).map((l) => l.split(/\s+/));
    expect(rows.map((r) => r.slice(0, 2))).toEqual([0, 1, 2, 3].map((p) => ["split", String(p)]));
    for (const r of rows) {
      expect(r[2]).toBe(r[3]); // committed = log end
      expect(r[4]).toBe("0");
      expect(r[6]).toBe("rill-cli");
    }
    expect(new Set(rows.map((r) => r[5])).size, "two owners").toBe(2);
    expect(lines[8]).toMatch(/^MEMBER-ID\s+INSTANCE-ID\s+CLIENT-ID\s+HOST\s+EPOCH\s+TOPICS\s+ASSIGNMENT\s+TARGET$/);
    expect(lines.slice(9)).toHaveLength(2);

    // reset-offsets and delete are refused while members are active.
    expectOneErrorLine(
      await rill(["group", "reset-offsets", "splitters", "--topic", "split", "--to-earliest", "--execute"]),
      /has 2 members/,
    );
    expectOneErrorLine(await rill(["group", "delete", "splitters"]), /has 2 members/);

    for (const p of procs) p.kill("SIGINT");
    expect(await Promise.all(exited)).toEqual([0, 0]);
    const got = outs.flatMap((o) => o.text.trim().split("\n"));
    expect(got.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `k${i}\tv${i}`).sort());
    expect(
      outs.every((o) => o.text.length > 0),
      "both printed records",
    ).toBe(true);
    await until(async () => (await groupAdmin.listGroups()).find((g) => g.groupId === "splitters")?.members === 0);
  }, 40_000);

  it("refuses --offset, --timestamp and --partition with --group; an unknown topic is one error line", async () => {
    for (const extra of [
      ["--offset", "3"],
      ["--timestamp", "5"],
      ["--partition", "0"],
    ]) {
      expectOneErrorLine(
        await rill(["consume", "events", "--group", "x", ...extra]),
        new RegExp(`${extra[0]} cannot be used with --group`),
      );
    }
    expectOneErrorLine(await rill(["consume", "ghost", "--group", "x", "-n", "1"]), /topic "ghost" does not exist/);
  });
});

describe("rill group", () => {
  it("list: a table of groups with state and members; --json", async () => {
    const r = await rill(["group", "list"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^GROUP\s+STATE\s+MEMBERS$/);
    expect(lines.find((l) => l.startsWith("readers "))).toMatch(/^readers\s+empty\s+0$/);
    const json = await rill(["group", "list", "--json"]);
    expect(JSON.parse(json.stdout)).toContainEqual({ groupId: "readers", state: "empty", members: 0 });
  });

  it("describe --json gives committed offsets, log end offsets and lag", async () => {
    const r = await rill(["group", "describe", "readers", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as {
      groupId: string;
      state: string;
      members: unknown[];
      offsets: Array<{ topic: string; partition: number; committedOffset: number; logEndOffset: number; lag: number }>;
    };
    expect(d).toMatchObject({ groupId: "readers", state: "empty", members: [] });
    expect(d.offsets.map((o) => [o.topic, o.partition])).toEqual([
      ["events", 0],
      ["events", 1],
      ["events", 2],
    ]);
    for (const o of d.offsets) expect(o.lag).toBe(o.logEndOffset - o.committedOffset);
  });

  it("reset-offsets previews unless --execute (as Kafka's tool); --to-earliest, --to-offset (one partition), --to-timestamp, --to-latest move the offsets and the lag", async () => {
    const before = await groupAdmin.fetchOffsets("readers");
    // Without --execute (or with --dry-run, the same): the new offsets, nothing committed.
    for (const extra of [[], ["--dry-run"]]) {
      const dry = await rill(["group", "reset-offsets", "readers", "--topic", "events", "--to-earliest", ...extra]);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/preview, nothing committed; add --execute to commit/);
      expect(dry.stdout.trimEnd().split("\n").slice(1)).toEqual([
        expect.stringMatching(/^TOPIC\s+PARTITION\s+NEW-OFFSET$/),
        expect.stringMatching(/^events\s+0\s+0$/),
        expect.stringMatching(/^events\s+1\s+0$/),
        expect.stringMatching(/^events\s+2\s+0$/),
      ]);
      expect(await groupAdmin.fetchOffsets("readers")).toEqual(before);
    }
    const preview = await rill(["group", "reset-offsets", "readers", "--topic", "events", "--to-earliest", "--json"]);
    expect(JSON.parse(preview.stdout)).toMatchObject({ groupId: "readers", dryRun: true });
    // --to-datetime takes a duration before now (or an ISO date): every record is younger than an hour.
    const hourAgo = await rill(["group", "reset-offsets", "readers", "--topic", "events", "--to-datetime", "-1h", "--json"]);
    expect((JSON.parse(hourAgo.stdout) as { offsets: { offset: number }[] }).offsets.map((o) => o.offset)).toEqual([0, 0, 0]);
    expect(await groupAdmin.fetchOffsets("readers")).toEqual(before);
    expectOneErrorLine(
      await rill(["group", "reset-offsets", "readers", "--topic", "events", "--to-earliest", "--dry-run", "--execute"]),
      /--execute or --dry-run, not both/,
    );

    expect((await rill(["group", "reset-offsets", "readers", "--topic", "events", "--to-earliest", "--execute"])).code).toBe(0);
    expect((await groupAdmin.fetchOffsets("readers")).map((o) => o.offset)).toEqual([0, 0, 0]);
    const [d0] = await groupAdmin.describeGroups(["readers"]);
    expect(d0!.offsets.map((o) => o.lag)).toEqual(d0!.offsets.map((o) => o.logEndOffset));

    const one = await rill([
      "group",
      "reset-offsets",
      "readers",
      "--topic",
      "events",
      "--partition",
      "1",
      "--to-offset",
      "2",
      "--json",
      "--execute",
    ]);
    expect(JSON.parse(one.stdout)).toEqual({ groupId: "readers", dryRun: false, offsets: [{ topic: "events", partition: 1, offset: 2 }] });
    expect((await groupAdmin.fetchOffsets("readers")).map((o) => o.offset)).toEqual([0, 2, 0]);

    // Records produced now are the only ones at or after this timestamp.
    await new Promise((r) => setTimeout(r, 5));
    const ts = Date.now();
    const partitions = await produce("events", 6, 100);
    const ends = (await groupAdmin.describeGroups(["readers"]))[0]!.offsets.map((o) => o.logEndOffset);
    const byTs = await rill([
      "group",
      "reset-offsets",
      "readers",
      "--topic",
      "events",
      "--to-timestamp",
      String(ts),
      "--json",
      "--execute",
    ]);
    const tsOffsets = (JSON.parse(byTs.stdout) as { offsets: Array<{ partition: number; offset: number }> }).offsets;
    for (const o of tsOffsets) {
      const fresh = partitions.filter((p) => p === o.partition).length;
      expect(o.offset, `partition ${o.partition}: first of the ${fresh} new records`).toBe(ends[o.partition]! - fresh);
    }
    const latest = await rill(["group", "reset-offsets", "readers", "--topic", "events", "--to-latest", "--execute"]);
    expect(latest.code, latest.stderr).toBe(0);
    const [d1] = await groupAdmin.describeGroups(["readers"]);
    expect(d1!.offsets.map((o) => o.lag)).toEqual([0, 0, 0]);
  });

  it("reset-offsets needs exactly one target; unknown group ids and topics are one error line", async () => {
    expectOneErrorLine(await rill(["group", "reset-offsets", "readers", "--topic", "events"]), /exactly one of --to-earliest/);
    expectOneErrorLine(
      await rill(["group", "reset-offsets", "readers", "--topic", "events", "--to-earliest", "--to-latest"]),
      /exactly one of/,
    );
    expectOneErrorLine(await rill(["group", "reset-offsets", "readers", "--topic", "ghost", "--to-earliest"]), /ghost/);
    expectOneErrorLine(await rill(["group", "describe", "nobody"]), /nobody.*does not exist|not found/i);
    expectOneErrorLine(await rill(["group", "describe", "x".repeat(250)]), /group id has 250 characters/);
    const usage = await rill(["group", "reset-offsets", "readers", "--to-earliest"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^rill: required option '--topic <topic>' not specified/);
  });

  it("delete: removes an empty group and its offsets; deleting it again is an error", async () => {
    const r = await rill(["group", "delete", "readers"]);
    expect(r).toMatchObject({ code: 0, stdout: "Deleted group readers.\n" });
    expect((await groupAdmin.listGroups()).map((g) => g.groupId)).not.toContain("readers");
    expect(await groupAdmin.fetchOffsets("readers")).toEqual([]);
    expectOneErrorLine(await rill(["group", "delete", "readers"]), /readers.*does not exist|not found/i);
    expect(JSON.parse((await rill(["group", "delete", "enders", "--json"])).stdout)).toEqual({ deleted: "enders" });
  });

  it("a broker that is not running: one line", async () => {
    const r = await new Promise<Result>((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, RILL_BOOTSTRAP: "127.0.0.1:1" };
      delete env["RILL_RUNTIME"];
      const proc = spawn(RILL, ["group", "list"], { cwd: ROOT, env });
      let stdout = "";
      let stderr = "";
      proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      proc.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    expectOneErrorLine(r, /cannot reach broker at 127\.0\.0\.1:1: connection refused/);
  });
});
