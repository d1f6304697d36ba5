/**
 * The `rill` command line, built with commander: global `--bootstrap` (and a `--profile` of
 * connection settings, profiles.ts), the `broker`, `topic`, `produce`, `consume`, `group`,
 * `cluster`, `profile` and `completion` commands, and one error path — every failure ends as one
 * line on stderr, `rill: <message>`, and a non-zero exit code (1 for errors, 2 for usage).
 */

import { Argument, Command, CommanderError, Option } from "commander";
import { DEFAULT_BOOTSTRAP } from "../client/connection.ts";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { clusterStatus } from "./cluster-commands.ts";
import { type ControllerChangeOptions, changeController } from "./controller-commands.ts";
import { CLUSTER_NODES_MAX, type ClusterStartOptions, controlNode, startCluster } from "./cluster-start-command.ts";
import { registerBench } from "./bench-command.ts";
import { consume } from "./consume-command.ts";
import { deleteGroup, describeGroup, listGroups, resetOffsets } from "./group-commands.ts";
import { bashCompletion, zshCompletion } from "./completion.ts";
import { type Context, type SecurityFlags, credentialsOf, tlsOf } from "./context.ts";
import { offsetSpec, timeSpec } from "./offset-spec.ts";
import { type Profile, activeProfile, configPath, createProfile, deleteProfile, readProfiles, useProfile } from "./profiles.ts";
import { ENCODINGS, formatString } from "./record-format.ts";
import { CliError, type Io, errorLine, isExpected, write } from "./output.ts";
import { collect, intIn, keyValue, oneOf, separator } from "./parse.ts";
import { produce } from "./produce-command.ts";
import { registerSecurityCommands } from "./security-commands.ts";
import {
  addPartitions,
  alterTopic,
  createTopic,
  deleteRecords,
  deleteTopic,
  describeTopic,
  electLeaders,
  listTopics,
} from "./topic-commands.ts";
import { registerQuota } from "./quota-commands.ts";
import { registerTransactions } from "./transaction-commands.ts";
import { registerPartitions } from "./reassign-commands.ts";
import { registerDecommission, registerRebalance } from "./balance-commands.ts";
import { registerCordon } from "./cordon-commands.ts";

const INT32_MAX = 0x7fffffff;
const OFFSET_MAX = Number.MAX_SAFE_INTEGER;

/** What `run` resolves to: the exit code, and whether the process must stay up (a broker). */
export interface Outcome {
  readonly exitCode: number;
  readonly keepAlive: boolean;
}

/** The global options as given: on the command line, or (--bootstrap) in RILL_BOOTSTRAP. */
type GlobalFlags = { bootstrap?: string; profile?: string } & SecurityFlags;

/**
 * A client command's context: each connection setting from the command line, else the
 * environment, else the profile that applies (profiles.ts), else the default.
 */
function contextOf(cmd: Command, io: Io): Context {
  const flags = cmd.optsWithGlobals<GlobalFlags>();
  const active = activeProfile(io.env, flags.profile);
  const p: Profile = active?.profile ?? {};
  const merged: SecurityFlags = {
    tlsCa: flags.tlsCa ?? p.tlsCa,
    tlsCert: flags.tlsCert ?? (flags.tlsKey === undefined ? p.tlsCert : undefined),
    tlsKey: flags.tlsKey ?? (flags.tlsCert === undefined ? p.tlsKey : undefined),
    tlsServerName: flags.tlsServerName ?? p.tlsServerName,
    user: flags.user ?? (io.env["RILL_USER"] ? undefined : p.user),
    passwordFile: flags.passwordFile ?? (io.env["RILL_PASSWORD"] ? undefined : p.passwordFile),
  };
  try {
    return {
      io,
      bootstrap: flags.bootstrap ?? p.bootstrap ?? DEFAULT_BOOTSTRAP,
      tls: tlsOf(merged),
      credentials: credentialsOf(merged, io.env),
    };
  } catch (e) {
    if (e instanceof CliError && active !== undefined) throw new CliError(`profile "${active.name}": ${e.message}`);
    throw e;
  }
}

