/**
 * `rill cluster start`: a local cluster of N nodes, each broker and controller (every node is a
 * voter of the controller quorum), node i listening on HOST:(BASE-PORT + i - 1) with its data in
 * `<data-dir>/node-<i>`. Each node is a child process `rill broker start` run by the same runtime
 * as this command (process.execPath and the CLI entry next to this file: Bun on src/, Node on
 * dist/, tsx, Deno). The children's log lines are copied to this command's stdout (their stderr
 * to its stderr), each prefixed with `[node <i>] `.
 *
 * The command prints the nodes (address, pid, data folder) and the status command, then — once
 * a controller is elected and every broker is unfenced — one "ready" line. SIGTERM or SIGINT is
 * forwarded to the children as SIGTERM and the command exits 0 once all stopped cleanly (a child
 * still running STOP_TIMEOUT_MS later is killed with SIGKILL and the command fails). A child
 * that ends while the cluster runs is reported (one line) and the others keep running, so a
 * failover can be watched; once every node has ended the command fails naming them. A node
 * that ended and was not restarted makes the final exit 1. A SIGKILL of this command leaves the
 * children running (their pids are printed).
 *
 * Control (`rill cluster restart N`, `rill cluster stop N`, from another terminal): the command
 * listens on a Unix socket `<data-dir>/launcher.sock` for one JSON line, `{"restart": N}` or
 * `{"stop": N}`, and answers one JSON line, `{"ok": true, "message": ...}` or `{"ok": false,
 * "error": ...}`. Restart stops node N if it runs (SIGTERM, SIGKILL after STOP_TIMEOUT_MS) and
 * starts it again with the same settings and data; stop stops it and keeps it stopped (not a
 * failure at the end).
 *
 * Cluster membership (issue 13): the nodes authenticate each other with a shared secret, which
 * the command generates once (32 random bytes, hex) into `<data-dir>/cluster.secret`, mode
 * 0600, and reuses on later starts; each node reads it through `cluster.secret.file` (so the
 * secret is never on a command line). Node i also gets an internal listener on
 * HOST:(BASE-PORT + 10 + i - 1), where the nodes call each other; the quorum names those
 * internal addresses.
 *
 * Observability (issue 16): node i serves its HTTP listener (/metrics, /healthz, /readyz, the
 * console) on HOST:(BASE-PORT + 30 + i - 1), printed with the node.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as nodeFs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { Admin } from "../client/admin.ts";
import type { Context } from "./context.ts";
import { CliError, errorLine, write } from "./output.ts";

/** Most nodes `--nodes` accepts (each is a quorum voter; Raft quorums are small). */
export const CLUSTER_NODES_MAX = 9;
/** How long the children get to stop after SIGTERM before they are killed. */
const STOP_TIMEOUT_MS = 30_000;
/** How often the cluster is asked whether it is ready, and how long one ask may take. */
const READY_POLL_INTERVAL_MS = 250;
const READY_REQUEST_TIMEOUT_MS = 2000;
/** After this long without being ready, say so once (and keep waiting). */
const READY_WARN_AFTER_MS = 30_000;
/** A child's output without a newline for this long is copied as a line of its own. */
const LINE_BYTES_MAX = 64 * 1024;
/** Settings each node gets from the launcher, so `--set` must not give them. */
const LAUNCHER_KEYS = [
  "node.id",
  "listen",
  "data.dir",
  "process.roles",
  "controller.quorum.voters",
  "advertised.address",
  "internal.listen",
  "internal.advertised.address",
  "cluster.secret",
  "cluster.secret.file",
  "http.listen",
];
/** Node i's internal listener is on BASE-PORT + INTERNAL_PORT_OFFSET + i - 1 (past every client port). */
export const INTERNAL_PORT_OFFSET = CLUSTER_NODES_MAX + 1;
/** Node i's HTTP listener (http.listen) is on BASE-PORT + HTTP_PORT_OFFSET + i - 1. */
export const HTTP_PORT_OFFSET = 3 * (CLUSTER_NODES_MAX + 1);
/** The file of the cluster's secret, under the data dir. */
export const SECRET_FILE = "cluster.secret";
/** The launcher's control socket, under the data dir. */
export const CONTROL_SOCKET = "launcher.sock";
/** How long `cluster restart|stop` waits for the launcher's answer. */
const CONTROL_TIMEOUT_MS = STOP_TIMEOUT_MS + 10_000;

