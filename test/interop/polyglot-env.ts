/**
 * Builds the Go and C++ order clients (examples/go/orders, examples/cpp/orders.cpp) from stubs
 * generated from proto/ at test time, with Debian's toolchains only (../shared/PEERS.md):
 *
 * - Go: the README's commands: `protoc-gen-go` + `protoc-gen-go-grpc` into a temporary GOPATH,
 *   built in GOPATH mode against Debian's Go sources in /usr/share/gocode (grpc-go 1.33; module
 *   mode would need modules Debian does not package). Compiled packages are cached by Go itself
 *   in GOCACHE under test-output/interop-go (gitignored): a warm build only links.
 * - C++: `protoc --cpp_out` + `grpc_cpp_plugin`; each message file compiled on its own and the
 *   three services' gRPC files as one unit (two compilers at a time, -O0: the stubs' speed does
 *   not matter here), linked against Debian's libgrpc++.
 *   The objects of the stubs are cached under test-output/interop-cpp keyed by a hash of the
 *   protos, the compiler and the library versions, and the linked program keyed by that and the
 *   program's source: a warm run builds nothing.
 *
 * Nothing generated is committed. Missing tools FAIL with what to install (never skip): run
 * scripts/install-test-deps.sh.
 */
import { createHash } from "node:crypto";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { PROTOC, ROOT, type RunResult, run } from "./python-env.ts";

/** The protos the order clients use: the three services they call and what those import. */
export const CLIENT_PROTOS = ["common", "security", "admin_service", "produce_service", "group_service"].map(
  (p) => `proto/rill/v1/${p}.proto`,
);

const GO = "/usr/bin/go";
const GOCODE = "/usr/share/gocode";
const GO_PLUGINS = ["/usr/bin/protoc-gen-go", "/usr/bin/protoc-gen-go-grpc"];
const GO_CACHE = path.join(ROOT, "test-output/interop-go/cache");
const GO_HINT =
  "run `sudo bash scripts/install-test-deps.sh` (Debian: golang-go golang-google-grpc-dev golang-google-protobuf-dev protoc-gen-go protoc-gen-go-grpc protobuf-compiler)";

const GXX = "/usr/bin/g++";
const GRPC_CPP_PLUGIN = "/usr/bin/grpc_cpp_plugin";
const CPP_CACHE = path.join(ROOT, "test-output/interop-cpp");
const CPP_HINT =
  "run `sudo bash scripts/install-test-deps.sh` (Debian: libgrpc++-dev protobuf-compiler-grpc protobuf-compiler pkg-config g++)";
/** The services whose gRPC stubs the program calls (common and security hold messages only). */
const CPP_SERVICES = ["admin_service", "produce_service", "group_service"];
const CPP_STUB_FLAGS = ["-std=c++17", "-O0", "-g0"];
const CPP_PROGRAM_FLAGS = ["-std=c++17", "-O1", "-g0", "-Wall", "-Wextra"];

/** A built client program and how long building it took. */
export interface Built {
  bin: string;
  ms: number;
  /** What the build did: "cold", "warm" (cached parts reused) or "cached" (nothing built). */
  how: string;
}

function failed(what: string, r: RunResult, hint: string): Error {
  return new Error(
    `${what} failed (exit ${r.code}${r.timedOut ? ", timed out" : ""}):\n${r.stderr.slice(0, 6000)}\n${r.stdout.slice(0, 2000)}\nIf a tool is missing, ${hint}`,
  );
}

function requireFiles(files: readonly string[], hint: string): void {
  const missing = files.filter((f) => !nodeFs.existsSync(f));
  if (missing.length > 0) throw new Error(`interop tests need what is missing here:\n  - ${missing.join("\n  - ")}\nTo install: ${hint}`);
}

async function protoc(args: readonly string[], hint: string): Promise<void> {
  const r = await run(PROTOC, ["-Iproto", ...args, ...CLIENT_PROTOS], { cwd: ROOT, timeoutMs: 60_000 });
  if (r.code !== 0) throw failed(`${PROTOC} ${args.join(" ")}`, r, hint);
}