/** The package's version (package.json next to src/ or dist/). */
function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(nodeFs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "rill" && pkg.version) return pkg.version;
    } catch {
      // not here
    }
  }
  return "unknown";
}

const encodingOption = (flag: string, what: string): Option =>
  new Option(`${flag} <encoding>`, `how ${what} are written: text (UTF-8), base64 or hex`).choices(ENCODINGS).default("text");

/** What the commands of one run tell `run`: a broker keeps the process up; commander printed an error. */
interface RunState {
  keepAlive: boolean;
  reported: boolean;
}

function buildProgram(io: Io, state: RunState): Command {
  const program = new Command("rill")
    .description("Rill: an event-streaming broker (Kafka's model over gRPC)")
    .version(`rill ${packageVersion()}`, "-V, --version", "print the version")
    .addOption(
      new Option("--bootstrap <host:port>", `broker address (default: the profile's, else ${DEFAULT_BOOTSTRAP})`).env("RILL_BOOTSTRAP"),
    )
    .addOption(
      new Option("--profile <name>", "connection settings saved with `rill profile create` (default: the current one)").env("RILL_PROFILE"),
    )
    .option("--tls-ca <file>", "connect with TLS, verifying brokers against this PEM CA bundle (broker start: tls.ca.file)")
    .option("--tls-cert <file>", "connect with TLS presenting this PEM client certificate, with --tls-key (broker start: tls.cert.file)")
    .option("--tls-key <file>", "PEM private key of --tls-cert (broker start: tls.key.file)")
    .option(
      "--tls-server-name <name>",
      "the name the broker's certificate carries, when not the --bootstrap host (needed for an IP address under Bun)",
    )
    .option("--user <name>", "user to log in as (env RILL_USER)")
    .option("--password-file <file>", "file whose first line is the password of --user (env RILL_PASSWORD holds it otherwise)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, writeErr) => {
        state.reported = true;
        writeErr(`rill: ${s.replace(/^error: /, "")}`);
      },
    });

  const broker = program.command("broker").description("run a broker");
  broker
    .command("start")
    .description("start a broker in the foreground (stops on SIGTERM/SIGINT)")
    .option("--data-dir <dir>", "where the broker keeps its data")
    .option("--listen <host:port>", "address to serve on")
    .option("--config <file>", "config file (.json or .properties)")
    .option("--node-id <n>", "node id", intIn(0, INT32_MAX))
    .option("--roles <roles>", "what the node runs: broker,controller (default), broker or controller")
    .option("--controller-quorum <voters>", "the controller voters, ID@HOST:PORT,... (default: this node alone)")
    .option(
      "--set <key=value>",
      "any broker setting (repeatable), e.g. --set broker.session.timeout.ms=3000",
      (v: string, acc: string[] = []) => [...acc, v],
    )
    .action(
      async (
        o: {
          dataDir?: string;
          listen?: string;
          config?: string;
          nodeId?: number;
          roles?: string;
          controllerQuorum?: string;
          set?: string[];
        },
        cmd: Command,
      ) => {
        const { runBroker } = await import("../broker/run.ts");
        // The global --tls-cert/--tls-key/--tls-ca are the listener's files here (tls.*).
        const g = cmd.optsWithGlobals<SecurityFlags>();
        const tlsSet = [
          ...(g.tlsCert !== undefined ? [`tls.cert.file=${g.tlsCert}`] : []),
          ...(g.tlsKey !== undefined ? [`tls.key.file=${g.tlsKey}`] : []),
          ...(g.tlsCa !== undefined ? [`tls.ca.file=${g.tlsCa}`] : []),
        ];
        await runBroker({
          dataDir: o.dataDir,
          listen: o.listen,
          configFile: o.config,
          nodeId: o.nodeId,
          roles: o.roles,
          controllerQuorum: o.controllerQuorum,
          set: [...tlsSet, ...(o.set ?? [])],
          applyRuntimeOptions: true,
        });
        state.keepAlive = true;
      },
    );

  const topic = program
    .command("topic")
    .description("create, list, describe, alter and delete topics; delete records, add partitions, elect leaders");
  topic
    .command("create <name>")
    .description("create a topic")
    .option("--partitions <n>", "partition count (default: the broker's num.partitions)", intIn(1, INT32_MAX))
    .option("--replication-factor <n>", "replicas per partition", intIn(1, 32767))
    .option("--config <key=value>", "topic config override (repeatable)", keyValue("--config"))
    .option("--if-not-exists", "succeed quietly when the topic exists")
    .option("--json", "print JSON")
    .action(
      async (
        name: string,
        o: { partitions?: number; replicationFactor?: number; config?: Record<string, string>; ifNotExists?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        await createTopic(contextOf(cmd, io), name, { ...o, config: o.config ?? {} });
      },
    );
  topic
    .command("list")
    .description("list topic names")
    .option("--internal", "include internal topics")
    .option("--json", "print JSON")
    .action(async (o: { internal?: boolean; json?: boolean }, cmd: Command) => listTopics(contextOf(cmd, io), o));
  topic
    .command("describe <name>")
    .description("show a topic's partitions, offsets and every effective config (with its source)")
    .option("--json", "print JSON")
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => describeTopic(contextOf(cmd, io), name, o));
  topic
    .command("alter <name>")
    .description("set or delete topic config keys")
    .option("--config <key=value>", "key to set (repeatable)", keyValue("--config"))
    .option("--delete-config <key>", "key to reset to its default (repeatable)", collect, [])
    .option("--json", "print JSON")
    .action(async (name: string, o: { config?: Record<string, string>; deleteConfig: string[]; json?: boolean }, cmd: Command) => {
      await alterTopic(contextOf(cmd, io), name, { config: o.config ?? {}, deleteConfig: o.deleteConfig, json: o.json });
    });
  topic
    .command("delete <name>")
    .description("delete a topic and its records")
    .option("--json", "print JSON")
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => deleteTopic(contextOf(cmd, io), name, o));
  topic
    .command("delete-records <name>")
    .description("delete a topic's records below an offset (raises the log start offset)")
    .requiredOption(
      "--offset <n>",
      "the new log start offset; -1: the high watermark (every committed record)",
      intIn(-1, Number.MAX_SAFE_INTEGER),
    )
    .option("--partition <n>", "only this partition (default: every partition)", intIn(0, INT32_MAX))
    .option("--json", "print JSON")
    .action(async (name: string, o: { offset: number; partition?: number; json?: boolean }, cmd: Command) =>
      deleteRecords(contextOf(cmd, io), name, o),
    );
  topic
    .command("add-partitions <name>")
    .description("raise a topic's partition count (keys may map to other partitions afterwards)")
    .requiredOption("--count <n>", "the new partition count (the total, more than now)", intIn(1, INT32_MAX))
    .option("--validate-only", "check the change and make none")
    .option("--json", "print JSON")
    .action(async (name: string, o: { count: number; validateOnly?: boolean; json?: boolean }, cmd: Command) =>
      addPartitions(contextOf(cmd, io), name, o),
    );
  topic
    .command("elect-leaders [name]")
    .description("move each partition's leadership back to its preferred replica (the first); no name: every topic")
    .option("--partition <n>", "only this partition (repeatable; default: all)", (v: string, prev: number[] = []) => [
      ...prev,
      intIn(0, INT32_MAX)(v),
    ])
    .option("--json", "print JSON")
    .action(async (name: string | undefined, o: { partition?: number[]; json?: boolean }, cmd: Command) =>
      electLeaders(contextOf(cmd, io), name, o),
    );

  program
    .command("produce <topic>")
    .description("send stdin's lines as records, one per line")
    .option("--key-separator <sep>", "split each line into KEY SEP VALUE at the first SEP", separator)
    .option("--partition <n>", "send every record to this partition", intIn(0, INT32_MAX))
    .addOption(new Option("--acks <level>", "acknowledgement level").choices(["all", "leader", "none"]).default("all"))
    .addOption(new Option("--compression <codec>", "batch compression").choices(["none", "gzip", "snappy", "lz4", "zstd"]).default("none"))
    .option("--linger-ms <ms>", "how long a batch waits for more lines", intIn(0, 60_000), 5)
    .option("--header <key=value>", "header added to every record (repeatable)", keyValue("--header"))
    .addOption(
      new Option("--format <format>", "a line is text (KEY SEP VALUE with --key-separator) or JSON as consume --format json prints it")
        .choices(["text", "json"])
        .default("text"),
    )
    .addOption(encodingOption("--key-format", "keys"))
    .addOption(encodingOption("--value-format", "values"))
    .option("--null-value <text>", "text format: a value equal to this is sent as null (a tombstone)")
    .option("-Z, --empty-as-null", "text format: an empty value is sent as null (a tombstone)")
    .option("--print-offsets", "print TOPIC PARTITION OFFSET of each record once stored, in input order")
    .option("--json", "print where each record was stored, one JSON object per record")
    .action(async (name: string, o: Omit<Parameters<typeof produce>[2], "header"> & { header?: Record<string, string> }, cmd: Command) => {
      await produce(contextOf(cmd, io), name, { ...o, header: o.header ?? {} });
    });

  program
    .command("consume <topics...>")
    .description("print records of one or more topics (from the end unless told otherwise) until -n, -e, --timeout-ms or Ctrl-C")
    .option("--from-beginning", "start at the earliest offset (with --group: where the group has no committed offset)")
    .option(
      "-o, --offset <spec>",
      "where each partition starts: N, -N (N before the end), +N (after the start), beginning, end, @TIME (@-1h, @2026-12-06T10:00:00Z, @MS)",
      offsetSpec,
    )
    .option("--timestamp <time>", "start at the first record at or after this time (ms since the epoch, ISO date, or -1h)", timeSpec)
    .option("-e, --exit", "exit at the end of every partition read (its end when reading started)")
    .option("-r, --regex", "the topic arguments are regular expressions, each matching whole topic names")
    .option("--partition <n>", "read only this partition (default: all)", intIn(0, INT32_MAX))
    .option("-n, --max-messages <n>", "exit after this many records", intIn(0, OFFSET_MAX))
    .option("--timeout-ms <ms>", "exit after this long without a record", intIn(1, INT32_MAX))
    .addOption(new Option("--format <format>", "output format").argParser(oneOf(["text", "json"] as const)).default("text"))
    .option("--json", "the same as --format json")
    .option(
      "-f, --format-string <format>",
      "print each record as this string: %t %p %o %k %v %h %T %d %K %S %% and \\n \\t (as kcat -f)",
      formatString,
    )
    .addOption(encodingOption("--key-format", "keys"))
    .addOption(encodingOption("--value-format", "values"))
    .option("--print-key", "text format: print KEY SEP VALUE")
    .option("--key-separator <sep>", "separator for --print-key", separator, "\t")
    .option("--group <id>", "consume as a member of this consumer group, committing as it goes")
    .option("--skip-corrupt", "skip a batch that cannot be read (CORRUPT_MESSAGE), saying so on stderr, and go on")
    .option(
      "--client-rack <rack>",
      "this client's rack (Kafka's client.rack): read from an in-sync replica there when the leader points to one",
    )
    .action(async (names: string[], o: Parameters<typeof consume>[2] & { exit?: boolean }, cmd: Command) =>
      consume(contextOf(cmd, io), names, { ...o, exitAtEnd: o.exit === true }),
    );

  const group = program.command("group").description("list, describe, reset the offsets of, and delete consumer groups");
  group
    .command("list")
    .description("list groups with their state and member count")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => listGroups(contextOf(cmd, io), o));
  group
    .command("describe <group>")
    .description("show a group's members, assignment, committed offsets, log end offsets and lag")
    .option("--json", "print JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => describeGroup(contextOf(cmd, io), id, o));
  group
    .command("reset-offsets <group>")
    .description("show where a group's committed offsets would move; --execute moves them (only while it has no members)")
    .requiredOption("--topic <topic>", "topic whose offsets to reset")
    .option("--partition <n>", "only this partition (repeatable; default: all)", (v: string, prev: number[] = []) => [
      ...prev,
      intIn(0, INT32_MAX)(v),
    ])
    .option("--to-earliest", "to each partition's log start offset")
    .option("--to-latest", "to each partition's end")
    .option("--to-offset <n>", "to this offset (clamped to the partition's range)", intIn(0, OFFSET_MAX))
    .option("--to-timestamp <ms>", "to the first record at or after this time (ms since the epoch)", intIn(0, OFFSET_MAX))
    .option("--to-datetime <time>", "to the first record at or after this time (ISO date, or -1h before now)", timeSpec)
    .option("--dry-run", "show the new offsets without committing them (the default)")
    .option("--execute", "commit the new offsets")
    .option("--json", "print JSON")
    .action(async (id: string, o: Parameters<typeof resetOffsets>[2] & { toDatetime?: number }, cmd: Command) => {
      if (o.toDatetime !== undefined && o.toTimestamp !== undefined)
        throw new CliError("group reset-offsets: give --to-timestamp or --to-datetime, not both");
      await resetOffsets(contextOf(cmd, io), id, { ...o, toTimestamp: o.toTimestamp ?? o.toDatetime });
    });
  group
    .command("delete <group>")
    .description("delete a group without members, and its committed offsets")
    .option("--json", "print JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => deleteGroup(contextOf(cmd, io), id, o));

  const cluster = program.command("cluster").description("start a local cluster, restart or stop its nodes, show a cluster's nodes");
  cluster
    .command("status")
    .description("show the cluster id, the active controller and every node (each asked for its own state)")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => clusterStatus(contextOf(cmd, io), o));
  cluster
    .command("start")
    .description("start a local cluster in the foreground: N nodes, each broker and controller (stops on SIGTERM/SIGINT)")
    .option("--nodes <n>", "number of nodes", intIn(1, CLUSTER_NODES_MAX), 3)
    .option("--data-dir <dir>", "folder holding each node's data, as node-<id>", "./cluster")
    .option("--base-port <port>", "port of node 1; node i listens on base-port + i - 1", intIn(1, 65535), 50051)
    .option("--host <host>", "host every node listens on", "127.0.0.1")
    .option("--kafka-base-port <port>", "port of node 1's Kafka listener; node i listens on it + i - 1 (0: none)", intIn(0, 65535), 9092)
    .option("--set <key=value>", "broker setting for every node (repeatable)", collect, [])
    .action(async (o: ClusterStartOptions, cmd: Command) => startCluster({ ...contextOf(cmd, io), bootstrap: DEFAULT_BOOTSTRAP }, o));
  for (const action of ["restart", "stop"] as const) {
    cluster
      .command(`${action} <node>`)
      .description(
        action === "restart"
          ? "restart node N of the `cluster start` running with --data-dir (stops it first if it runs)"
          : "stop node N of the `cluster start` running with --data-dir, keeping the others running",
      )
      .option("--data-dir <dir>", "the data dir that cluster start was given", "./cluster")
      .option("--json", "print JSON")
      .action(async (node: string, o: { dataDir: string; json?: boolean }) =>
        controlNode({ io, bootstrap: DEFAULT_BOOTSTRAP }, action, intIn(1, CLUSTER_NODES_MAX)(node), o),
      );
  }

  // dynamic controller quorum (issue 21)
  for (const action of ["add", "remove"] as const) {
    const c = cluster
      .command(`${action}-controller <node>`)
      .description(
        action === "add"
          ? "make node N (running the controller role, following the metadata log) a controller voter, once it caught up"
          : "remove controller voter N (one change at a time; never the last voter)",
      );
    if (action === "add")
      c.option("--directory-id <id>", "the node's data-directory id (`cluster status --json` shows it); default: the one it announces");
    c.option("--json", "print JSON").action(async (node: string, o: ControllerChangeOptions, cmd: Command) =>
      changeController(contextOf(cmd, io), action, intIn(1, 0x7fffffff)(node), o),
    );
  }

  registerProfile(program, io);
  registerCompletion(program, io);
  registerBench(program, io);
  registerSecurityCommands(program, (cmd) => contextOf(cmd, io));
  registerQuota(program, (cmd) => contextOf(cmd, io));
  registerTransactions(program, (cmd) => contextOf(cmd, io));
  registerPartitions(program, (cmd) => contextOf(cmd, io)); // partition reassignment (issue 21)
  // balancing and decommission (issue 21)
  registerRebalance(cluster, (cmd) => contextOf(cmd, io));
  registerDecommission(broker, (cmd) => contextOf(cmd, io));
  registerCordon(broker, (cmd) => contextOf(cmd, io)); // cordoned brokers (issue 21)

  return program;
}

