/**
 * `rill bench`: the benchmark suite and its tools from the source tree's `bench/` folder, each
 * run as a child process under the package's Bun (the suite's clients always run on Bun; the
 * broker's runtime is `--broker-runtime`). Output streams through; the exit code is the tool's.
 *
 *   rill bench [produce|consume|latency|peers|cluster|kafka|sweep|partitions ...] [--quick] [--runs N] ...
 *       the suite (`npm run bench`, bench/suite.ts): the named scenario groups, or all
 *   rill bench producer [--records N --record-size B --throughput R --acks all|leader|none
 *                        --compression none|lz4 --partitions N --producers N --brokers H:P,...
 *                        --protocol grpc|kafka]
 *   rill bench producer --sweep [--local-brokers 1|3 --acks all --steps N --step-seconds S
 *                        --max-seconds S --warmup-seconds S --extra-rates R,... --svg FILE ...]
 *       the maximum, then a ladder of offered rates (bench/producer-sweep.ts): request and
 *       end-to-end latency percentiles against throughput, as a table, JSON and an SVG chart
 *   rill bench consumer [--records N --record-size B --mode fetch|subscribe --runs N ...]
 *   rill bench e2e      [--rate R --seconds S --record-size B ...]
 *
 * Each tool starts its own broker on 127.0.0.1 with a fresh data dir unless `--brokers` names
 * running ones. Only options given are passed on, so each tool's own defaults apply (see
 * bench/README.md).
 */

import { spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { CliError, type Io } from "./output.ts";
import { intIn, oneOf } from "./parse.ts";

const INT32_MAX = 0x7fffffff;

/** Scenario groups of the suite, by the name `rill bench` takes (the suite's own name differs for latency). */
export const BENCH_SCENARIOS: Readonly<Record<string, string>> = {
  produce: "produce",
  consume: "consume",
  latency: "e2e",
  peers: "peers",
  cluster: "cluster",
  kafka: "kafka",
  sweep: "sweep",
  partitions: "partitions",
};

/** The package root (this file is src/cli/bench-command.ts). */
function packageRoot(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
}

/** The Bun that runs the tools: this process's own when it is Bun, else the package's. */
function bunPath(root: string): string {
  if ((process.versions as Record<string, string | undefined>)["bun"]) return process.execPath;
  const local = path.join(root, "node_modules/.bin/bun");
  return nodeFs.existsSync(local) ? local : "bun";
}

/** Runs `bun bench/<file> args` in the package root, streaming its output to `io`. */
async function runBenchFile(io: Io, file: string, args: readonly string[]): Promise<void> {
  const root = packageRoot();
  if (!nodeFs.existsSync(path.join(root, "bench", file))) {
    throw new CliError(`bench: ${path.join(root, "bench", file)} not found (rill bench needs the source tree's bench/ folder)`);
  }
  const child = spawn(bunPath(root), [path.join("bench", file), ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: io.env as NodeJS.ProcessEnv,
  });
  child.stdout.on("data", (d: Buffer) => io.stdout.write(d));
  child.stderr.on("data", (d: Buffer) => io.stderr.write(d));
  const stopChild = (): void => void child.kill("SIGTERM");
  process.once("SIGINT", stopChild);
  process.once("SIGTERM", stopChild);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", (e) => reject(new CliError(`bench: cannot run ${file}: ${e.message}`)));
      child.once("close", (c, s) => resolve([c, s]));
    });
    if (code !== 0) throw new CliError(`bench: ${file} ${signal ? `was stopped by ${signal}` : `exited with code ${code}`}`);
  } finally {
    process.off("SIGINT", stopChild);
    process.off("SIGTERM", stopChild);
  }
}

/** Options whose value is a path: made absolute here, since the tools run in the package root. */
const PATH_OPTIONS = new Set(["json", "out", "svg"]);

/**
 * `--kebab-case value` for every option the user gave (defaults left to the tool; a switch
 * becomes `--name true|false`, as the tools parse it).
 */
function givenArgs(cmd: Command, except: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(cmd.opts())) {
    if (value === undefined || cmd.getOptionValueSource(key) !== "cli" || except.includes(key)) continue;
    const v = PATH_OPTIONS.has(key) && String(value) !== "" ? path.resolve(String(value)) : String(value);
    out.push(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, v);
  }
  return out;
}

/** A number > 0 or -1 (no limit). */
function rate(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n === -1 || (Number.isFinite(n) && n > 0)))
    throw new InvalidArgumentError(`expected records/s > 0 or -1 (no limit), got "${value}"`);
  return n;
}

/** A positive number (a factor). */
function positive(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return n;
}

/** HOST:PORT[,HOST:PORT...]. */
function addresses(value: string): string {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.some((p) => !/^(\[[^\]]+\]|[^\s:,[\]]+):\d{1,5}$/.test(p)))
    throw new InvalidArgumentError(`expected HOST:PORT[,HOST:PORT...], got "${value}"`);
  return parts.join(",");
}

