/**
 * Issue 14's limits replayed against real broker processes (Node, from dist/: build first):
 * - with an open-file limit of 1,024 a CreateTopics of 1,500 partitions is refused naming
 *   `max.partitions` and the limit; the broker keeps serving and restarts under the same limit;
 * - a data dir holding more partition logs than the open-file limit starts (idle segments
 *   hold no descriptor) instead of failing with EMFILE;
 * - the data-dir lock dies with its process: a start right after kill -9 works, even while the
 *   killed broker is an unreaped zombie, and a lock whose pid was reused by a live process is
 *   taken over; a second live broker on the same directory is still refused;
 * - `max.connections` refuses connection N+1 while the first N keep working.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/base/clock.ts";
import { Broker } from "../../src/broker/broker.ts";
import { defaultTopicConfig } from "../../src/config/schema.ts";
import { NodeFileSystem } from "../../src/storage/fs.ts";
import { LogManager } from "../../src/storage/log-manager.ts";
import {
  CreatePartitionsRequestSchema,
  type CreatePartitionsResponse,
  CreateTopicsRequestSchema,
  type CreateTopicsResponse,
  ListTopicsRequestSchema,
} from "../../src/gen/rill/v1/admin_service_pb.ts";
import { AdminService } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { freePort } from "./cluster-harness.ts";
import { call, rmTmp, tmpDir } from "./rpc-helpers.ts";

/** The package whose dist/ is run: this one, or RILL_LIMITS_ROOT (to replay an older build). */
const ROOT = process.env["RILL_LIMITS_ROOT"] ?? path.resolve(import.meta.dirname, "../..");
const MAIN = path.join(ROOT, "dist/src/cli/main.js");

const dirs: string[] = [];
const procs = new Set<ChildProcess>();
const newDir = (): string => {
  const d = tmpDir("rill-limits-");
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  for (const d of dirs) rmTmp(d);
});

interface Started {
  readonly proc: ChildProcess;
  readonly address: string;
  /** Resolves with the exit code once the process ends, and its stderr. */
  readonly exited: Promise<{ code: number | null; stderr: string }>;
}

/**
 * Runs `rill broker start` on `dataDir` through `bash -c 'ulimit -n N; exec node ...'` and
 * resolves once it logs "broker started" (or rejects with its stderr if it exits first).
 */
async function startBroker(dataDir: string, opts: { nofile?: number; set?: readonly string[] } = {}): Promise<Started> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = [MAIN, "broker", "start", "--data-dir", dataDir, "--listen", address, ...(opts.set ?? []).flatMap((kv) => ["--set", kv])];
  const quoted = args.map((a) => `'${a}'`).join(" ");
  const script = `${opts.nofile ? `ulimit -n ${opts.nofile}; ` : ""}exec '${process.execPath}' ${quoted}`;
  const proc = spawn("bash", ["-c", script], { stdio: ["ignore", "pipe", "pipe"] });
  procs.add(proc);
  let stdout = "";
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    proc.once("exit", (code) => {
      procs.delete(proc);
      resolve({ code, stderr });
    }),
  );
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
      if (stdout.includes('"broker started"')) resolve();
    });
    void exited.then(({ code }) => reject(new Error(`broker exited (${code}) before starting: ${stderr.trim()}`)));
  });
  return { proc, address, exited };
}

/** Starts a broker that must fail; resolves with its stderr. */
async function failedStart(dataDir: string): Promise<string> {
  try {
    const b = await startBroker(dataDir);
    b.proc.kill("SIGKILL");
    return "started";
  } catch (e) {
    return (e as Error).message;
  }
}

/** An Admin client on its own connection (grpc-js would otherwise share one per target). */
function adminClient(address: string): grpc.Client {
  const Admin = clientConstructor(AdminService);
  return new Admin(address, grpc.credentials.createInsecure(), { ...clientChannelOptions(), "grpc.use_local_subchannel_pool": 1 });
}

async function createTopic(address: string, name: string, partitions: number): Promise<CreateTopicsResponse["topics"][number]> {
  const c = adminClient(address);
  try {
    const res = await call<unknown, CreateTopicsResponse>(
      c,
      "createTopics",
      create(CreateTopicsRequestSchema, { topics: [{ name, partitions }] }),
    );
    return res.topics[0]!;
  } finally {
    c.close();
  }
}

async function stop(b: Started): Promise<void> {
  b.proc.kill("SIGTERM");
  await b.exited;
}