/** `rill profile create|use|list|show|delete` (profiles.ts). */
function registerProfile(program: Command, io: Io): void {
  const profile = program
    .command("profile")
    .description("save connection settings (bootstrap, TLS, credentials) under a name, and pick the current one");
  profile
    .command("create <name>")
    .description("save the global --bootstrap, --tls-*, --user and --password-file given with it as a profile")
    .option("--use", "make it the current profile (the first one created is)")
    .option("--force", "replace a profile of that name")
    .option("--json", "print JSON")
    .action(async (name: string, o: { use?: boolean; force?: boolean; json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalFlags>();
      const p: Profile = {
        bootstrap: program.getOptionValueSource("bootstrap") === "cli" ? g.bootstrap : undefined,
        tlsCa: g.tlsCa,
        tlsCert: g.tlsCert,
        tlsKey: g.tlsKey,
        tlsServerName: g.tlsServerName,
        user: g.user,
        passwordFile: g.passwordFile,
      };
      const file = createProfile(io.env, name, p, o);
      const current = readProfiles(file).current === name;
      if (o.json) await write(io.stdout, `${JSON.stringify({ created: name, file, current })}\n`);
      else await write(io.stdout, `Saved profile ${name} in ${file}${current ? " (current)" : ""}.\n`);
    });
  profile
    .command("use <name>")
    .description("make a profile the current one")
    .option("--json", "print JSON")
    .action(async (name: string, o: { json?: boolean }) => {
      const file = useProfile(io.env, name);
      await write(io.stdout, o.json ? `${JSON.stringify({ current: name, file })}\n` : `Using profile ${name}.\n`);
    });
  profile
    .command("list")
    .description("list the profiles (* marks the current one)")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }) => {
      const file = configPath(io.env);
      const content = readProfiles(file);
      if (o.json) return write(io.stdout, `${JSON.stringify({ file, current: content.current ?? null, profiles: content.profiles })}\n`);
      const lines = Object.entries(content.profiles).map(
        ([name, p]) =>
          `${name === content.current ? "*" : " "} ${name}\t${p.bootstrap ?? DEFAULT_BOOTSTRAP}` +
          `${p.tlsCa || p.tlsCert || p.tlsServerName ? "\ttls" : ""}${p.user ? `\tuser ${p.user}` : ""}\n`,
      );
      await write(io.stdout, lines.join(""));
    });
  profile
    .command("delete <name>")
    .description("delete a profile")
    .option("--json", "print JSON")
    .action(async (name: string, o: { json?: boolean }) => {
      deleteProfile(io.env, name);
      await write(io.stdout, o.json ? `${JSON.stringify({ deleted: name })}\n` : `Deleted profile ${name}.\n`);
    });
}

