/**
 * What authorization costs a producer: producer-perf against two brokers side by side on
 * 127.0.0.1, one with `authorizer.enable=false` and one with `authorizer.enable=true` and ACLs
 * (User:ANONYMOUS may WRITE, CREATE and DESCRIBE topics, among `--other-acls` bindings of other
 * principals), runs interleaved (off, on, on, off, ...), and the ratio of the medians
 * (ACLs on ÷ off, records/s), and of records per CPU-second of the broker (Linux /proc), which
 * other load on a shared machine disturbs far less than the wall clock. Authentication is off on
 * both, so only the ACL checks differ.
 *
 *   bun bench/acl-perf.ts [--runs 5] [--records 1000000] [--record-size 100] [--other-acls 1000]
 *     [--authorizer true|false] [--broker-runtime bun|node|deno] [--json FILE]
 *
 * `--authorizer false` is the control: the second broker is set up the same way (ACLs written,
 * restarted on its data dir) but serves without the authorizer, so the ratio shows what the
 * setup alone changes.
 *
 * The ACL broker is started once without the authorizer to write its ACLs through CreateAcls,
 * then restarted on the same data dir with it. Both brokers are stopped by PID at the end.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { AdminService } from "../src/gen/rill/v1/admin_service_pb.ts";
import {
  AclOperation,
  AclPatternType,
  AclPermission,
  AclResourceType,
  CreateAclsRequestSchema,
  type CreateAclsResponse,
} from "../src/gen/rill/v1/security_pb.ts";
import { clientChannelOptions } from "../src/protocol/channel-options.ts";
import { clientConstructor } from "../src/protocol/grpc-service.ts";
import { cpuSecondsOf, creds, isMain, loadAverage, median, parseArgs } from "./lib.ts";
import { producerPerfDefaults, rillCommand, runProducerPerf } from "./producer-perf.ts";

export const aclPerfDefaults = {
  runs: 5,
  records: 1_000_000,
  recordSize: 100,
  otherAcls: 1000,
  /** false: a control run, the second broker set up the same way (ACLs written, restarted) but without the authorizer. */
  authorizer: true,
  brokerRuntime: "bun" as "bun" | "node" | "deno",
  json: "",
};

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

