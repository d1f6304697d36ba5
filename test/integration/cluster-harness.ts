/**
 * A cluster of real `rill broker start` processes on 127.0.0.1 for integration tests: the
 * controller quorum tests use it, and replication tests can too.
 *
 * - `Cluster.start({ nodes: 3, set: {...} })` picks free ports, gives every node its own data dir
 *   under one temporary root, starts them all at once and resolves once each has logged
 *   "broker started" (it does not wait for a controller: see `waitForStable`).
 * - `linkProxies: true` puts a TcpProxy (tcp-proxy.ts) on every directed link i→j: node i is
 *   given its own `controller.quorum.voters` in which every other voter j is reached through the
 *   proxy of i→j (the ids are the same everywhere and `cluster.id` is set explicitly, so the
 *   nodes still agree they form one cluster). Everything node i sends to node j — Raft messages,
 *   broker registration and heartbeats, admin forwarding — then crosses that proxy, and
 *   `cut(i, j)` / `cutBoth(i, j)` / `isolate(i)` / `heal()` partition the quorum one way or both.
 *   Tests talk to each node directly (its `address`), so a partitioned node can still be asked.
 * - `ingressProxies: true` puts one more proxy in front of each node and registers it as the
 *   node's `advertised.address`: what other brokers and clients learn from the metadata
 *   (replica fetches, client routing) then crosses `ingress(j)`, which a test can cut.
 * - Each `ClusterNode` can be killed (SIGKILL), terminated (SIGTERM, waits for the exit),
 *   paused (SIGSTOP) and resumed (SIGCONT) and started again on the same port and data dir; its
 *   log lines (pino JSON) are kept across runs, in memory and in `<root>/node-N.log`.
 * - `node.admin()` is the SDK's Admin (src/client/admin.ts) bound to the node;
 *   `node.describe()` is the node's own DescribeCluster answer (raft role, term, metadata offset).
 * - `until(pred, ms, what)` polls until `pred` returns a value that is not false/null/undefined;
 *   `cluster.waitForStable(ms)` until the nodes agree on a controller, with every broker unfenced
 *   and equal metadata offsets.
 * - Election safety: `leaderClaimsFromLogs()` (every "leader changed" line with role leader) and
 *   `sampleLeaders()` (DescribeCluster polled on every node) feed `splitBrains(claims)`, the
 *   terms that had two leaders. `raftDiskState(dataDir)` reads a node's Raft files (snapshot
 *   index, first and last log index) to tell what only a snapshot can restore.
 *
 * Every process started is stopped by `cluster.close()` (SIGKILL, after SIGCONT) and, should the
 * test process end without it, by an exit hook. Nothing here depends on timing beyond the bounds
 * the caller passes; waits fail with the last state seen, never silently.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as nodeFs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { RillError } from "../../src/base/errors.ts";
import { Admin } from "../../src/client/admin.ts";
import { AdminService, DescribeClusterRequestSchema, type DescribeClusterResponse } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { ControllerService } from "../../src/gen/rill/v1/controller_service_pb.ts";
import { clientConstructor, type ServiceClient } from "../../src/protocol/grpc-service.ts";
import { randomBytes } from "node:crypto";
import { systemClock } from "../../src/base/clock.ts";
import { constructorOf } from "../../src/rpc/internal-clients.ts";
import { signingInterceptor } from "../../src/rpc/member-auth.ts";
import { MemberSigner } from "../../src/security/member-auth.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { TcpProxy, type BlockMode } from "./tcp-proxy.ts";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const AdminClient = clientConstructor(AdminService);
/** ControllerService clients whose serializers let the signing interceptor send the bytes it signed. */
const ControllerClient = constructorOf(ControllerService);

/** The cluster secret every node of a harness cluster shares (cluster.secret.file); tests sign with it as a member. */
export const HARNESS_SECRET = `harness-${randomBytes(16).toString("hex")}`;

/** Writes HARNESS_SECRET to `dir`/cluster.secret (mode 0600) for `cluster.secret.file`; returns its path. */
export function writeSecretFile(dir: string): string {
  const file = path.join(dir, "cluster.secret");
  nodeFs.writeFileSync(file, `${HARNESS_SECRET}\n`, { mode: 0o600 });
  return file;
}