/** Options of `cluster start`. */
export interface ClusterStartOptions {
  readonly nodes: number;
  readonly dataDir: string;
  readonly basePort: number;
  readonly host: string;
  /** Port of node 1's Kafka listener (node i: kafkaBasePort + i - 1); 0: no Kafka listener. */
  readonly kafkaBasePort?: number;
  /** Broker settings for every node, key=value. */
  readonly set: readonly string[];
}

/** One node to start: its id, address, data folder and `rill` arguments. */
export interface NodePlan {
  readonly nodeId: number;
  readonly address: string;
  /** Its internal listener, where the other nodes call it. */
  readonly internalAddress: string;
  /** Its Kafka listener, or "" without one. */
  readonly kafkaAddress: string;
  /** Its HTTP listener (metrics, health, console). */
  readonly httpAddress: string;
  readonly dataDir: string;
  readonly args: readonly string[];
}

/** The nodes of `o`: ids 1..N, consecutive ports, one shared quorum. Throws CliError on bad options. */
export function planCluster(o: ClusterStartOptions): NodePlan[] {
  const last = o.basePort + HTTP_PORT_OFFSET + o.nodes - 1;
  if (last > 65535) throw new CliError(`cluster start: ports ${o.basePort}..${last} (client, internal and HTTP) go beyond 65535`);
  for (const kv of o.set) {
    const key = kv.slice(0, kv.indexOf("=")).trim();
    if (!kv.includes("=") || key === "") throw new CliError(`--set: expected key=value, got "${kv}"`);
    if (LAUNCHER_KEYS.includes(key)) throw new CliError(`--set ${key}: cluster start sets it for each node`);
  }
  const host = o.host.includes(":") && !o.host.startsWith("[") ? `[${o.host}]` : o.host;
  const nodes = Array.from({ length: o.nodes }, (_, i) => ({
    nodeId: i + 1,
    address: `${host}:${o.basePort + i}`,
    internalAddress: `${host}:${o.basePort + INTERNAL_PORT_OFFSET + i}`,
    kafkaAddress: o.kafkaBasePort ? `${host}:${o.kafkaBasePort + i}` : "",
    httpAddress: `${host}:${o.basePort + HTTP_PORT_OFFSET + i}`,
    dataDir: path.join(o.dataDir, `node-${i + 1}`),
  }));
  const quorum = nodes.map((n) => `${n.nodeId}@${n.internalAddress}`).join(",");
  const secretFile = path.join(o.dataDir, SECRET_FILE);
  const sets = o.set.flatMap((kv) => ["--set", kv]);
  return nodes.map((n) => ({
    ...n,
    args: [
      "broker",
      "start",
      "--node-id",
      String(n.nodeId),
      "--listen",
      n.address,
      "--data-dir",
      n.dataDir,
      "--controller-quorum",
      quorum,
      "--roles",
      "broker,controller",
      "--set",
      `internal.listen=${n.internalAddress}`,
      "--set",
      `cluster.secret.file=${secretFile}`,
      ...(n.kafkaAddress ? ["--set", `kafka.listen=${n.kafkaAddress}`] : []),
      "--set",
      `http.listen=${n.httpAddress}`,
      ...sets,
    ],
  }));
}

/** How to run `rill` with this process's runtime: the command and the arguments before rill's own. */
export function runtimeCommand(): { command: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const entry = path.join(path.dirname(here), `main${path.extname(here)}`);
  if ((globalThis as { Deno?: unknown }).Deno !== undefined)
    return { command: process.execPath, args: ["run", "--allow-all", "--quiet", entry] };
  // Node under tsx has its loader in execArgv; a debugger port cannot be shared, so not that.
  const execArgv = process.execArgv.filter((a) => !a.startsWith("--inspect"));
  return { command: process.execPath, args: [...execArgv, entry] };
}

/** How to type the status command: `bin/rill` relative to the working directory when found. */
function rillCommand(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const bin = path.join(dir, "bin", "rill");
    if (nodeFs.existsSync(bin)) {
      const rel = path.relative(process.cwd(), bin);
      return rel.startsWith(".") || path.isAbsolute(rel) ? rel : `./${rel}`;
    }
  }
  return "rill";
}

/** Copies lines of several children to one stream with a prefix, pausing them while it is full. */
class PrefixedLines {
  private readonly paused = new Set<Readable>();

  constructor(private readonly out: Writable) {}

