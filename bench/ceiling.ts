/**
 * The transport ceiling: a NO-OP grpc-js server with Rill's ProduceService shape and codecs
 * (src/rpc/wire-codec.ts, the same server options and 16 MiB windows as the broker) that answers
 * every produce request at once, as the broker would (offsets per partition, and per record on
 * the `records` path), without validating or storing anything. producer-perf run against it
 * (`--broker`) pushes exactly the bytes it pushes to the broker, so a broker result divided by
 * the ceiling result is the share of what the transport allows on that runtime.
 *
 *   bun bench/ceiling.ts [--server-runtime bun|node|deno] [producer-perf options, e.g. --records 2000000 --mode batches]
 *     runs producer-perf against a no-op server started on the given runtime (default bun)
 *   bun bench/ceiling.ts --serve
 *     runs the no-op server itself on 127.0.0.1:0 and prints {"address": ..., "msg": "noop started"}
 *
 * The server also answers AdminService.CreateTopics (with nothing) so that producer-perf's setup
 * call succeeds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminService, CreateTopicsResponseSchema } from "../src/gen/rill/v1/admin_service_pb.ts";
import {
  ProduceResponseSchema,
  ProduceService,
  ProduceStreamResponseSchema,
  type ProduceRequest,
  type ProduceResponse,
  type ProduceStreamRequest,
} from "../src/gen/rill/v1/produce_service_pb.ts";
import { addService } from "../src/rpc/grpc-service.ts";
import { createServer } from "../src/rpc/server-options.ts";
import { produceServiceCodecs } from "../src/rpc/wire-codec.ts";
import { RECORD_COUNT_OFFSET } from "../src/protocol/record-batch.ts";
import { addOptions, choice, givenArgs, scriptCommand } from "../scripts/lib/command-line.ts";
import { isMain } from "./lib.ts";
import { producerPerfDefaults } from "./producer-perf.ts";

type Runtime = "bun" | "node" | "deno";
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** The no-op answer: offsets from a per-partition counter, shaped as the broker's. */
function answer(req: ProduceRequest, next: Map<string, number>): ProduceResponse {
  const partition = req.partition ?? 0;
  const key = `${req.topic}\0${partition}`;
  const base = next.get(key) ?? 0;
  if (req.recordBatch.length > 0) {
    const count =
      req.recordBatch.length >= RECORD_COUNT_OFFSET + 4
        ? Buffer.from(req.recordBatch.buffer, req.recordBatch.byteOffset, req.recordBatch.length).readInt32BE(RECORD_COUNT_OFFSET)
        : 0;
    next.set(key, base + count);
    return create(ProduceResponseSchema, {
      topic: req.topic,
      partitions: [{ partition, baseOffset: BigInt(base), logAppendTimeMs: -1n, logStartOffset: 0n }],
    });
  }
  next.set(key, base + req.records.length);
  return create(ProduceResponseSchema, {
    topic: req.topic,
    partitions: [{ partition, baseOffset: BigInt(base), logAppendTimeMs: -1n }],
    records: req.records.map((_, i) => ({ partition, offset: BigInt(base + i) })),
  });
}

async function serve(): Promise<void> {
  const server = createServer();
  const next = new Map<string, number>();
  addService(
    server,
    ProduceService,
    {
      produce: (call: grpc.ServerUnaryCall<ProduceRequest, ProduceResponse>, cb: grpc.sendUnaryData<ProduceResponse>) =>
        cb(null, answer(call.request, next)),
      produceStream: (call: grpc.ServerDuplexStream<ProduceStreamRequest, unknown>) => {
        call.on("data", (m: ProduceStreamRequest) => {
          call.write(
            create(ProduceStreamResponseSchema, { requestId: m.requestId, result: { case: "response", value: answer(m.request!, next) } }),
          );
        });
        call.on("end", () => call.end());
        call.on("error", () => {});
      },
    } as never,
    produceServiceCodecs,
  );
  addService(server, AdminService, {
    createTopics: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, create(CreateTopicsResponseSchema, {})),
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  process.stdout.write(JSON.stringify({ address: `127.0.0.1:${port}`, msg: "noop started" }) + "\n");
  const stop = (): void => {
    server.forceShutdown();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** The command line that runs a bench/*.ts file under `runtime`. */
export function tsCommand(runtime: Runtime, file: string): string[] {
  return runtime === "bun"
    ? [path.join(root, "node_modules/.bin/bun"), file]
    : runtime === "deno"
      ? [path.join(root, "node_modules/.bin/deno"), "run", "-A", file]
      : ["node", "--import", "tsx", file];
}

/** Starts the no-op server on `runtime`; resolves with its address and a stop function. */
export async function startNoopServer(runtime: Runtime): Promise<{ address: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const cmd = tsCommand(runtime, "bench/ceiling.ts");
  const proc = spawn(cmd[0]!, [...cmd.slice(1), "--serve"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  let exited = false;
  proc.once("exit", () => (exited = true));
  try {
    const address = await new Promise<string>((resolve, reject) => {
      let buf = "";
      proc.stdout!.on("data", (d: Buffer) => {
        buf += d.toString();
        const m = /"address":"([^"]+)"/.exec(buf);
        if (m) resolve(m[1]!);
      });
      proc.once("exit", (code) => reject(new Error(`no-op server exited with ${code}`)));
      setTimeout(() => reject(new Error("no-op server did not start within 30 s")), 30_000).unref();
    });
    const stop = async (): Promise<void> => {
      if (exited) return;
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
    };
    return { address, proc, stop };
  } catch (e) {
    if (!exited) proc.kill("SIGKILL");
    throw e;
  }
}

async function main(): Promise<void> {
  // producer-perf's options (but the broker, which is the no-op server), passed on as given.
  const { broker: _broker, brokers: _brokers, ...forwarded } = producerPerfDefaults;
  const command = scriptCommand(import.meta.url)
    .option("--serve", "run the no-op server itself")
    .option("--server-runtime <runtime>", "runtime of the no-op server", choice(["bun", "node", "deno"] as const), "bun");
  addOptions(command, forwarded).parse(process.argv.slice(2), { from: "user" });
  const o = command.opts<{ serve?: boolean; serverRuntime: Runtime }>();
  if (o.serve) return serve();
  const rest = givenArgs(command, Object.keys(forwarded));
  const server = await startNoopServer(o.serverRuntime);
  try {
    const cmd = tsCommand("bun", "bench/producer-perf.ts");
    const child = spawn(cmd[0]!, [...cmd.slice(1), ...rest, "--broker", server.address], { cwd: root, stdio: "inherit" });
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    if (code !== 0) throw new Error(`producer-perf exited with ${code}`);
  } finally {
    await server.stop();
  }
}

if (isMain(import.meta.url, "ceiling.ts")) await main();