/** Signs calls as cluster member `nodeId` with the harness's secret. */
export function memberSigner(nodeId = 0): MemberSigner {
  return new MemberSigner(HARNESS_SECRET, nodeId, systemClock, () => randomBytes(16).toString("hex"));
}

/** Runtimes a node can run on; Bun is the broker's default. */
export type Runtime = "bun" | "node";

/**
 * The command that runs a node. `RILL_NODE_RUNTIME_ARGS` (space-separated) goes before the script,
 * e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile every broker of a soak or fault run (Node refuses
 * such flags in NODE_OPTIONS).
 */
function command(runtime: Runtime): string[] {
  const extra = (process.env.RILL_NODE_RUNTIME_ARGS ?? "").split(" ").filter((a) => a !== "");
  if (runtime === "bun") return [path.join(ROOT, "node_modules/.bin/bun"), ...extra, "src/cli/main.ts"];
  const js = path.join(ROOT, "dist/src/cli/main.js");
  if (!nodeFs.existsSync(js)) throw new Error(`${js} is missing: run \`npm run build\` first`);
  return [process.execPath, ...extra, js];
}

/**
 * Settings that make failures show quickly (all overridable with `set`): a broker is fenced 2 s
 * after its last heartbeat, a voter that hears no leader campaigns after 0.8–1.6 s.
 */
export const FAST_CLUSTER_SETTINGS: Readonly<Record<string, string>> = {
  "broker.session.timeout.ms": "2000",
  "broker.heartbeat.interval.ms": "300",
  "controller.quorum.election.timeout.ms": "800",
  "controller.quorum.heartbeat.interval.ms": "100",
};

/** What `Cluster.start` takes; everything has a default. */
export interface ClusterOptions {
  /** Number of nodes, each a combined broker and controller voter. Default 3. */
  readonly nodes?: number;
  /** Broker keys for every node (`--set key=value`), over FAST_CLUSTER_SETTINGS. */
  readonly set?: Readonly<Record<string, string | number>>;
  /** Broker keys for one node, over `set`. */
  readonly nodeSet?: (id: number) => Readonly<Record<string, string | number>>;
  /** A TcpProxy on every directed link i→j of the quorum (see the file comment). */
  readonly linkProxies?: boolean;
  /** A TcpProxy in front of every node, registered as its `advertised.address`. */
  readonly ingressProxies?: boolean;
  /** `cluster.id`; default a fresh random one. */
  readonly clusterId?: string;
  /** Default "bun". */
  readonly runtime?: Runtime;
  /** How long a node may take to log "broker started". Default 30 s. */
  readonly startTimeoutMs?: number;
  /** Prefix of the temporary root folder. */
  readonly name?: string;
  /**
   * Issue 21: only nodes 1..voters are in `controller.quorum.voters` (every node's); the others
   * run the controller role as observers, to be added with AddRaftVoter. Default: every node.
   */
  readonly voters?: number;
  /**
   * Issue 21: nodes created (ports, data dirs, command line) but not started by `start`; a test
   * starts them later with `node(id).start()`, as a cluster grows. Default: none.
   */
  readonly deferred?: readonly number[];
}

/** A pino log line of a node, parsed; `run` counts the node's starts (1 = first). */
export interface LogLine {
  readonly run: number;
  readonly msg?: string;
  readonly level?: number;
  readonly [key: string]: unknown;
}

/** Every child process started by any cluster in this test process, killed on exit. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) {
    try {
      p.kill("SIGCONT");
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  // Below Linux's ephemeral range (32768-60999): a port the kernel hands out to outgoing
  // connections could be taken by one between this check and the node binding it.
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (usedPorts.has(port)) continue;
    const srv = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      srv.once("error", () => resolve(false)).listen(port, "127.0.0.1", () => resolve(true));
    });
    if (!ok) continue;
    await new Promise((r) => srv.close(r));
    usedPorts.add(port);
    return port;
  }
  throw new Error("freePort: no free port found in 20000-31999 after 200 tries");
}

/**
 * A port p such that p .. p + n - 1 are free on 127.0.0.1 at the time of asking, for a launcher
 * that numbers its ports from a base (`rill cluster start --base-port`). Below the ephemeral range,
 * as freePort: a run of ports in it (the 20000-49999 these tests once drew from) could be taken by
 * an outgoing connection of a parallel test before the nodes bind them, and a node that cannot
 * bind its port never joins (the CI run of 4c5ab12: 2 of 3 brokers for 60 s).
 */