/** One or more of bun, node, deno, comma-separated. */
function runtimes(value: string): string {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !["bun", "node", "deno"].includes(p)))
    throw new InvalidArgumentError(`expected bun, node or deno (comma-separated), got "${value}"`);
  return parts.join(",");
}

const brokerRuntime = (): Option =>
  new Option("--broker-runtime <runtime>", "runtime of the broker it starts").argParser(oneOf(["bun", "node", "deno"] as const));
const brokers = (): Option => new Option("--brokers <host:port,...>", "use these running brokers; none is started").argParser(addresses);
const json = (): Option => new Option("--json <file>", "write the full result as JSON");
const count = (flags: string, what: string): Option => new Option(flags, what).argParser(intIn(1, Number.MAX_SAFE_INTEGER));

/** The suite: positional scenario names become `--only`. */
async function suite(io: Io, scenarios: readonly string[], cmd: Command): Promise<void> {
  const unknown = scenarios.filter((s) => !(s in BENCH_SCENARIOS));
  if (unknown.length)
    cmd.error(
      `unknown scenario ${unknown.map((s) => `"${s}"`).join(", ")} (scenarios: ${Object.keys(BENCH_SCENARIOS).join(", ")}; tools: producer, consumer, e2e)`,
      { exitCode: 2 },
    );
  const args = givenArgs(cmd);
  if (scenarios.length > 0) args.push("--only", [...new Set(scenarios.map((s) => BENCH_SCENARIOS[s]!))].join(","));
  await runBenchFile(io, "suite.ts", args);
}

/** Options of `rill bench producer` that only the sweep takes, and those it does not take. */
const SWEEP_ONLY = [
  "localBrokers",
  "steps",
  "stepSeconds",
  "warmupSeconds",
  "maxSeconds",
  "extraRates",
  "lingerMs",
  "inFlightMax",
  "svg",
  "title",
];
const NOT_SWEEP = ["records", "warmupRecords", "throughput", "mode", "protocol"];

/** `rill bench producer`: producer-perf, or with `--sweep` producer-sweep; options of the other are refused. */
async function producer(io: Io, cmd: Command): Promise<void> {
  const given = (keys: readonly string[]): string[] =>
    keys.filter((k) => cmd.getOptionValueSource(k) === "cli").map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  const sweep = cmd.opts()["sweep"] === true;
  const wrong = given(sweep ? NOT_SWEEP : SWEEP_ONLY);
  if (wrong.length)
    cmd.error(sweep ? `--sweep does not take ${wrong.join(", ")}` : `${wrong.join(", ")}: only with --sweep`, { exitCode: 2 });
  if (sweep) await runBenchFile(io, "producer-sweep.ts", givenArgs(cmd, ["sweep"]));
  else await runBenchFile(io, "producer-perf.ts", givenArgs(cmd));
}

/** A number of seconds >= 0 (fractions allowed). */
function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > 3600)
    throw new InvalidArgumentError(`expected seconds in [0, 3600], got "${value}"`);
  return n;
}

/** Records/s > 0, comma-separated. */
function rates(value: string): string {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.some((p) => p === "" || !(Number(p) > 0) || !Number.isFinite(Number(p))))
    throw new InvalidArgumentError(`expected records/s > 0, comma-separated, got "${value}"`);
  return parts.join(",");
}