/** `rill completion bash|zsh` (completion.ts). */
function registerCompletion(program: Command, io: Io): void {
  program
    .command("completion")
    .description("print a shell completion script: source <(rill completion bash), or for zsh save it as _rill in $fpath")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .action(async (shell: "bash" | "zsh") => {
      await write(io.stdout, shell === "bash" ? bashCompletion(program) : zshCompletion(program));
    });
}

/** Runs the command line `argv` (as process.argv: runtime, script, args...). */
export async function run(argv: readonly string[], io: Io): Promise<Outcome> {
  const state: RunState = { keepAlive: false, reported: false };
  const program = buildProgram(io, state);
  try {
    await program.parseAsync([...argv]);
    return { exitCode: 0, keepAlive: state.keepAlive };
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander printed help, the version and its own usage errors already; a usage error
      // thrown from inside an action (an InvalidArgumentError) it did not, so print it here.
      if (e.exitCode !== 0 && !state.reported) io.stderr.write(`rill: ${e.message.replace(/^error: /, "")}\n`);
      return { exitCode: e.exitCode === 0 ? 0 : 2, keepAlive: false };
    }
    io.stderr.write(`rill: ${errorLine(e)}\n`);
    if (!isExpected(e) && io.env["RILL_DEBUG"] && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
    return { exitCode: 1, keepAlive: false };
  }
}