export async function freePortRun(n: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - n));
    const run = Array.from({ length: n }, (_, i) => base + i);
    if (run.some((p) => usedPorts.has(p))) continue;
    const free = await Promise.all(
      run.map(
        (port) =>
          new Promise<boolean>((resolve) => {
            const srv = net.createServer();
            srv.once("error", () => resolve(false)).listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
          }),
      ),
    );
    if (!free.every(Boolean)) continue;
    for (const p of run) usedPorts.add(p);
    return base;
  }
  throw new Error(`freePortRun: no ${n} consecutive free ports in 20000-31999 after 100 tries`);
}

/** Ports this process has handed out (never handed out twice). */
const usedPorts = new Set<number>();

/**
 * What `read()` answers once every node agrees on the metadata and commit offsets and two reads
 * 300 ms apart are equal (or after 15 s): a follower learns the commit offset with the next
 * heartbeat, so a read right after a change can catch one node behind the others.
 */
export async function settled<T extends { nodes: readonly { commit: number; offset: number }[] }>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15_000;
  let last = await read();
  for (;;) {
    const first = last.nodes[0]!;
    const agree = last.nodes.every((n) => n.commit === first.commit && n.offset === first.offset);
    await new Promise((r) => setTimeout(r, agree ? 300 : 100));
    const again = await read();
    if (agree && JSON.stringify(again) === JSON.stringify(last)) return again;
    if (Date.now() > deadline) return again;
    last = again;
  }
}

/**
 * Polls `pred` every `intervalMs` until it returns something other than false, null or
 * undefined, and resolves with it; rejects after `ms` naming `what` and the last value returned
 * or error thrown. A throwing `pred` counts as "not yet".
 */
/** The catalog name of the RillError `p` rejects with ("no error" when it resolves): a test compares error kinds. */
export async function rillErrorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "no error";
  } catch (e) {
    return e instanceof RillError ? e.kind.name : String(e);
  }
}

