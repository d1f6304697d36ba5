/**
 * The `rill` command line, built with commander: global `--bootstrap`, the `broker`, `topic`,
 * `produce`, `consume`, `group` and `cluster` commands, and one error path — every failure ends as one
 * line on stderr, `rill: <message>`, and a non-zero exit code (1 for errors, 2 for usage).
 */

import { Command, CommanderError, Option } from "commander";
import { DEFAULT_BOOTSTRAP } from "../client/connection.ts";
import { clusterStatus } from "./cluster-commands.ts";
import { CLUSTER_NODES_MAX, type ClusterStartOptions, startCluster } from "./cluster-start-command.ts";
import { registerBench } from "./bench-command.ts";
import { consume } from "./consume-command.ts";
import { deleteGroup, describeGroup, listGroups, resetOffsets } from "./group-commands.ts";
import { type Context, type SecurityFlags, credentialsOf, tlsOf } from "./context.ts";
import { type Io, errorLine, isExpected } from "./output.ts";
import { collect, intIn, keyValue, oneOf, separator } from "./parse.ts";
import { produce } from "./produce-command.ts";
import { registerSecurityCommands } from "./security-commands.ts";
import { alterTopic, createTopic, deleteRecords, deleteTopic, describeTopic, listTopics } from "./topic-commands.ts";
import { registerQuota } from "./quota-commands.ts";
import { registerTransactions } from "./transaction-commands.ts";

const INT32_MAX = 0x7fffffff;
const OFFSET_MAX = Number.MAX_SAFE_INTEGER;

/** What `run` resolves to: the exit code, and whether the process must stay up (a broker). */
export interface Outcome {
  readonly exitCode: number;
  readonly keepAlive: boolean;
}

function contextOf(cmd: Command, io: Io): Context {
  const flags = cmd.optsWithGlobals<{ bootstrap: string } & SecurityFlags>();
  return { io, bootstrap: flags.bootstrap, tls: tlsOf(flags), credentials: credentialsOf(flags, io.env) };
}

/** What the commands of one run tell `run`: a broker keeps the process up; commander printed an error. */
interface RunState {
  keepAlive: boolean;
  reported: boolean;
}