/** Adds `rill bench` and its tool subcommands to `program`. */
export function registerBench(program: Command, io: Io): void {
  const bench = program
    .command("bench")
    .description(
      "benchmarks: the suite (scenarios: produce, consume, latency, peers, cluster, kafka, sweep, partitions; default all) or one tool (producer, consumer, e2e)",
    )
    .argument("[scenario...]", "suite scenario groups to run")
    .option("--quick", "a quarter of the records, one run each")
    .addOption(count("--runs <n>", "runs per figure (the median is reported)"))
    .addOption(new Option("--broker-runtime <runtimes>", "broker runtime(s), comma-separated: bun, node, deno").argParser(runtimes))
    .addOption(new Option("--records-scale <x>", "multiply every record count by x").argParser(positive))
    .option("--no-peers", "skip Redis, NATS and RabbitMQ even when installed")
    .addOption(new Option("--cluster-brokers <host:port,...>", "a running 3-broker cluster for the cluster scenario").argParser(addresses))
    .option("--out <dir>", "where the JSON, Markdown table and chart go (default bench/results)")
    .option("--label <name>", "basename of the table and chart (default latest)")
    .action(async (scenarios: string[], _o: object, cmd: Command) => suite(io, scenarios, cmd));

  bench
    .command("producer")
    .description("producer throughput and request latency (kafka-producer-perf-test)")
    .addOption(count("--records <n>", "records to send"))
    .addOption(
      new Option("--warmup-records <n>", "records sent first by the same producers, untimed").argParser(intIn(0, Number.MAX_SAFE_INTEGER)),
    )
    .addOption(count("--record-size <bytes>", "bytes per record value"))
    .addOption(new Option("--throughput <records/s>", "target rate over all producers; -1: as fast as possible").argParser(rate))
    .addOption(new Option("--acks <level>", "acknowledgement level").argParser(oneOf(["all", "leader", "none"] as const)))
    .addOption(new Option("--compression <codec>", "batch compression").argParser(oneOf(["none", "lz4"] as const)))
    .addOption(count("--partitions <n>", "partitions of the topic it creates"))
    .addOption(count("--replication-factor <n>", "replication factor of the topic (default: the broker's)"))
    .addOption(count("--producers <n>", "producer connections sharing the records"))
    .addOption(brokers())
    .addOption(count("--batch-records <n>", "records per produce request"))
    .addOption(count("--in-flight <n>", "requests pipelined per producer"))
    .addOption(
      new Option("--mode <mode>", "batches (SDK path) or records (thin clients)").argParser(oneOf(["batches", "records"] as const)),
    )
    .addOption(brokerRuntime())
    .addOption(
      new Option(
        "--protocol <protocol>",
        "grpc (ProduceStream) or kafka (Kafka's Produce on the Kafka listener, Rill's own Kafka producer)",
      ).argParser(oneOf(["grpc", "kafka"] as const)),
    )
    .addOption(json())
    .option("--sweep", "latency against throughput: the maximum, then a ladder of offered rates (open loop), chart and table")
    .addOption(new Option("--local-brokers <n>", "with --sweep: brokers to start on 127.0.0.1 (3: a cluster, RF=3)").argParser(intIn(1, 9)))
    .addOption(new Option("--steps <n>", "with --sweep: ladder steps, 1/n … 100% of the maximum").argParser(intIn(1, 100)))
    .addOption(new Option("--step-seconds <s>", "with --sweep: seconds per step").argParser(seconds))
    .addOption(new Option("--warmup-seconds <s>", "with --sweep: seconds of each step not measured").argParser(seconds))
    .addOption(new Option("--max-seconds <s>", "with --sweep: seconds of the closed-loop maximum").argParser(seconds))
    .addOption(new Option("--extra-rates <r,...>", "with --sweep: further offered rates, records/s").argParser(rates))
    .addOption(new Option("--linger-ms <ms>", "with --sweep: how often the paced producer sends what is due").argParser(intIn(0, 60_000)))
    .addOption(count("--in-flight-max <n>", "with --sweep: requests waiting per producer at most on the schedule"))
    .addOption(new Option("--svg <file>", "with --sweep: the chart (default bench/results/sweep.svg)"))
    .addOption(new Option("--title <text>", "with --sweep: the series name in the table and chart"))
    .action(async (_o: object, cmd: Command) => producer(io, cmd));

  bench
    .command("consumer")
    .description("consumer throughput: pre-produced records read back by pipelined Fetch or Subscribe")
    .addOption(count("--records <n>", "records to pre-produce and read"))
    .addOption(count("--record-size <bytes>", "bytes per record value"))
    .addOption(count("--batch-records <n>", "records per batch"))
    .addOption(new Option("--compression <codec>", "batch compression").argParser(oneOf(["none", "lz4"] as const)))
    .addOption(count("--partitions <n>", "partitions of the topic"))
    .addOption(new Option("--mode <mode>", "fetch or subscribe").argParser(oneOf(["fetch", "subscribe"] as const)))
    .addOption(count("--partition-max-bytes <bytes>", "bytes per partition per response"))
    .addOption(count("--max-bytes <bytes>", "bytes per response"))
    .addOption(count("--runs <n>", "read-backs (the median is reported)"))
    .addOption(brokers())
    .addOption(count("--broker-pid <pid>", "with --brokers: the broker's PID, to sample its RSS"))
    .addOption(brokerRuntime())
    .addOption(json())
    .action(async (_o: object, cmd: Command) => runBenchFile(io, "consumer-perf.ts", givenArgs(cmd)));

  bench
    .command("e2e")
    .description("end-to-end latency at a target rate (producer -> broker -> Subscribe)")
    .addOption(count("--rate <records/s>", "records per second"))
    .addOption(new Option("--seconds <s>", "how long to send").argParser(intIn(1, 3600)))
    .addOption(count("--record-size <bytes>", "bytes per record value (at least 8)"))
    .addOption(new Option("--linger-ms <ms>", "batching interval").argParser(intIn(0, 60_000)))
    .addOption(new Option("--compression <codec>", "batch compression").argParser(oneOf(["none", "lz4"] as const)))
    .addOption(new Option("--acks <level>", "acknowledgement level").argParser(oneOf(["all", "leader", "none"] as const)))
    .addOption(new Option("--warmup-seconds <s>", "seconds not measured at the start").argParser(intIn(0, INT32_MAX)))
    .addOption(brokers())
    .addOption(brokerRuntime())
    .addOption(json())
    .action(async (_o: object, cmd: Command) => runBenchFile(io, "e2e-latency.ts", givenArgs(cmd)));
}