export async function until<T>(
  pred: () => T | Promise<T>,
  ms: number,
  what: string,
  intervalMs = 100,
): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await pred();
      if (v !== false && v !== null && v !== undefined) return v as Exclude<T, false | null | undefined>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const shown =
        last instanceof Error
          ? `${last.name}: ${last.message}`
          : JSON.stringify(last, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
      throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${shown})`);
    }
    await sleep(intervalMs);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Promise form of a unary grpc-js call with a deadline. */
export function unaryCall<Res>(
  start: (options: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown,
  deadlineMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    start({ deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r!)));
  });
}

/** One node of the cluster: its process, address, data dir and logs. */
export class ClusterNode {
  /** Log lines of every run, in order. */
  readonly lines: LogLine[] = [];
  /** Raw stderr output (bun/pino rarely write there; crashes do). */
  readonly stderr: string[] = [];
  private proc: ChildProcess | null = null;
  private exit: Promise<number | string | null> = Promise.resolve(null);
  private runs = 0;
  private admins: Admin[] = [];
  private sharedAdmin: Admin | null = null;
  private adminClient: ServiceClient<typeof AdminService> | null = null;
  private controllerClient: ServiceClient<typeof ControllerService> | null = null;
  private paused = false;

  constructor(
    readonly id: number,
    readonly port: number,
    readonly dataDir: string,
    readonly logFile: string,
    /** The `controller.quorum.voters` string this node is given. */
    readonly voters: string,
    private args: readonly string[],
    private readonly runtime: Runtime,
    private readonly startTimeoutMs: number,
  ) {}

  /** The node's own gRPC address (not through any proxy). */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Whether a process of this node is running (possibly paused). */
  get running(): boolean {
    return this.proc !== null;
  }

  /** Whether the process is stopped by SIGSTOP. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** The PID of the running process. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** How many times the node was started. */
  get runCount(): number {
    return this.runs;
  }

  /** Starts the node's process and resolves once it logs "broker started". */
  async start(): Promise<void> {
    if (this.proc) throw new Error(`node ${this.id} is already running (pid ${this.proc.pid})`);
    const run = ++this.runs;
    const [cmd, ...pre] = command(this.runtime);
    const proc = spawn(cmd!, [...pre, ...this.args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    this.paused = false;
    live.add(proc);
    nodeFs.appendFileSync(this.logFile, `### run ${run} (pid ${proc.pid}): ${cmd} ${[...pre, ...this.args].join(" ")}\n`);
    this.exit = new Promise((resolve) => {
      proc.once("exit", (code, signal) => {
        live.delete(proc);
        if (this.proc === proc) {
          this.proc = null;
          this.paused = false;
        }
        nodeFs.appendFileSync(this.logFile, `### run ${run} exited: ${code ?? signal}\n`);
        resolve(code ?? signal);
      });
    });
    let started!: () => void;
    const isStarted = new Promise<void>((r) => (started = r));
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      nodeFs.appendFileSync(this.logFile, d);
      buf += d.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: LogLine;
        try {
          line = { ...(JSON.parse(text) as object), run };
        } catch {
          line = { run, msg: text };
        }
        this.lines.push(line);
        if (line.msg === "broker started") started();
      }
    });
    proc.stderr!.on("data", (d: Buffer) => {
      nodeFs.appendFileSync(this.logFile, d);
      this.stderr.push(d.toString("utf8"));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        isStarted,
        this.exit.then((code) => {
          throw new Error(`node ${this.id} exited (${code}) before serving:\n${this.tail(20)}`);
        }),
        new Promise((_r, reject) => {
          timer = setTimeout(
            () => reject(new Error(`node ${this.id}: no "broker started" within ${this.startTimeoutMs} ms:\n${this.tail(20)}`)),
            this.startTimeoutMs,
          );
        }),
      ]);
    } catch (e) {
      await this.kill();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** kill -9 (after SIGCONT if paused); resolves once the process is gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill("SIGKILL");
    await this.exit;
  }

  /**
   * SIGTERM (graceful shutdown); resolves with the exit code once the process is gone, or kills
   * it with SIGKILL after `graceMs` and resolves with "SIGKILL".
   */
  async terminate(graceMs = 20_000): Promise<number | string | null> {
    const p = this.proc;
    if (!p) return null;
    if (this.paused) this.resume();
    p.kill("SIGTERM");
    const timer = setTimeout(() => p.kill("SIGKILL"), graceMs);
    try {
      return await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGSTOP: the process stops running (sockets stay open, nothing is answered). */
  pause(): void {
    if (!this.proc) throw new Error(`node ${this.id} is not running`);
    this.proc.kill("SIGSTOP");
    this.paused = true;
  }

  /** SIGCONT. */
  resume(): void {
    if (!this.proc) throw new Error(`node ${this.id} is not running`);
    this.proc.kill("SIGCONT");
    this.paused = false;
  }

  /**
   * Settings for this node's next starts, given after its others (a later `--set` of a key wins):
   * a node restarted with another configuration, as an operator changes `process.roles`.
   */
  reconfigure(settings: Readonly<Record<string, string>>): void {
    this.args = [...this.args, ...Object.entries(settings).flatMap(([k, v]) => ["--set", `${k}=${v}`])];
  }

  /** Stops the node (SIGTERM, or SIGKILL with `kill9`) and starts it again. */
  async restart(o: { kill9?: boolean } = {}): Promise<void> {
    if (o.kill9) await this.kill();
    else await this.terminate();
    await this.start();
  }

  /** Resolves with the exit code (or signal) of the current run once it ends. */
  exited(): Promise<number | string | null> {
    return this.exit;
  }

  /**
   * An SDK Admin bound to this node, closed by `closeClients()`: without options one shared
   * instance (5 retries, 15 s per request); with options a new one (`retries: 0` to see every
   * error as it comes).
   */
  admin(o?: { retries?: number; requestTimeoutMs?: number }): Admin {
    if (o === undefined && this.sharedAdmin) return this.sharedAdmin;
    const a = new Admin({ bootstrap: this.address, requestTimeoutMs: o?.requestTimeoutMs ?? 15_000, retry: { retries: o?.retries ?? 5 } });
    this.admins.push(a);
    if (o === undefined) this.sharedAdmin = a;
    return a;
  }

  /** A raw AdminService client of this node (one per node, reused). */
  adminRaw(): ServiceClient<typeof AdminService> {
    this.adminClient ??= new AdminClient(this.address, grpc.credentials.createInsecure(), clientChannelOptions());
    return this.adminClient;
  }

  /** A raw ControllerService client of this node (one per node, reused), signing as a cluster member. */
  controller(): ServiceClient<typeof ControllerService> {
    this.controllerClient ??= new ControllerClient(this.address, grpc.credentials.createInsecure(), {
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 500,
      interceptors: [signingInterceptor(memberSigner())],
    });
    return this.controllerClient;
  }

  /** This node's DescribeCluster answer (its own view: raft role, term, metadata offset). */
  describe(deadlineMs = 3000): Promise<DescribeClusterResponse> {
    const c = this.adminRaw();
    return unaryCall((o, cb) => c.describeCluster(create(DescribeClusterRequestSchema, {}), new grpc.Metadata(), o, cb), deadlineMs);
  }

  /** `describe()`, or null when the node does not answer (down, paused, slow). */
  async tryDescribe(deadlineMs = 3000): Promise<DescribeClusterResponse | null> {
    if (!this.proc || this.paused) return null;
    return this.describe(deadlineMs).catch(() => null);
  }

  /** Log lines with this `msg` (of every run, or of `run`). */
  logs(msg: string, run?: number): LogLine[] {
    return this.lines.filter((l) => l.msg === msg && (run === undefined || l.run === run));
  }

  /** The last `n` log lines as text, for failure messages. */
  tail(n: number): string {
    return [...this.lines.slice(-n).map((l) => JSON.stringify(l)), ...this.stderr.slice(-5)].join("\n");
  }

  /** Closes the clients this node handed out. */
  async closeClients(): Promise<void> {
    await Promise.all(this.admins.splice(0).map((a) => a.close()));
    this.sharedAdmin = null;
    this.adminClient?.close();
    this.adminClient = null;
    this.controllerClient?.close();
    this.controllerClient = null;
  }
}

/** One node's view as DescribeCluster tells it (numbers, not bigints). */
export interface NodeView {
  readonly id: number;
  readonly controllerId: number;
  readonly raftRole: string;
  readonly raftTerm: number;
  readonly metadataOffset: number;
  readonly commitOffset: number;
  readonly brokerState: string;
  /** Registered brokers: node id → fenced. */
  readonly fenced: ReadonlyMap<number, boolean>;
}

/** `NodeView` of a DescribeCluster answer. */
export function viewOf(r: DescribeClusterResponse): NodeView {
  const n = r.node!;
  return {
    id: n.nodeId,
    controllerId: r.controllerId,
    raftRole: n.raftRole,
    raftTerm: Number(n.raftTerm),
    metadataOffset: Number(n.metadataOffset),
    commitOffset: Number(n.commitOffset),
    brokerState: n.brokerState,
    fenced: new Map(r.brokers.map((b) => [b.nodeId, b.fenced])),
  };
}

/** A (node, term) at which a node reported itself leader. */
export interface LeaderClaim {
  readonly node: number;
  readonly term: number;
  readonly source: "log" | "sample";
}

/** Terms in which more than one node claimed leadership (empty: no split brain seen). */
export function splitBrains(claims: readonly LeaderClaim[]): { term: number; nodes: number[] }[] {
  const byTerm = new Map<number, Set<number>>();
  for (const c of claims) {
    let s = byTerm.get(c.term);
    if (!s) byTerm.set(c.term, (s = new Set()));
    s.add(c.node);
  }
  return [...byTerm].filter(([, s]) => s.size > 1).map(([term, s]) => ({ term, nodes: [...s].sort() }));
}

/** On-disk Raft log bounds of a node (read from its files; see src/raft/disk-storage.ts). */
export interface RaftDiskState {
  /** Index of the snapshot (0: none). */
  readonly snapshotIndex: number;
  /** Last compacted index: the log holds entries from `baseIndex + 1`. */
  readonly baseIndex: number;
  /** Index of the last whole entry in the log file (baseIndex when empty). */
  readonly lastIndex: number;
  /** Term of that entry (the base term when the log is empty). */
  readonly lastTerm: number;
}

/** Reads a node's Raft files (safe on a running node: headers are replaced atomically). */
export function raftDiskState(dataDir: string): RaftDiskState {
  const dir = path.join(dataDir, "metadata", "raft");
  let snapshotIndex = 0;
  const snap = path.join(dir, "snapshot");
  if (nodeFs.existsSync(snap)) {
    const b = nodeFs.readFileSync(snap);
    if (b.subarray(0, 8).toString("latin1") === "RILLRSN1") snapshotIndex = Number(b.readBigUInt64BE(8));
  }
  const b = nodeFs.readFileSync(path.join(dir, "entries"));
  if (b.subarray(0, 8).toString("latin1") !== "RILLRLG1") throw new Error(`${dir}/entries: not a Raft log file`);
  const baseIndex = Number(b.readBigUInt64BE(8));
  let lastIndex = baseIndex;
  let lastTerm = Number(b.readBigUInt64BE(16));
  let pos = 28;
  while (pos + 8 <= b.length) {
    const bodyLen = b.readUInt32BE(pos);
    if (pos + 8 + bodyLen > b.length || bodyLen < 17) break; // torn tail
    lastIndex = Number(b.readBigUInt64BE(pos + 8));
    lastTerm = Number(b.readBigUInt64BE(pos + 16));
    pos += 8 + bodyLen;
  }
  return { snapshotIndex, baseIndex, lastIndex, lastTerm };
}

/** A running cluster; `Cluster.start` makes one, `close()` ends it. */
export class Cluster {
  private readonly links = new Map<string, TcpProxy>();
  private readonly ingresses = new Map<number, TcpProxy>();
  private samplers: Array<() => void> = [];
  private closed = false;

  private constructor(
    readonly root: string,
    readonly clusterId: string,
    readonly nodes: readonly ClusterNode[],
  ) {}

  /** Starts every node (but the `deferred` ones) at once (see ClusterOptions); resolves once each has logged "broker started". */
  static async start(o: ClusterOptions = {}): Promise<Cluster> {
    const n = o.nodes ?? 3;
    const root = nodeFs.mkdtempSync(path.join(os.tmpdir(), o.name ?? "rill-cluster-"));
    const clusterId = o.clusterId ?? `it-${Math.random().toString(36).slice(2, 12)}`;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const ports = new Map<number, number>();
    for (const id of ids) {
      let p = await freePort();
      while ([...ports.values()].includes(p)) p = await freePort();
      ports.set(id, p);
    }
    const direct = (id: number): string => `127.0.0.1:${ports.get(id)!}`;
    const links = new Map<string, TcpProxy>();
    const ingresses = new Map<number, TcpProxy>();
    const proxies: TcpProxy[] = [];
    try {
      if (o.linkProxies) {
        for (const from of ids) {
          for (const to of ids) {
            if (from === to) continue;
            const p = await TcpProxy.start(direct(to));
            proxies.push(p);
            links.set(`${from}->${to}`, p);
          }
        }
      }
      if (o.ingressProxies) {
        for (const id of ids) {
          const p = await TcpProxy.start(direct(id));
          proxies.push(p);
          ingresses.set(id, p);
        }
      }
    } catch (e) {
      await Promise.all(proxies.map((p) => p.close()));
      nodeFs.rmSync(root, { recursive: true, force: true });
      throw e;
    }
    const secretFile = writeSecretFile(root);
    const nodes = ids.map((id) => {
      const voters = ids
        .filter((j) => j <= (o.voters ?? n))
        .map((j) => `${j}@${j === id || !o.linkProxies ? direct(j) : links.get(`${id}->${j}`)!.address}`)
        .join(",");
      const settings: Record<string, string> = {
        ...FAST_CLUSTER_SETTINGS,
        ...stringify(o.set ?? {}),
        ...stringify(o.nodeSet?.(id) ?? {}),
        "cluster.id": clusterId,
        "cluster.secret.file": secretFile,
      };
      if (o.ingressProxies) settings["advertised.address"] = ingresses.get(id)!.address;
      const dataDir = path.join(root, `node-${id}`);
      const args = [
        "broker",
        "start",
        "--node-id",
        String(id),
        "--listen",
        direct(id),
        "--data-dir",
        dataDir,
        "--controller-quorum",
        voters,
        ...Object.entries(settings).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
      ];
      return new ClusterNode(
        id,
        ports.get(id)!,
        dataDir,
        path.join(root, `node-${id}.log`),
        voters,
        args,
        o.runtime ?? "bun",
        o.startTimeoutMs ?? 30_000,
      );
    });
    const cluster = new Cluster(root, clusterId, nodes);
    for (const [k, p] of links) cluster.links.set(k, p);
    for (const [k, p] of ingresses) cluster.ingresses.set(k, p);
    try {
      await Promise.all(nodes.filter((nd) => !o.deferred?.includes(nd.id)).map((nd) => nd.start()));
    } catch (e) {
      await cluster.close();
      throw e;
    }
    return cluster;
  }

  /** The node with this id. */
  node(id: number): ClusterNode {
    const nd = this.nodes.find((x) => x.id === id);
    if (!nd) throw new Error(`no node ${id}`);
    return nd;
  }

  /** Nodes whose process is running and not paused. */
  get running(): ClusterNode[] {
    return this.nodes.filter((nd) => nd.running && !nd.isPaused);
  }

  /** The proxy of the directed link from → to (needs `linkProxies`). */
  link(from: number, to: number): TcpProxy {
    const p = this.links.get(`${from}->${to}`);
    if (!p) throw new Error(`no proxy on ${from}->${to}: start the cluster with linkProxies`);
    return p;
  }

  /** The proxy in front of node `id` that it advertises (needs `ingressProxies`). */
  ingress(id: number): TcpProxy {
    const p = this.ingresses.get(id);
    if (!p) throw new Error(`no ingress proxy for ${id}: start the cluster with ingressProxies`);
    return p;
  }

  /** Cuts what `from` sends to `to` (its calls to `to`), until `heal`. */
  cut(from: number, to: number, mode: BlockMode = "reset"): void {
    this.link(from, to).block(mode);
  }

  /** Cuts both directions between `a` and `b`. */
  cutBoth(a: number, b: number, mode: BlockMode = "reset"): void {
    this.cut(a, b, mode);
    this.cut(b, a, mode);
  }

  /** Cuts every link into and out of node `id`. */
  isolate(id: number, mode: BlockMode = "reset"): void {
    for (const other of this.nodes) if (other.id !== id) this.cutBoth(id, other.id, mode);
  }

  /** Restores every link (and ingress proxy). */
  heal(): void {
    for (const p of [...this.links.values(), ...this.ingresses.values()]) p.unblock();
  }

  /** Every running node's view (null for a node that did not answer). */
  async views(deadlineMs = 3000): Promise<Map<number, NodeView | null>> {
    const out = new Map<number, NodeView | null>();
    await Promise.all(
      this.nodes.map(async (nd) => {
        const r = await nd.tryDescribe(deadlineMs);
        out.set(nd.id, r ? viewOf(r) : null);
      }),
    );
    return out;
  }

  /**
   * Waits until the nodes `ids` (default: every running node) agree on one controller that is
   * among them and reports itself leader, at one term, and (unless `brokers` is false) every
   * node in `ids` is registered and unfenced in each one's view, with equal metadata offsets.
   * Resolves with the controller's id and term.
   */
  /** Resolves once every node of `ids` holds the voter set `want` in its metadata log (DescribeCluster's `log_voters`). */
  async votersAgree(ids: readonly number[], want: readonly number[], timeoutMs = 20_000): Promise<void> {
    const logVoters = async (id: number): Promise<number[] | null> => {
      const r = await this.node(id).tryDescribe();
      return r?.node ? [...r.node.logVoters] : null;
    };
    await until(
      async () => {
        for (const id of ids) if (JSON.stringify(await logVoters(id)) !== JSON.stringify(want)) return false;
        return true;
      },
      timeoutMs,
      `nodes ${ids.join(",")} to hold voters ${want.join(",")}`,
    );
  }

  async waitForStable(
    ms: number,
    o: { ids?: readonly number[]; brokers?: boolean } = {},
  ): Promise<{ leader: number; term: number; offset: number }> {
    const ids = o.ids ?? this.running.map((nd) => nd.id);
    return until(
      async () => {
        const views = await Promise.all(ids.map((id) => this.node(id).describe(2000).then(viewOf)));
        const leader = views[0]!.controllerId;
        if (leader < 0 || !ids.includes(leader)) return false;
        if (!views.every((v) => v.controllerId === leader && v.raftTerm === views[0]!.raftTerm)) return false;
        if (views.find((v) => v.id === leader)!.raftRole !== "leader") return false;
        if (o.brokers !== false) {
          if (!views.every((v) => ids.every((id) => v.fenced.get(id) === false))) return false;
          if (!views.every((v) => v.metadataOffset === views[0]!.metadataOffset)) return false;
        }
        return { leader, term: views[0]!.raftTerm, offset: views[0]!.metadataOffset };
      },
      ms,
      `nodes ${ids.join(",")} to agree on a controller${o.brokers === false ? "" : " with every broker unfenced and equal metadata offsets"}`,
      150,
    );
  }

  /** Leadership claims from the nodes' logs ("metadata quorum: leader changed" with role leader). */
  leaderClaimsFromLogs(): LeaderClaim[] {
    const out: LeaderClaim[] = [];
    for (const nd of this.nodes) {
      for (const l of nd.logs("metadata quorum: leader changed")) {
        if (l["role"] === "leader") out.push({ node: nd.id, term: Number(l["term"]), source: "log" });
      }
    }
    return out;
  }

  /**
   * Samples every running node's DescribeCluster every `intervalMs` until `stop()`, recording
   * each (node, term) that answered raft_role "leader".
   */
  sampleLeaders(intervalMs = 100): { stop: () => Promise<LeaderClaim[]>; samples: () => number } {
    const claims: LeaderClaim[] = [];
    let samples = 0;
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        await Promise.all(
          this.running.map(async (nd) => {
            const r = await nd.tryDescribe(1000);
            if (!r) return;
            samples++;
            const v = viewOf(r);
            if (v.raftRole === "leader") claims.push({ node: v.id, term: v.raftTerm, source: "sample" });
          }),
        );
        await sleep(intervalMs);
      }
    })();
    const stop = async (): Promise<LeaderClaim[]> => {
      stopped = true;
      await loop;
      return claims;
    };
    this.samplers.push(() => void stop());
    return { stop, samples: () => samples };
  }

  /** A summary of every node's last log lines, for failure messages. */
  tails(n = 15): string {
    return this.nodes.map((nd) => `--- node ${nd.id} (${nd.logFile})\n${nd.tail(n)}`).join("\n");
  }

  /**
   * Kills every process (SIGCONT, then SIGKILL), closes the proxies and clients, and removes the
   * data root unless `keep` (or RILL_IT_KEEP=1), in which case it prints where it is.
   */
  async close(o: { keep?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.samplers) s();
    await Promise.all(
      this.nodes.map(async (nd) => {
        if (nd.isPaused) nd.resume();
        await nd.kill();
        await nd.closeClients();
      }),
    );
    await Promise.all([...this.links.values(), ...this.ingresses.values()].map((p) => p.close()));
    if (o.keep || process.env["RILL_IT_KEEP"] === "1") console.log(`cluster data and logs kept in ${this.root}`);
    else nodeFs.rmSync(this.root, { recursive: true, force: true });
  }
}

function stringify(o: Readonly<Record<string, string | number>>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]));
}