function buildProgram(io: Io, state: RunState): Command {
  const program = new Command("rill")
    .description("Rill: an event-streaming broker (Kafka's model over gRPC)")
    .addOption(new Option("--bootstrap <host:port>", "broker address").env("RILL_BOOTSTRAP").default(DEFAULT_BOOTSTRAP))
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
        });
        state.keepAlive = true;
      },
    );

  const topic = program.command("topic").description("create, list, describe, alter and delete topics, delete records");
  topic
    .command("create <name>")
    .description("create a topic")
    .option("--partitions <n>", "partition count (default: the broker's num.partitions)", intIn(1, INT32_MAX))
    .option("--replication-factor <n>", "replicas per partition", intIn(1, 32767))
    .option("--config <key=value>", "topic config override (repeatable)", keyValue("--config"))
    .option("--if-not-exists", "succeed quietly when the topic exists")
    .action(
      async (
        name: string,
        o: { partitions?: number; replicationFactor?: number; config?: Record<string, string>; ifNotExists?: boolean },
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
    .description("show a topic's partitions, offsets and config overrides")
    .option("--json", "print JSON")
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => describeTopic(contextOf(cmd, io), name, o));
  topic
    .command("alter <name>")
    .description("set or delete topic config keys")
    .option("--config <key=value>", "key to set (repeatable)", keyValue("--config"))
    .option("--delete-config <key>", "key to reset to its default (repeatable)", collect, [])
    .action(async (name: string, o: { config?: Record<string, string>; deleteConfig: string[] }, cmd: Command) => {
      await alterTopic(contextOf(cmd, io), name, { config: o.config ?? {}, deleteConfig: o.deleteConfig });
    });
  topic
    .command("delete <name>")
    .description("delete a topic and its records")
    .action(async (name: string, _o: object, cmd: Command) => deleteTopic(contextOf(cmd, io), name));
  topic
    .command("delete-records <name>")
    .description("delete a topic's records below an offset (raises the log start offset)")
    .requiredOption(
      "--offset <n>",
      "the new log start offset; -1: the high watermark (every committed record)",
      intIn(-1, Number.MAX_SAFE_INTEGER),
    )
    .option("--partition <n>", "only this partition (default: every partition)", intIn(0, INT32_MAX))
    .action(async (name: string, o: { offset: number; partition?: number }, cmd: Command) => deleteRecords(contextOf(cmd, io), name, o));

  program
    .command("produce <topic>")
    .description("send stdin's lines as records, one per line")
    .option("--key-separator <sep>", "split each line into KEY SEP VALUE at the first SEP", separator)
    .option("--partition <n>", "send every record to this partition", intIn(0, INT32_MAX))
    .addOption(new Option("--acks <level>", "acknowledgement level").choices(["all", "leader", "none"]).default("all"))
    .addOption(new Option("--compression <codec>", "batch compression").choices(["none", "gzip", "snappy", "lz4", "zstd"]).default("none"))
    .option("--linger-ms <ms>", "how long a batch waits for more lines", intIn(0, 60_000), 5)
    .option("--header <key=value>", "header added to every record (repeatable)", keyValue("--header"))
    .action(
      async (
        name: string,
        o: {
          keySeparator?: string;
          partition?: number;
          acks: "all";
          compression: "none";
          lingerMs: number;
          header?: Record<string, string>;
        },
        cmd: Command,
      ) => {
        await produce(contextOf(cmd, io), name, { ...o, header: o.header ?? {} });
      },
    );

  program
    .command("consume <topic>")
    .description("print records (from the end unless told otherwise) until -n, --timeout-ms or Ctrl-C")
    .option("--from-beginning", "start at the earliest offset (with --group: where the group has no committed offset)")
    .option("--offset <n>", "start at this offset (of each partition read)", intIn(0, OFFSET_MAX))
    .option("--timestamp <ms>", "start at the first record at or after this time (ms since the epoch)", intIn(0, OFFSET_MAX))
    .option("--partition <n>", "read only this partition (default: all)", intIn(0, INT32_MAX))
    .option("-n, --max-messages <n>", "exit after this many records", intIn(0, OFFSET_MAX))
    .option("--timeout-ms <ms>", "exit after this long without a record", intIn(1, INT32_MAX))
    .addOption(new Option("--format <format>", "output format").argParser(oneOf(["text", "json"] as const)).default("text"))
    .option("--print-key", "text format: print KEY SEP VALUE")
    .option("--key-separator <sep>", "separator for --print-key", separator, "\t")
    .option("--group <id>", "consume as a member of this consumer group, committing as it goes")
    .option("--skip-corrupt", "skip a batch that cannot be read (CORRUPT_MESSAGE), saying so on stderr, and go on")
    .action(async (name: string, o: Parameters<typeof consume>[2], cmd: Command) => consume(contextOf(cmd, io), name, o));

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
    .description("move a group's committed offsets (only while it has no members)")
    .requiredOption("--topic <topic>", "topic whose offsets to reset")
    .option("--partition <n>", "only this partition (repeatable; default: all)", (v: string, prev: number[] = []) => [
      ...prev,
      intIn(0, INT32_MAX)(v),
    ])
    .option("--to-earliest", "to each partition's log start offset")
    .option("--to-latest", "to each partition's end")
    .option("--to-offset <n>", "to this offset (clamped to the partition's range)", intIn(0, OFFSET_MAX))
    .option("--to-timestamp <ms>", "to the first record at or after this time (ms since the epoch)", intIn(0, OFFSET_MAX))
    .option("--dry-run", "show the new offsets without committing them")
    .option("--json", "print JSON")
    .action(async (id: string, o: Parameters<typeof resetOffsets>[2], cmd: Command) => resetOffsets(contextOf(cmd, io), id, o));
  group
    .command("delete <group>")
    .description("delete a group without members, and its committed offsets")
    .action(async (id: string, _o: object, cmd: Command) => deleteGroup(contextOf(cmd, io), id));

  const cluster = program.command("cluster").description("start a local cluster, show a cluster's nodes");
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

  registerBench(program, io);
  registerSecurityCommands(program, (cmd) => contextOf(cmd, io));
  registerQuota(program, (cmd) => contextOf(cmd, io));
  registerTransactions(program, (cmd) => contextOf(cmd, io));

  return program;
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
