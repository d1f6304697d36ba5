/**
 * What both Python interop tests need: the Debian tools, a process runner that does not block
 * the event loop (the broker serves from the test's process), a clean Python environment, the
 * dependency check, and stub generation from proto/.
 */
import { spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const PROTO_DIR = path.join(ROOT, "proto");
export const PYTHON = "/usr/bin/python3";
export const PROTOC = "/usr/bin/protoc";
export const GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin";
export const INSTALL_HINT =
  "run `sudo bash scripts/install-test-deps.sh` (Debian: python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc)";

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/**
 * Runs a program without blocking the event loop (the broker serves from this process), killing
 * it (by its own pid) after `timeoutMs`.
 */
export function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let child: ReturnType<typeof spawn> & { stdout: import("node:stream").Readable; stderr: import("node:stream").Readable };
    try {
      child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      resolve({ code: null, signal: null, stdout, stderr: String(e), timedOut, ms: 0 });
      return;
    }
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", (e) => (stderr += `\n${cmd}: ${e.message}`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Math.round(performance.now() - t0) });
    });
  });
}

/** Environment for /usr/bin/python3: Debian's packages only, nothing from the caller's Python setup. */
export function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONNOUSERSITE: "1", PYTHONDONTWRITEBYTECODE: "1" };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  return env;
}

/** What is missing to run the interop tests; empty when nothing is. */
export async function missingDeps(): Promise<string[]> {
  const missing: string[] = [];
  if (!nodeFs.existsSync(PROTOC)) missing.push(`${PROTOC} (Debian protobuf-compiler)`);
  if (!nodeFs.existsSync(GRPC_PYTHON_PLUGIN)) missing.push(`${GRPC_PYTHON_PLUGIN} (Debian protobuf-compiler-grpc)`);
  if (!nodeFs.existsSync(PYTHON)) {
    missing.push(`${PYTHON} (Debian python3)`);
  } else {
    const r = await run(PYTHON, ["-c", "import grpc, google.protobuf"], { timeoutMs: 20_000, env: pythonEnv() });
    if (r.code !== 0)
      missing.push(
        `Python modules grpc and google.protobuf for ${PYTHON} (Debian python3-grpcio python3-protobuf): ${r.stderr.trim().split("\n").pop()}`,
      );
  }
  return missing;
}

/** Generates the Python stubs of every proto/rill/v1/*.proto into `out` as importable packages. */
export async function generateStubs(out: string): Promise<void> {
  const protos = nodeFs
    .readdirSync(path.join(PROTO_DIR, "rill/v1"))
    .filter((f) => f.endsWith(".proto"))
    .sort()
    .map((f) => `proto/rill/v1/${f}`);
  expect(protos.length, "no .proto files under proto/rill/v1").toBeGreaterThan(0);
  const args = [
    "-Iproto",
    `--python_out=${out}`,
    `--grpc_python_out=${out}`,
    `--plugin=protoc-gen-grpc_python=${GRPC_PYTHON_PLUGIN}`,
    ...protos,
  ];
  const r = await run(PROTOC, args, { cwd: ROOT, timeoutMs: 60_000 });
  if (r.code !== 0) {
    throw new Error(
      `protoc failed (exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${PROTOC} ${args.join(" ")}\n${r.stderr}\nIf protoc is missing or too old (proto3 \`optional\` needs >= 3.15), ${INSTALL_HINT}`,
    );
  }
  // Regular packages (not namespace packages), so no other `rill` on sys.path can shadow them.
  for (const pkg of ["rill", "rill/v1"]) {
    const init = path.join(out, pkg, "__init__.py");
    expect(nodeFs.existsSync(path.dirname(init)), `protoc wrote no ${pkg}/ under ${out}`).toBe(true);
    nodeFs.writeFileSync(init, "");
  }
  for (const p of protos) {
    const base = path.basename(p, ".proto");
    for (const suffix of ["_pb2.py", "_pb2_grpc.py"]) {
      expect(nodeFs.existsSync(path.join(out, "rill/v1", base + suffix)), `protoc did not write rill/v1/${base}${suffix}`).toBe(true);
    }
  }
}

/** test/interop/python_client.py: the whole client script (TLS, Basic and mTLS flags optional). */
export const PYTHON_CLIENT = path.join(ROOT, "test/interop/python_client.py");

/** The JSON line python_client.py prints last. */
export interface ClientReport {
  ok: boolean;
  tls: boolean;
  client_cert: boolean;
  topic: string;
  partitions: number;
  produced: unknown[];
  fetched: Record<string, unknown[]>;
  bad_input: { rill_error_name: string };
}

/** The report of a python_client.py run that must have succeeded. */
export function clientReportOf(r: RunResult): ClientReport {
  const why = `exit ${r.code}${r.timedOut ? " (timed out)" : ""}\nstderr:\n${r.stderr}\nstdout:\n${r.stdout.slice(0, 2000)}`;
  expect(r.code, why).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as ClientReport;
}

/** What every successful python_client.py run over TLS shows: the whole script passed its own checks. */
export function expectFullTlsRun(report: ClientReport): void {
  expect(report.ok).toBe(true);
  expect(report.tls).toBe(true);
  expect(report.topic).toBe("orders");
  expect(report.partitions).toBe(6);
  expect(report.produced.length).toBe(3 * 8 + 2);
  expect(Object.values(report.fetched).flat().length).toBe(report.produced.length);
  expect(report.bad_input.rill_error_name).toBe("UNKNOWN_TOPIC_OR_PARTITION");
}

/** Fails with what to install when the Python toolchain is missing; otherwise generates the stubs of proto/ into `genDir`. */
export async function prepareStubs(genDir: string): Promise<void> {
  const missing = await missingDeps();
  if (missing.length > 0)
    throw new Error(`interop tests need what is missing here:\n  - ${missing.join("\n  - ")}\nTo install: ${INSTALL_HINT}`);
  nodeFs.mkdirSync(genDir, { recursive: true });
  await generateStubs(genDir);
}

/** Runs python_client.py against `address` with the stubs in `genDir` and extra `flags`. */
export function runPythonClient(address: string, genDir: string, flags: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return run(PYTHON, [PYTHON_CLIENT, address, genDir, ...flags], { cwd: ROOT, timeoutMs, env: pythonEnv() });
}