/**
 * The README's commands that generate the Go stubs and build examples/go/orders (its ```sh block
 * with `--go_out`, up to the `go build` line), continuation lines joined, with `gen/go` standing
 * for `gopath`. The README's recipe is the one the test runs, so it cannot drift.
 */
export function readmeGoBuild(gopath: string): string[] {
  const readme = nodeFs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("--go_out"));
  if (block === undefined) throw new Error("README.md has no ```sh block with the Go build (protoc --go_out ... go build)");
  const lines = block.replace(/\\\n\s*/g, "").split("\n");
  const last = lines.findIndex((l) => /\bgo build\b/.test(l));
  if (last < 0) throw new Error(`README.md's Go block has no \`go build\` line:\n${block}`);
  return lines.slice(0, last + 1).map((l) => l.replaceAll("$PWD/gen/go", gopath).replaceAll("gen/go", gopath));
}

/**
 * Generates the Go stubs into `gopath`/src and builds examples/go/orders as `gopath`/orders, by
 * the README's commands (`readmeGoBuild`), with Go's build cache in test-output.
 */
export async function buildGo(gopath: string): Promise<Built> {
  requireFiles(
    [
      GO,
      PROTOC,
      ...GO_PLUGINS,
      `${GOCODE}/src/google.golang.org/grpc/server.go`,
      `${GOCODE}/src/google.golang.org/protobuf/proto/proto.go`,
    ],
    GO_HINT,
  );
  const t0 = performance.now();
  const warm = nodeFs.existsSync(GO_CACHE);
  nodeFs.mkdirSync(GO_CACHE, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, GOPROXY: "off", GOFLAGS: "", GOCACHE: GO_CACHE };
  for (const command of readmeGoBuild(gopath)) {
    const r = await run("bash", ["-euc", command], { cwd: ROOT, timeoutMs: 300_000, env });
    if (r.code !== 0) throw failed(`README's \`${command}\``, r, GO_HINT);
  }
  const bin = path.join(gopath, "orders");
  if (!nodeFs.existsSync(bin)) throw new Error(`the README's Go build wrote no ${bin}`);
  return { bin, ms: Math.round(performance.now() - t0), how: warm ? "warm" : "cold" };
}

/** `pkg-config --cflags` (or `--libs`) of grpc++ and protobuf, split into arguments. */
async function pkgConfig(what: "--cflags" | "--libs"): Promise<string[]> {
  const r = await run("pkg-config", [what, "grpc++", "protobuf"], { timeoutMs: 20_000 });
  if (r.code !== 0) throw failed(`pkg-config ${what} grpc++ protobuf`, r, CPP_HINT);
  return r.stdout.trim().split(/\s+/).filter(Boolean);
}

/** Runs `jobs` at most `parallel` at a time. */
async function pool(jobs: ReadonlyArray<() => Promise<void>>, parallel: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(parallel, jobs.length) }, worker));
}

