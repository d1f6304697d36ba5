/**
 * `rill cluster start` and `rill cluster status` as users run them (bin/rill, under the package's
 * Bun), on 127.0.0.1 only, with temporary data folders:
 * - the launcher starts 3 nodes, they form a quorum with 3 unfenced brokers, the status table
 *   shows every node, a topic created through node 2 is described through node 3, a node killed
 *   with SIGKILL is reported while the others keep running and `cluster restart 3` brings it
 *   back, and SIGTERM to the launcher stops every child (none left running);
 * - with one voter of three not running, `cluster status` shows it as unreachable and still
 *   exits 0; asked of the stopped node itself, it fails with one error line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";
import { freePortRun } from "./cluster-harness.ts";

const ROOT = path.resolve(".");
const RILL = path.join(ROOT, "bin/rill");

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A process this file started, with its output so far. */
interface Proc {
  readonly proc: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exited: Promise<number | null>;
}

/** `cluster status --json`, as far as these tests read it. */
interface StatusJson {
  clusterId: string;
  controllerId: number;
  brokers: { nodeId: number; fenced: boolean }[];
  voters: { nodeId: number; address: string }[];
  node: { nodeId: number } | null;
  nodes: {
    nodeId: number;
    address: string;
    roles: string[];
    voter: boolean;
    fenced: boolean | null;
    reachable: boolean;
    error: string | null;
    brokerState: string | null;
    raftRole: string | null;
    raftTerm: number | null;
    metadataOffset: number | null;
  }[];
}

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e["RILL_RUNTIME"];
  delete e["RILL_BOOTSTRAP"];
  return e;
}

const started: Proc[] = [];
const childPids: number[] = [];
const dirs: string[] = [];