  /** Copies `from` line by line, each prefixed; resolves when `from` ends. */
  pipe(from: Readable, prefix: string): Promise<void> {
    let rest = "";
    from.setEncoding("utf8");
    from.on("data", (chunk: string) => {
      const text = rest + chunk;
      const nl = text.lastIndexOf("\n");
      if (nl < 0 && text.length < LINE_BYTES_MAX) {
        rest = text;
        return;
      }
      const complete = nl < 0 ? text : text.slice(0, nl);
      rest = nl < 0 ? "" : text.slice(nl + 1);
      this.write(
        from,
        complete
          .split("\n")
          .map((l) => `${prefix}${l}\n`)
          .join(""),
      );
    });
    return new Promise((resolve) =>
      from.once("close", () => {
        if (rest !== "") this.write(from, `${prefix}${rest}\n`);
        resolve();
      }),
    );
  }

  private write(from: Readable, text: string): void {
    if (this.out.write(text)) return;
    from.pause();
    if (this.paused.size === 0) {
      this.out.once("drain", () => {
        for (const p of this.paused) p.resume();
        this.paused.clear();
      });
    }
    this.paused.add(from);
  }
}

/** How a child ended. */
interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when it could not be started at all. */
  readonly error?: string;
}

function describeExit(e: Exit): string {
  if (e.error !== undefined) return `could not be started: ${e.error}`;
  return e.signal !== null ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/** A node's child process. */
class NodeProcess {
  readonly proc: ChildProcess;
  /** Resolves once the process ended and its output was copied. */
  readonly ended: Promise<Exit>;
  /** How it ended; null while running. */
  exit: Exit | null = null;
  /** Stopped on purpose (`cluster stop|restart`): its end is no failure. */
  stoppedOnPurpose = false;

  constructor(
    readonly plan: NodePlan,
    runtime: { command: string; args: string[] },
    out: PrefixedLines,
    err: PrefixedLines,
  ) {
    this.proc = spawn(runtime.command, [...runtime.args, ...plan.args], { stdio: ["ignore", "pipe", "pipe"], env: process.env });
    const prefix = `[node ${plan.nodeId}] `;
    const copied = Promise.all([out.pipe(this.proc.stdout!, prefix), err.pipe(this.proc.stderr!, prefix)]);
    const exited = new Promise<Exit>((resolve) => {
      this.proc.once("error", (e) => resolve({ code: null, signal: null, error: e.message }));
      this.proc.once("exit", (code, signal) => resolve({ code, signal }));
    });
    this.ended = exited.then(async (e) => {
      if (e.error === undefined) await copied;
      this.exit = e;
      return e;
    });
  }

  /** "node 2 (127.0.0.1:50052, pid 1234)". */
  get label(): string {
    return `node ${this.plan.nodeId} (${this.plan.address}, pid ${this.proc.pid ?? "-"})`;
  }
}

/** Resolves once some node answers that a controller is elected and every node's broker is unfenced (null once `stopped()`). */
async function waitReady(
  ctx: Context,
  nodes: readonly NodePlan[],
  stopped: () => boolean,
): Promise<{ clusterId: string; controllerId: number } | null> {
  for (let i = 0; !stopped(); i++) {
    // As the global --tls-* / --user options say: a cluster with auth.methods answers no anonymous caller.
    const admin = new Admin({
      bootstrap: nodes[i % nodes.length]!.address,
      tls: ctx.tls,
      credentials: ctx.credentials,
      retry: { retries: 0 },
      requestTimeoutMs: READY_REQUEST_TIMEOUT_MS,
    });
    try {
      const c = await admin.describeCluster();
      if (c.controllerId >= 0 && c.brokers.filter((b) => !b.fenced).length >= nodes.length) return c;
    } catch {
      // not serving yet
    } finally {
      await admin.close();
    }
    await new Promise((r) => setTimeout(r, READY_POLL_INTERVAL_MS));
  }
  return null;
}

/**
 * SIGTERMs the children still running, SIGKILLs those still there after STOP_TIMEOUT_MS, and
 * waits for them; answers what went wrong (nothing: they all exited 0, or on SIGTERM/SIGINT).
 */
async function stopAll(nodes: readonly NodeProcess[]): Promise<string[]> {
  const running = nodes.filter((r) => r.exit === null);
  const killed = new Set<NodeProcess>();
  for (const r of running) r.proc.kill("SIGTERM");
  const timer = setTimeout(() => {
    for (const r of running) {
      if (r.exit !== null) continue;
      killed.add(r);
      r.proc.kill("SIGKILL");
    }
  }, STOP_TIMEOUT_MS);
  const exits = await Promise.all(running.map((r) => r.ended));
  clearTimeout(timer);
  const failures: string[] = [];
  running.forEach((r, i) => {
    const e = exits[i]!;
    if (killed.has(r)) failures.push(`${r.label} was still running ${STOP_TIMEOUT_MS / 1000} s after SIGTERM and was killed`);
    else if (e.code !== 0 && e.signal !== "SIGTERM" && e.signal !== "SIGINT") failures.push(`${r.label} ${describeExit(e)} while stopping`);
  });
  return failures;
}

/**
 * Resolves on the first SIGTERM or SIGINT; later ones are ignored (a terminal's Ctrl-C reaches
 * this process twice under npm or tsx, which forward it, and the children directly too).
 */
function firstSignal(): { received: Promise<void>; dispose: () => void } {
  let onSignal!: () => void;
  const received = new Promise<void>((r) => (onSignal = r));
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return {
    received,
    dispose: () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}

/**
 * Prints one line once the cluster is ready (and one if it is slow to be); stops asking once
 * `stopped()`. Answers a function that cancels the slow-start line.
 */
function reportReady(ctx: Context, plans: readonly NodePlan[], stopped: () => boolean): () => void {
  const started = Date.now();
  const warn = setTimeout(
    () => void write(ctx.io.stdout, `Cluster not ready after ${READY_WARN_AFTER_MS / 1000} s (see the logs); still waiting.\n`),
    READY_WARN_AFTER_MS,
  );
  void waitReady(ctx, plans, stopped).then(async (c) => {
    clearTimeout(warn);
    if (c === null) return;
    const s = ((Date.now() - started) / 1000).toFixed(1);
    await write(
      ctx.io.stdout,
      `Cluster ready in ${s} s: cluster id ${c.clusterId}, controller ${c.controllerId}, ${plans.length} broker${plans.length === 1 ? "" : "s"} unfenced.\n`,
    );
  });
  return () => clearTimeout(warn);
}

/** SIGTERMs one node and waits for it to end (SIGKILL after STOP_TIMEOUT_MS); answers how it ended. */
async function stopOne(node: NodeProcess): Promise<Exit> {
  if (node.exit !== null) return node.exit;
  node.proc.kill("SIGTERM");
  const timer = setTimeout(() => node.proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
  const e = await node.ended;
  clearTimeout(timer);
  return e;
}

/** The running cluster: its nodes (a restart replaces one), and what ended without being asked to. */
class Supervisor {
  readonly nodes: NodeProcess[] = [];
  stopping = false;
  /** Resolves when every node has ended while the cluster was meant to run. */
  readonly allEnded: Promise<void>;
  private onAllEnded!: () => void;
  /** One restart or stop at a time. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: Context,
    private readonly o: ClusterStartOptions,
    private readonly plans: readonly NodePlan[],
    private readonly spawnNode: (plan: NodePlan) => NodeProcess,
  ) {
    this.allEnded = new Promise((r) => (this.onAllEnded = r));
  }

  /** Starts every node. */
  start(): void {
    this.nodes.push(...this.plans.map((p) => this.watch(this.spawnNode(p))));
  }

  /** Nodes that ended on their own and were not restarted. */
  unexpectedlyEnded(): NodeProcess[] {
    return this.nodes.filter((n) => n.exit !== null && !n.stoppedOnPurpose);
  }

  private watch(node: NodeProcess): NodeProcess {
    void node.ended.then(async (e) => {
      if (this.stopping || node.stoppedOnPurpose || !this.nodes.includes(node)) return;
      const running = this.nodes.filter((n) => n.exit === null).length;
      await write(
        this.ctx.io.stdout,
        `Node ${node.plan.nodeId} (${node.plan.address}, pid ${node.proc.pid ?? "-"}) ${describeExit(e)}; ` +
          `${running} of ${this.nodes.length} nodes still running. Restart it: ${rillCommand()} cluster restart ${node.plan.nodeId} --data-dir ${this.o.dataDir}\n`,
      );
      if (running === 0) this.onAllEnded();
    });
    return node;
  }

  /** Runs one control request (`{"restart": N}` or `{"stop": N}`); answers the message or throws CliError. */
  control(request: unknown): Promise<string> {
    const run = this.busy.then(() => this.controlNow(request));
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async controlNow(request: unknown): Promise<string> {
    const r = (typeof request === "object" && request !== null ? request : {}) as { restart?: unknown; stop?: unknown };
    const action = r.restart !== undefined ? "restart" : r.stop !== undefined ? "stop" : null;
    const id = r.restart ?? r.stop;
    if (action === null) throw new CliError('expected {"restart": N} or {"stop": N}');
    if (this.stopping) throw new CliError("the cluster is stopping");
    if (typeof id !== "number" || !Number.isInteger(id) || id < 1 || id > this.nodes.length)
      throw new CliError(`no node ${JSON.stringify(id)}: the nodes are 1..${this.nodes.length}`);
    const node = this.nodes[id - 1]!;
    const wasRunning = node.exit === null;
    node.stoppedOnPurpose = true;
    const e = await stopOne(node);
    const how = wasRunning ? `stopped (${e.signal ?? `exit code ${e.code}`})` : "was not running";
    if (action === "stop") {
      await write(
        this.ctx.io.stdout,
        `Node ${id} ${how} on request; restart it: ${rillCommand()} cluster restart ${id} --data-dir ${this.o.dataDir}\n`,
      );
      return `node ${id} ${how}`;
    }
    if (this.stopping) throw new CliError("the cluster is stopping");
    const fresh = this.watch(this.spawnNode(this.plans[id - 1]!));
    this.nodes[id - 1] = fresh;
    await write(this.ctx.io.stdout, `Node ${id} ${how}; restarted: ${fresh.plan.address}, pid ${fresh.proc.pid ?? "-"}\n`);
    return `node ${id} ${how}; restarted as pid ${fresh.proc.pid ?? "-"}`;
  }
}

/**
 * Serves the control socket (see the module comment). Answers a function that closes it.
 */
async function serveControl(file: string, supervisor: Supervisor): Promise<() => void> {
  nodeFs.rmSync(file, { force: true }); // left by a launcher that was killed (startCluster checked none answers)
  const server = net.createServer((sock) => {
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("error", () => undefined);
    sock.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      sock.pause();
      let request: unknown;
      try {
        request = JSON.parse(line);
      } catch {
        request = null;
      }
      supervisor.control(request).then(
        (message) => sock.end(`${JSON.stringify({ ok: true, message })}\n`),
        (e: unknown) => sock.end(`${JSON.stringify({ ok: false, error: errorLine(e) })}\n`),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(file, () => resolve());
  });
  nodeFs.chmodSync(file, 0o600);
  return () => {
    server.close();
    nodeFs.rmSync(file, { force: true });
  };
}

/** `rill cluster restart|stop N`: asks the launcher running with `dataDir` to restart or stop node N. */
export async function controlNode(
  ctx: Context,
  action: "restart" | "stop",
  nodeId: number,
  o: { dataDir: string; json?: boolean },
): Promise<void> {
  const file = path.join(o.dataDir, CONTROL_SOCKET);
  const answer = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(file);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new CliError(`cluster ${action}: no answer from the launcher on ${file} within ${CONTROL_TIMEOUT_MS / 1000} s`));
    }, CONTROL_TIMEOUT_MS);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(`${JSON.stringify({ [action]: nodeId })}\n`));
    sock.on("data", (d: string) => (buf += d));
    sock.on("end", () => {
      clearTimeout(timer);
      resolve(buf);
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        e.code === "ENOENT" || e.code === "ECONNREFUSED" ? "no launcher is running with this data dir (rill cluster start)" : e.message;
      reject(new CliError(`cluster ${action}: ${file}: ${why}`));
    });
  });
  let reply: { ok?: boolean; message?: string; error?: string };
  try {
    reply = JSON.parse(answer) as typeof reply;
  } catch {
    throw new CliError(`cluster ${action}: the launcher answered ${JSON.stringify(answer.slice(0, 200))}`);
  }
  if (reply.ok !== true) throw new CliError(`cluster ${action} ${nodeId}: ${reply.error ?? "failed"}`);
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify({ node: nodeId, action, message: reply.message })}\n`);
  else await write(ctx.io.stdout, `${(reply.message ?? "").replace(/^node/, "Node")}.\n`);
}

/** `rill cluster start`: see the module comment. Resolves when the cluster stopped cleanly. */
export async function startCluster(ctx: Context, o: ClusterStartOptions): Promise<void> {
  const plans = planCluster(o);
  for (const p of plans) nodeFs.mkdirSync(p.dataDir, { recursive: true });
  ensureSecret(path.join(o.dataDir, SECRET_FILE));
  const runtime = runtimeCommand();
  const out = new PrefixedLines(ctx.io.stdout);
  const err = new PrefixedLines(ctx.io.stderr);
  const controlFile = path.join(o.dataDir, CONTROL_SOCKET);
  // Refuses a data dir another launcher runs with, before starting anything.
  if (nodeFs.existsSync(controlFile)) {
    const live = await new Promise<boolean>((resolve) => {
      const c = net.connect(controlFile, () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (live) throw new CliError(`cluster start: a launcher already runs with ${o.dataDir} (it answers on ${controlFile})`);
  }
  const sig = firstSignal();
  const supervisor = new Supervisor(ctx, o, plans, (p) => new NodeProcess(p, runtime, out, err));
  const nodes = supervisor.nodes;
  let cancelReady = (): void => undefined;
  let closeControl = (): void => undefined;
  try {
    try {
      closeControl = await serveControl(controlFile, supervisor);
    } catch (e) {
      // The cluster still runs; only `cluster restart|stop` cannot reach it.
      await write(
        ctx.io.stderr,
        `rill: cluster start: cannot serve ${controlFile} (${errorLine(e)}); cluster restart and stop will not work\n`,
      );
    }
    supervisor.start();
    await write(ctx.io.stdout, banner(o, nodes));
    cancelReady = reportReady(ctx, plans, () => supervisor.stopping);
    // Runs until a signal, or until every node has ended on its own.
    const first = await Promise.race([sig.received.then(() => "signal" as const), supervisor.allEnded.then(() => "ended" as const)]);
    supervisor.stopping = true;
    closeControl();
    const failures = supervisor
      .unexpectedlyEnded()
      .map((r) => `${r.label} ${describeExit(r.exit!)} while the cluster was running${first === "ended" ? "" : " (not restarted)"}`);
    const running = nodes.filter((r) => r.exit === null).length;
    await write(
      ctx.io.stdout,
      `${first === "signal" ? "Stopping" : "Every node ended: stopping"} ${running} node${running === 1 ? "" : "s"}...\n`,
    );
    failures.push(...(await stopAll(nodes)));
    if (failures.length > 0) throw new CliError(`cluster start: ${failures.join("; ")}`);
    await write(ctx.io.stdout, "Cluster stopped.\n");
  } catch (e) {
    // Never leave children behind because of an error of this command.
    for (const r of nodes) if (r.exit === null) r.proc.kill("SIGKILL");
    if (e instanceof CliError) throw e;
    throw new CliError(`cluster start: ${errorLine(e)}`);
  } finally {
    supervisor.stopping = true;
    closeControl();
    cancelReady();
    sig.dispose();
  }
}

/** Writes a new random secret to `file` (mode 0600) unless it holds one; refuses a file others may read. */
function ensureSecret(file: string): void {
  try {
    nodeFs.writeFileSync(file, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const mode = nodeFs.statSync(file).mode & 0o777;
  if (process.platform !== "win32" && (mode & 0o077) !== 0)
    throw new CliError(`cluster start: ${file} holds the cluster secret but others may read it (mode ${mode.toString(8)}); chmod 600 it`);
}

function banner(o: ClusterStartOptions, nodes: readonly NodeProcess[]): string {
  const lines = [
    `Started a ${nodes.length}-node cluster (every node broker and controller), data in ${o.dataDir}; node logs follow, prefixed [node N]:`,
  ];
  for (const r of nodes)
    lines.push(`  node ${r.plan.nodeId}  ${r.plan.address}  http://${r.plan.httpAddress}/  pid ${r.proc.pid ?? "-"}  ${r.plan.dataDir}`);
  lines.push(
    `Members call each other on ${nodes.map((r) => r.plan.internalAddress).join(", ")}, authenticated by the secret in ${path.join(o.dataDir, SECRET_FILE)}.`,
  );
  lines.push(`Status: ${rillCommand()} cluster status --bootstrap ${nodes[0]!.plan.address}`);
  lines.push(
    `Restart or stop node N: ${rillCommand()} cluster restart N --data-dir ${o.dataDir} (or cluster stop N); a node that dies is reported and the others keep running.`,
  );
  lines.push(`Stop: Ctrl-C, or kill -TERM ${process.pid}`);
  return `${lines.join("\n")}\n`;
}