interface Running {
  readonly address: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** `rill broker start` on `dataDir` with `config` (key=value lines); resolves once it logs "broker started". */
async function startBroker(runtime: "bun" | "node" | "deno", dataDir: string, config: Record<string, string>): Promise<Running> {
  const configFile = path.join(dataDir, "..", `${path.basename(dataDir)}.conf`);
  nodeFs.writeFileSync(
    configFile,
    Object.entries(config)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(""),
  );
  const cmd = rillCommand(runtime);
  const proc: ChildProcess = spawn(
    cmd[0]!,
    [...cmd.slice(1), "broker", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--config", configFile],
    { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
  );
  let exited = false;
  proc.once("exit", () => (exited = true));
  const stop = async (): Promise<void> => {
    if (!exited) {
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
    }
  };
  const address = await new Promise<string>((resolve, reject) => {
    let buf = "";
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const m = /"address":"([^"]+)"[^\n]*"broker started"|"broker started"[^\n]*"address":"([^"]+)"/.exec(buf);
      if (m) {
        proc.stdout!.off("data", onData);
        proc.stdout!.resume();
        resolve((m[1] ?? m[2])!);
      }
    };
    proc.stdout!.on("data", onData);
    proc.once("exit", (code) => reject(new Error(`broker exited with ${code}`)));
    setTimeout(() => reject(new Error("broker did not start within 30 s")), 30_000).unref();
  }).catch(async (e: unknown) => {
    await stop();
    throw e;
  });
  return { address, pid: proc.pid!, stop };
}

function binding(principal: string, type: AclResourceType, name: string, op: AclOperation, pattern = AclPatternType.LITERAL) {
  return {
    principal,
    host: "*",
    resourceType: type,
    resourceName: name,
    patternType: pattern,
    operation: op,
    permission: AclPermission.ALLOW,
  };
}

async function createAcls(address: string, others: number): Promise<void> {
  const admin = new (clientConstructor(AdminService))(address, creds(), clientChannelOptions());
  const anon = "User:ANONYMOUS";
  const creations = [
    binding(anon, AclResourceType.TOPIC, "perf-", AclOperation.WRITE, AclPatternType.PREFIXED),
    binding(anon, AclResourceType.TOPIC, "perf-", AclOperation.CREATE, AclPatternType.PREFIXED),
    binding(anon, AclResourceType.TOPIC, "perf-", AclOperation.DESCRIBE, AclPatternType.PREFIXED),
    ...Array.from({ length: others }, (_, i) => binding(`User:other-${i}`, AclResourceType.TOPIC, `t-${i}`, AclOperation.READ)),
  ];
  try {
    // CreateAcls takes at most 1000 bindings a request.
    for (let i = 0; i < creations.length; i += 500) {
      const chunk = creations.slice(i, i + 500);
      await new Promise<void>((resolve, reject) =>
        admin.createAcls(create(CreateAclsRequestSchema, { creations: chunk }), (e, r: CreateAclsResponse | undefined) => {
          const failed = r?.results.find((x) => x.error);
          if (e || failed) reject(e ?? new Error(failed?.error?.message));
          else resolve();
        }),
      );
    }
  } finally {
    admin.close();
  }
}

export async function runAclPerf(o: typeof aclPerfDefaults): Promise<Record<string, unknown>> {
  const base = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-acl-perf-"));
  const offDir = path.join(base, "off");
  const onDir = path.join(base, "on");
  const running: Running[] = [];
  try {
    const setup = await startBroker(o.brokerRuntime, onDir, {});
    await createAcls(setup.address, o.otherAcls);
    await setup.stop();
    const off = await startBroker(o.brokerRuntime, offDir, {});
    running.push(off);
    const on = await startBroker(o.brokerRuntime, onDir, { "authorizer.enable": String(o.authorizer) });
    running.push(on);
    const rates: Record<"off" | "on", number[]> = { off: [], on: [] };
    // Records per CPU-second of the broker: what the checks cost in work, less disturbed by other load than the wall clock.
    const perCpu: Record<"off" | "on", number[]> = { off: [], on: [] };
    for (let i = 0; i < o.runs; i++) {
      const order: ("off" | "on")[] = i % 2 === 0 ? ["off", "on"] : ["on", "off"];
      for (const which of order) {
        const pid = (which === "off" ? off : on).pid;
        const cpu0 = cpuSecondsOf(pid);
        const r = await runProducerPerf({
          ...producerPerfDefaults,
          records: o.records,
          recordSize: o.recordSize,
          brokers: which === "off" ? off.address : on.address,
          brokerRuntime: o.brokerRuntime,
        });
        if ((r["errors"] as number) > 0) throw new Error(`${which}: ${String(r["errors"])} failed requests: ${String(r["firstError"])}`);
        rates[which].push(r["recordsPerSec"] as number);
        const cpu = cpuSecondsOf(pid) - cpu0;
        perCpu[which].push(o.records / cpu);
        console.log(
          `run ${i + 1} ACLs ${which}: ${Math.round(r["recordsPerSec"] as number)} records/s, broker ${cpu.toFixed(2)} CPU-s (${Math.round(o.records / cpu)} records per CPU-second)`,
        );
      }
    }
    return {
      tool: "acl-perf",
      ...o,
      recordsPerSecOff: rates.off,
      recordsPerSecOn: rates.on,
      medianOff: median(rates.off),
      medianOn: median(rates.on),
      ratio: median(rates.on) / median(rates.off),
      recordsPerBrokerCpuSecondOff: perCpu.off,
      recordsPerBrokerCpuSecondOn: perCpu.on,
      cpuRatio: median(perCpu.on) / median(perCpu.off),
      loadAverage: loadAverage(),
    };
  } finally {
    for (const r of running) await r.stop();
    nodeFs.rmSync(base, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url, "acl-perf.ts")) {
  const o = parseArgs(process.argv.slice(2), aclPerfDefaults, import.meta.url);
  const r = await runAclPerf(o);
  console.log(
    `ACLs on ÷ off (median records/s of ${o.runs} interleaved runs): ${Math.round(r["medianOn"] as number)} ÷ ${Math.round(r["medianOff"] as number)} = ${(r["ratio"] as number).toFixed(3)}; per broker CPU-second ${(r["cpuRatio"] as number).toFixed(3)}; load ${(r["loadAverage"] as number[]).join(" ")}`,
  );
  if (o.json) nodeFs.writeFileSync(o.json, `${JSON.stringify(r, null, 2)}\n`);
}