/** Starts `bin/rill args` in the background. */
function start(args: readonly string[]): Proc {
  const proc = spawn(RILL, args, { cwd: ROOT, env: env(), stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  proc.stdout!.on("data", (d: Buffer) => (out.stdout += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  const p = { proc, out, exited };
  started.push(p);
  return p;
}

/** Runs `bin/rill args` to completion (killed after `timeoutMs`). */
async function rill(args: readonly string[], timeoutMs = 20_000): Promise<Result> {
  const p = start(args);
  const timer = setTimeout(() => p.proc.kill("SIGKILL"), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, ...p.out };
}

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Waits for `f` to answer a value (not undefined), asking every 250 ms until `timeoutMs`. */
async function until<T>(what: string, timeoutMs: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function status(bootstrap: string): Promise<StatusJson | undefined> {
  const r = await rill(["cluster", "status", "--json", "--bootstrap", bootstrap]);
  return r.code === 0 ? (JSON.parse(r.stdout) as StatusJson) : undefined;
}

afterEach(async () => {
  // Whatever a failed test left behind: the processes it started, by pid, then their folders.
  for (const p of started.splice(0)) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill("SIGKILL");
  for (const pid of childPids.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  for (const d of dirs.splice(0)) rmTmp(d);
});

describe("rill cluster start", () => {
  it("starts 3 nodes that form a cluster, serves topics through any node, and stops them all on SIGTERM", async () => {
    const dir = tmpDir("rill-cluster-");
    dirs.push(dir);
    const base = await freePortRun(13); // client ports base.., internal ports base+10..
    const addr = (id: number): string => `127.0.0.1:${base + id - 1}`;
    const internalAddr = (id: number): string => `127.0.0.1:${base + 10 + id - 1}`;
    const launcher = start([
      "cluster",
      "start",
      "--nodes",
      "3",
      "--data-dir",
      path.join(dir, "c"),
      "--base-port",
      String(base),
      "--kafka-base-port",
      "0",
      "--set",
      "broker.session.timeout.ms=6000",
    ]);

    // The banner: one line per node with its address and pid, and the status command.
    const pids = await until("the launcher's banner", 15_000, async () => {
      const found = [...launcher.out.stdout.matchAll(/^ {2}node (\d) {2}(\S+) {2}http:\/\/\S+ {2}pid (\d+) {2}(\S+)$/gm)];
      return found.length === 3 ? found : undefined;
    });
    expect(pids.map((m) => [Number(m[1]), m[2], m[4]])).toEqual([1, 2, 3].map((id) => [id, addr(id), path.join(dir, "c", `node-${id}`)]));
    childPids.push(...pids.map((m) => Number(m[3])));
    expect(launcher.out.stdout).toContain(`cluster status --bootstrap ${addr(1)}`);

    // Ready: an active controller and 3 unfenced brokers, every node answering for itself.
    const s = await until("3 unfenced brokers and an active controller", 60_000, async () => {
      const j = await status(addr(1));
      const ready =
        j &&
        j.controllerId > 0 &&
        j.brokers.filter((b) => !b.fenced).length === 3 &&
        j.nodes.every((n) => n.reachable && n.brokerState === "running");
      return ready ? j : undefined;
    });
    // The quorum names the voters' internal listeners, where members call each other.
    expect(s.voters).toEqual([1, 2, 3].map((id) => ({ nodeId: id, address: internalAddr(id) })));
    expect(s.nodes.map((n) => [n.nodeId, n.address, n.roles, n.voter, n.fenced])).toEqual(
      [1, 2, 3].map((id) => [id, addr(id), ["broker", "controller"], true, false]),
    );
    await until("the ready line", 10_000, async () => (launcher.out.stdout.includes("Cluster ready in ") ? true : undefined));
    expect(launcher.out.stdout).toMatch(/^\[node [123]\] \{.*"msg":"broker started"/m);

    // The table, asked of node 2: every node with its state, Raft role and term, metadata offset.
    const text = await rill(["cluster", "status", "--bootstrap", addr(2)]);
    expect(text).toMatchObject({ code: 0, stderr: "" });
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`Cluster: ${s.clusterId}`);
    const controller = /^Controller: (\d) \((\S+)\)$/.exec(lines[1]!);
    expect(controller).not.toBeNull();
    expect(controller![2]).toBe(addr(Number(controller![1])));
    expect(lines[3]!.split(/\s+/)).toEqual(["NODE", "ADDRESS", "ROLES", "STATE", "FENCED", "RAFT-ROLE", "TERM", "METADATA-OFFSET"]);
    const rows = lines.slice(4).map((l) => l.split(/\s+/));
    expect(rows).toHaveLength(3);
    rows.forEach((r, i) => {
      expect(r.slice(0, 5)).toEqual([String(i + 1), addr(i + 1), "broker,controller", "running", "no"]);
      expect(r[5]).toBe(r[0] === controller![1] ? "leader" : "follower");
      expect(Number(r[6])).toBeGreaterThanOrEqual(1);
      expect(Number(r[7])).toBeGreaterThanOrEqual(0);
    });

    // A topic created through node 2 is described through node 3.
    const created = await rill(["topic", "create", "orders", "--partitions", "3", "--replication-factor", "3", "--bootstrap", addr(2)]);
    expect(created).toMatchObject({ code: 0, stdout: "Created topic orders (3 partitions, replication factor 3).\n", stderr: "" });
    const described = await until("node 3 to know the topic", 15_000, async () => {
      const r = await rill(["topic", "describe", "orders", "--json", "--bootstrap", addr(3)]);
      return r.code === 0 ? (JSON.parse(r.stdout) as { partitions: { leader: number; replicas: number[]; isr: number[] }[] }) : undefined;
    });
    expect(described.partitions).toHaveLength(3);
    for (const p of described.partitions) {
      expect([...p.replicas].sort()).toEqual([1, 2, 3]);
      expect(p.replicas).toContain(p.leader);
    }

    // A node that dies is reported and the others keep running; `cluster restart N`, from another
    // terminal, starts it again with its data (the failover the README shows).
    const dataDir = path.join(dir, "c");
    process.kill(Number(pids[2]![3]), "SIGKILL");
    const report = await until("the launcher to report node 3's end", 15_000, async () => {
      const m =
        /^Node 3 \(127\.0\.0\.1:\d+, pid \d+\) was killed by SIGKILL; 2 of 3 nodes still running\. Restart it: \S+ cluster restart 3 --data-dir (\S+)$/m.exec(
          launcher.out.stdout,
        );
      return m ?? undefined;
    });
    expect(report[1]).toBe(dataDir);
    expect(launcher.proc.exitCode).toBeNull();
    expect((await rill(["topic", "describe", "orders", "--bootstrap", addr(1)])).code).toBe(0);
    const again = await rill(["cluster", "start", "--data-dir", dataDir, "--base-port", String(base)]);
    expect(again).toMatchObject({ code: 1, stdout: "" });
    expect(again.stderr).toMatch(/^rill: cluster start: a launcher already runs with .* \(it answers on .*launcher\.sock\)\n$/);
    const restarted = await rill(["cluster", "restart", "3", "--data-dir", dataDir]);
    expect(restarted).toMatchObject({ code: 0, stderr: "" });
    const newPid = /^Node 3 was not running; restarted as pid (\d+)\.\n$/.exec(restarted.stdout);
    expect(newPid, restarted.stdout).not.toBeNull();
    childPids.push(Number(newPid![1]));
    expect(launcher.out.stdout).toContain(`Node 3 was not running; restarted: ${addr(3)}, pid ${newPid![1]}\n`);
    await until("node 3 back: running and unfenced", 60_000, async () => {
      const j = await status(addr(1));
      return j?.nodes.every((n) => n.reachable && n.brokerState === "running") && j.brokers.every((b) => !b.fenced) ? j : undefined;
    });
    const bad = await rill(["cluster", "restart", "7", "--data-dir", dataDir]);
    expect(bad).toMatchObject({ code: 1, stderr: "rill: cluster restart 7: no node 7: the nodes are 1..3\n" });

    // `cluster stop 2` stops node 2 cleanly and keeps it stopped: not a failure when the launcher stops.
    const stopped = await rill(["cluster", "stop", "2", "--data-dir", dataDir]);
    expect(stopped).toMatchObject({ code: 0, stdout: "Node 2 stopped (exit code 0).\n", stderr: "" });
    expect(launcher.out.stdout).toContain(`Node 2 stopped (exit code 0) on request; restart it: `);

    // SIGTERM to the launcher stops every node; none is left running.
    launcher.proc.kill("SIGTERM");
    const code = await Promise.race([launcher.exited, new Promise((r) => setTimeout(() => r("timeout"), 45_000))]);
    expect(code, launcher.out.stderr).toBe(0);
    expect(launcher.out.stdout).toContain("Stopping 2 nodes...\n");
    expect(launcher.out.stdout.trimEnd().endsWith("Cluster stopped.")).toBe(true);
    for (const [, id, , pid] of pids) expect(alive(Number(pid)), `node ${id} (pid ${pid})`).toBe(false);
    expect(alive(Number(newPid![1])), "node 3 restarted").toBe(false);
    expect(nodeFs.existsSync(path.join(dataDir, "launcher.sock"))).toBe(false);
    expect(launcher.out.stdout.match(/"msg":"broker stopped"/g)).toHaveLength(3);
  }, 150_000);

  it("refuses --set of a key it sets for each node, before starting anything", async () => {
    const dir = tmpDir("rill-cluster-");
    dirs.push(dir);
    const r = await rill(["cluster", "start", "--data-dir", dir, "--set", "listen=127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("rill: --set listen: cluster start sets it for each node\n");
    expect(r.stdout).toBe("");
  });
});

describe("rill cluster status with a node down", () => {
  it("shows the node as unreachable and exits 0; asked of that node, fails in one line", async () => {
    const dir = tmpDir("rill-cluster-");
    dirs.push(dir);
    const base = await freePortRun(3);
    const addr = (id: number): string => `127.0.0.1:${base + id - 1}`;
    const quorum = [1, 2, 3].map((id) => `${id}@${addr(id)}`).join(",");
    const secretFile = path.join(dir, "cluster.secret");
    nodeFs.writeFileSync(secretFile, "status-test-secret-0123456789\n", { mode: 0o600 });
    // Two voters of three: a majority, so a controller is elected; node 3 never starts.
    const brokers = [1, 2].map((id) =>
      start([
        "broker",
        "start",
        "--node-id",
        String(id),
        "--listen",
        addr(id),
        "--data-dir",
        path.join(dir, `node-${id}`),
        "--controller-quorum",
        quorum,
        "--set",
        `cluster.secret.file=${secretFile}`,
      ]),
    );

    const s = await until("an active controller and 2 unfenced brokers", 60_000, async () => {
      const j = await status(addr(1));
      return j && j.controllerId > 0 && j.brokers.filter((b) => !b.fenced).length === 2 ? j : undefined;
    });
    expect(s.nodes.map((n) => [n.nodeId, n.reachable])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    const down = s.nodes[2]!;
    expect(down).toMatchObject({
      address: addr(3),
      voter: true,
      fenced: null,
      brokerState: null,
      raftRole: null,
      raftTerm: null,
      metadataOffset: null,
    });
    expect(down.error).toBe(`cannot reach broker at ${addr(3)}: connection refused`);

    const text = await rill(["cluster", "status", "--bootstrap", addr(2)]);
    expect(text).toMatchObject({ code: 0, stderr: "" });
    const lines = text.stdout.trimEnd().split("\n");
    const row3 = lines.find((l) => l.startsWith("3 "))!.split(/\s+/);
    expect(row3).toEqual(["3", addr(3), "controller", "unreachable", "-", "-", "-", "-"]);
    for (const id of [1, 2])
      expect(
        lines
          .find((l) => l.startsWith(`${id} `))!
          .split(/\s+/)
          .slice(3, 5),
      ).toEqual(["running", "no"]);
    expect(lines.at(-1)).toBe(`Node 3 unreachable: cannot reach broker at ${addr(3)}: connection refused`);

    const refused = await rill(["cluster", "status", "--bootstrap", addr(3)]);
    expect(refused).toMatchObject({ code: 1, stdout: "", stderr: `rill: cannot reach broker at ${addr(3)}: connection refused\n` });

    for (const b of brokers) b.proc.kill("SIGTERM");
    expect(await Promise.all(brokers.map((b) => b.exited))).toEqual([0, 0]);
  }, 120_000);
});
