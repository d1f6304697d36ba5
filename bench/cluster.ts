/**
 * A cluster of Rill nodes on 127.0.0.1 for the suite's replicated scenario (3 brokers, RF=3,
 * acks=ALL). `startCluster(runtime, n)` picks n free ports, starts n combined broker+controller
 * nodes at once — `rill broker start --node-id i --listen 127.0.0.1:PORTi
 * --controller-quorum 1@127.0.0.1:PORT1,...` each with a fresh data dir and one random cluster
 * secret (RILL_CLUSTER_SECRET, so members authenticate each other) —, waits until every
 * node logs "broker started" and DescribeCluster lists all n brokers unfenced, and `stop()` ends
 * them by PID.
 *
 * When the cluster cannot form it throws `ClusterUnavailable` saying why (a node exited, the
 * cluster did not form in time, or the `rill` it runs has no --controller-quorum flag), and the
 * suite reports the scenario as "not available" with that reason instead of a number. `--cluster-brokers HOST:PORT,...`
 * points the suite at a cluster started some other way instead.
 *
 *   bun bench/cluster.ts [--brokers 3] [--broker-runtime bun|node|deno]
 *     starts a cluster, prints its addresses (or why it is not available), stops it on Ctrl-C
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { AdminService, DescribeClusterRequestSchema, type DescribeClusterResponse } from "../src/gen/rill/v1/admin_service_pb.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { clientChannelOptions } from "../src/protocol/channel-options.ts";
import { creds, freePort, isMain, parseArgs } from "./lib.ts";
import { rillCommand, startBrokerProcess } from "./producer-perf.ts";

type Runtime = "bun" | "node" | "deno";
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** The cluster cannot be started; `message` says why. */
export class ClusterUnavailable extends Error {
  override name = "ClusterUnavailable";
}

/** A running cluster: its nodes' addresses and a stop function. */
export interface Cluster {
  readonly addresses: string[];
  readonly pids: number[];
  /** Each node's data dir (node i + 1 is index i). */
  readonly dataDirs: string[];
  stop(): Promise<void>;
}

/** Why `rill broker start` on `runtime` cannot start a cluster node, or null if it can. */
export function clusterSupport(runtime: Runtime): string | null {
  const cmd = rillCommand(runtime);
  const r = spawnSync(cmd[0]!, [...cmd.slice(1), "broker", "start", "--help"], { cwd: root, encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0)
    return `\`rill broker start --help\` failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split("\n").pop()}`;
  return r.stdout.includes("--controller-quorum") ? null : "`rill broker start` has no --controller-quorum option yet";
}

async function describeCluster(address: string): Promise<DescribeClusterResponse> {
  const admin = new (clientConstructor(AdminService))(address, creds(), clientChannelOptions());
  try {
    return await new Promise((resolve, reject) =>
      admin.describeCluster(create(DescribeClusterRequestSchema, {}), { deadline: Date.now() + 5000 }, (e, r) =>
        e ? reject(e) : resolve(r!),
      ),
    );
  } finally {
    admin.close();
  }
}

/** Resolves once DescribeCluster at `address` lists `n` unfenced brokers and a controller. */
async function waitFormed(address: string, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const r = await describeCluster(address);
      const up = r.brokers.filter((b) => !b.fenced).length;
      if (up >= n && r.controllerId >= 0) return;
      last = `${up} of ${n} brokers unfenced, controller ${r.controllerId}`;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new ClusterUnavailable(`the cluster did not form within ${timeoutMs / 1000} s (${last})`);
}

/**
 * Starts `n` combined nodes with one controller quorum (`args` added to each node's command line);
 * throws ClusterUnavailable if it cannot.
 */
/** Attempts of `startCluster` when a node finds its port taken. */
const PORT_ATTEMPTS = 3;

/**
 * Starts `n` combined broker+controller nodes on free ports of 127.0.0.1. A port found free can
 * be taken before its node binds it (any process on the machine may connect from it meanwhile):
 * then the cluster is stopped and started again on new ports, up to PORT_ATTEMPTS times.
 */
export async function startCluster(runtime: Runtime, n: number, timeoutMs = 60_000, args: readonly string[] = []): Promise<Cluster> {
  const unsupported = clusterSupport(runtime);
  if (unsupported) throw new ClusterUnavailable(unsupported);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(runtime, n, timeoutMs, args);
    } catch (e) {
      if (!(e instanceof ClusterUnavailable) || !e.message.includes("EADDRINUSE") || attempt >= PORT_ATTEMPTS) throw e;
      process.stderr.write(
        `cluster: a port was taken before its node bound it; starting again on new ports (${e.message.slice(0, 160)})\n`,
      );
    }
  }
}

async function startClusterOnce(runtime: Runtime, n: number, timeoutMs: number, args: readonly string[]): Promise<Cluster> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const quorum = ports.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(",");
  const env = { RILL_CLUSTER_SECRET: randomBytes(24).toString("hex") };
  const started = await Promise.allSettled(
    ports.map((p, i) =>
      startBrokerProcess(runtime, {
        listen: `127.0.0.1:${p}`,
        args: ["--node-id", String(i + 1), "--controller-quorum", quorum, ...args],
        startTimeoutMs: timeoutMs,
        env,
      }),
    ),
  );
  const nodes = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((b) => b.stop()));
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  try {
    if (failed)
      throw new ClusterUnavailable(
        `a node did not start: ${failed.reason instanceof Error ? failed.reason.message : String(failed.reason)}`,
      );
    await waitFormed(nodes[0]!.address, n, timeoutMs);
  } catch (e) {
    await stop();
    throw e;
  }
  return { addresses: nodes.map((b) => b.address), pids: nodes.map((b) => b.proc.pid!), dataDirs: nodes.map((b) => b.dataDir), stop };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), { brokers: 3, brokerRuntime: "bun" as Runtime }, import.meta.url);
  try {
    const c = await startCluster(o.brokerRuntime, o.brokers);
    console.log(JSON.stringify({ addresses: c.addresses, pids: c.pids }));
    const stop = (): void => void c.stop().then(() => process.exit(0));
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  } catch (e) {
    if (!(e instanceof ClusterUnavailable)) throw e;
    console.log(`not available: ${e.message}`);
    process.exitCode = 3;
  }
}

if (isMain(import.meta.url, "cluster.ts")) await main();