describe("limits (issue 14)", () => {
  it("with ulimit -n 1024, a create past max.partitions is refused naming it and the limit; the broker serves and restarts", async () => {
    const dataDir = newDir();
    const b = await startBroker(dataDir, { nofile: 1024 });
    const big = await createTopic(b.address, "big", 1500);
    expect(big.error?.name).toBe("INVALID_PARTITIONS");
    expect(big.error?.message).toMatch(/max\.partitions/);
    expect(big.error?.message).toMatch(/open-file limit 1024/);
    // Still serving: a topic within the limit is created, and grown up to the limit but not past it.
    const ok = await createTopic(b.address, "small", 100);
    expect(ok.error).toBeUndefined();
    const c = adminClient(b.address);
    const grow = await call<unknown, CreatePartitionsResponse>(
      c,
      "createPartitions",
      create(CreatePartitionsRequestSchema, { topics: [{ name: "small", count: 1200 }] }),
    );
    expect(grow.topics[0]!.error?.name).toBe("INVALID_PARTITIONS");
    expect(grow.topics[0]!.error?.message).toMatch(/max\.partitions/);
    const listed = await call<unknown, { topics: Array<{ name: string; partitions: number }> }>(
      c,
      "listTopics",
      create(ListTopicsRequestSchema, {}),
    );
    expect(listed.topics.find((t) => t.name === "small")?.partitions).toBe(100);
    c.close();
    await stop(b);
    const again = await startBroker(dataDir, { nofile: 1024 });
    expect((await createTopic(again.address, "after-restart", 10)).error).toBeUndefined();
    await stop(again);
  }, 60_000);

  it("a data dir holding 600 partition logs starts and serves under ulimit -n 512", async () => {
    const dataDir = newDir();
    // One log laid down and copied (creating 600 through the broker takes far longer).
    const logs = LogManager.open({
      fs: new NodeFileSystem(),
      dataDir,
      clock: systemClock,
      topicConfig: () => undefined,
      tailCacheBytes: 1024,
      retentionCheckIntervalMs: 60_000,
      cleanerBackoffMs: 60_000,
      cleanerEnable: false,
      pause: () => Promise.resolve(),
      pid: process.pid,
      isProcessAlive: () => false,
      fileHandlesMax: 16,
    });
    logs.create("wide", 0, defaultTopicConfig);
    await logs.close();
    for (let p = 1; p < 600; p++) nodeFs.cpSync(path.join(dataDir, "wide-0"), path.join(dataDir, `wide-${p}`), { recursive: true });
    // Before the handle pool every segment kept its descriptor open: EMFILE at startup.
    const b = await startBroker(dataDir, { nofile: 512 });
    expect((await createTopic(b.address, "after", 4)).error).toBeUndefined();
    await stop(b);
  }, 60_000);

  it("a broker starts on its data dir right after the previous one was killed -9 (even unreaped), and over a reused pid", async () => {
    const dataDir = newDir();
    // The first broker's parent never reaps it: after kill -9 it stays a zombie with its pid.
    const port = await freePort();
    const parent = spawn(
      "python3",
      [
        "-c",
        "import subprocess,sys,time; p=subprocess.Popen(sys.argv[1:]); print(p.pid, flush=True); time.sleep(60)",
        process.execPath,
        MAIN,
        "broker",
        "start",
        "--data-dir",
        dataDir,
        "--listen",
        `127.0.0.1:${port}`,
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    procs.add(parent);
    const pid = await new Promise<number>((resolve) => parent.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
    const lock = path.join(dataDir, ".lock");
    for (let i = 0; i < 200 && !nodeFs.existsSync(path.join(dataDir, "meta.properties")); i++) await new Promise((r) => setTimeout(r, 50));
    expect(nodeFs.readFileSync(lock, "utf8")).toMatch(new RegExp(`^${pid}\\b`));
    process.kill(pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 100));
    expect(nodeFs.readFileSync(`/proc/${pid}/stat`, "utf8")).toMatch(/\) Z /); // a zombie, pid still taken
    const b = await startBroker(dataDir);
    await stop(b);
    parent.kill("SIGKILL");
    // A lock naming a live process (this test runner) that started at another time: its pid was reused.
    nodeFs.writeFileSync(lock, `${process.pid} 1\n`);
    const c = await startBroker(dataDir);
    await stop(c);
  }, 60_000);

  it("a second live broker on the same data dir is refused", async () => {
    const dataDir = newDir();
    const b = await startBroker(dataDir);
    const second = await failedStart(dataDir);
    expect(second).toMatch(/locked by running process/);
    expect(second).not.toMatch(/\n\s+at /); // one line, no stack trace
    await stop(b);
  }, 60_000);
});

describe("max.connections", () => {
  it("refuses connection N+1 while the first N keep working, and counts it", async () => {
    const broker = await Broker.start({ dataDir: newDir(), listen: "127.0.0.1:0", config: { maxConnections: 2, metricsPort: 0 } });
    try {
      const list = (c: grpc.Client, ms = 3000) => call(c, "listTopics", create(ListTopicsRequestSchema, {}), ms);
      const first = adminClient(broker.address);
      const second = adminClient(broker.address);
      await list(first);
      await list(second);
      const third = adminClient(broker.address);
      const refused = await list(third, 1500).then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
      // grpc-js answers a GOAWAY with ENHANCE_YOUR_CALM as RESOURCE_EXHAUSTED.
      expect(refused?.code, refused?.message).toBe(grpc.status.RESOURCE_EXHAUSTED);
      await list(first);
      await list(second);
      const metrics = await fetch(`http://127.0.0.1:${broker.metrics!.port}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/^rill_connections_open 2$/m);
      expect(Number(/^rill_connections_refused_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
      // A freed slot admits a new connection.
      first.close();
      third.close();
      await new Promise((r) => setTimeout(r, 200));
      const fourth = adminClient(broker.address);
      await list(fourth);
      fourth.close();
      second.close();
    } finally {
      await broker.close();
    }
  }, 30_000);
});