function sha(parts: readonly (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex").slice(0, 16);
}

/** Removes the entries of `dir` starting with `prefix` other than `keep` (one cached build of each kind). */
function pruneCache(dir: string, prefix: string, keep: string): void {
  for (const e of nodeFs.readdirSync(dir))
    if (e.startsWith(prefix) && e !== keep) nodeFs.rmSync(path.join(dir, e), { recursive: true, force: true });
}

/** Builds examples/cpp/orders.cpp against C++ stubs generated from proto/; returns the program. */
export async function buildCpp(): Promise<Built> {
  requireFiles([GXX, PROTOC, GRPC_CPP_PLUGIN, "/usr/include/grpcpp/grpcpp.h"], CPP_HINT);
  const t0 = performance.now();
  const [cflags, libs] = [await pkgConfig("--cflags"), await pkgConfig("--libs")];
  const versions = await Promise.all([
    run(GXX, ["--version"], { timeoutMs: 20_000 }),
    run(PROTOC, ["--version"], { timeoutMs: 20_000 }),
    run("pkg-config", ["--modversion", "grpc++", "protobuf"], { timeoutMs: 20_000 }),
  ]);
  const protoKey = sha([
    ...versions.map((v) => v.stdout),
    ...cflags,
    ...CPP_STUB_FLAGS,
    ...CLIENT_PROTOS.map((p) => nodeFs.readFileSync(path.join(ROOT, p))),
  ]);
  const program = path.join(ROOT, "examples/cpp/orders.cpp");
  const binKey = sha([protoKey, ...libs, ...CPP_PROGRAM_FLAGS, nodeFs.readFileSync(program)]);
  nodeFs.mkdirSync(CPP_CACHE, { recursive: true });
  const binDir = path.join(CPP_CACHE, `bin-${binKey}`);
  const bin = path.join(binDir, "orders-cpp");
  if (nodeFs.existsSync(bin)) return { bin, ms: Math.round(performance.now() - t0), how: "cached" };

  // The stubs: generated and compiled once per protoKey.
  const gen = path.join(CPP_CACHE, `gen-${protoKey}`);
  // The gRPC stubs as one unit: they share gRPC's headers, parsed once (about 40% less CPU than
  // three units). The messages' files cannot be joined so (each has file-local `schemas`).
  const grpcUnit = path.join(gen, "rill/v1/services.grpc.pb");
  const stubObjects = [...CLIENT_PROTOS.map((p) => path.join(gen, "rill/v1", `${path.basename(p, ".proto")}.pb`)), grpcUnit];
  const warm = nodeFs.existsSync(path.join(gen, "done"));
  if (!warm) {
    nodeFs.rmSync(gen, { recursive: true, force: true });
    nodeFs.mkdirSync(gen, { recursive: true });
    await protoc([`--cpp_out=${gen}`, `--grpc_out=${gen}`, `--plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN}`], CPP_HINT);
    nodeFs.writeFileSync(`${grpcUnit}.cc`, CPP_SERVICES.map((s) => `#include "rill/v1/${s}.grpc.pb.cc"\n`).join(""));
    const compile = (base: string) => async (): Promise<void> => {
      const r = await run(GXX, [...CPP_STUB_FLAGS, `-I${gen}`, ...cflags, "-c", `${base}.cc`, "-o", `${base}.o`], {
        cwd: ROOT,
        timeoutMs: 300_000,
      });
      if (r.code !== 0) throw failed(`g++ -c ${path.relative(gen, base)}.cc`, r, CPP_HINT);
    };
    // The biggest first, so the two workers end together.
    await pool([grpcUnit, ...stubObjects.filter((o) => o !== grpcUnit)].map(compile), 2);
    nodeFs.writeFileSync(path.join(gen, "done"), "");
  }

  // The program, compiled and linked into a fresh directory, renamed into place when complete.
  const building = `${binDir}.tmp-${process.pid}`;
  nodeFs.rmSync(building, { recursive: true, force: true });
  nodeFs.mkdirSync(building, { recursive: true });
  const object = path.join(building, "orders.o");
  let r = await run(GXX, [...CPP_PROGRAM_FLAGS, `-I${gen}`, ...cflags, "-c", program, "-o", object], { cwd: ROOT, timeoutMs: 300_000 });
  if (r.code !== 0) throw failed("g++ -c examples/cpp/orders.cpp", r, CPP_HINT);
  if (r.stderr.trim() !== "") throw new Error(`g++ warned on examples/cpp/orders.cpp:\n${r.stderr}`);
  r = await run(GXX, ["-o", path.join(building, "orders-cpp"), object, ...stubObjects.map((o) => `${o}.o`), ...libs, "-pthread"], {
    cwd: ROOT,
    timeoutMs: 120_000,
  });
  if (r.code !== 0) throw failed("linking orders-cpp", r, CPP_HINT);
  nodeFs.rmSync(object);
  nodeFs.rmSync(binDir, { recursive: true, force: true });
  nodeFs.renameSync(building, binDir);
  pruneCache(CPP_CACHE, "gen-", `gen-${protoKey}`);
  pruneCache(CPP_CACHE, "bin-", `bin-${binKey}`);
  return { bin, ms: Math.round(performance.now() - t0), how: warm ? "warm" : "cold" };
}
