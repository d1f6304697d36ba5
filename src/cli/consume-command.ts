/**
 * `rill consume TOPIC...`: prints records of one partition (`--partition`) or all of them, of
 * one topic or several (`--regex`: the arguments are patterns matched against the topic names),
 * from the end (default), the beginning, an offset, N before the end (`-o -10`), or a time
 * (`-o @-1h`, `-o @2026-12-06T10:00:00Z`, `--timestamp MS`); as text (the value, or key SEP
 * value with `--print-key`), JSON lines, or a kcat-style format string (`-f '%t %p %o %k %v\n'`,
 * record-format.ts). Keys and values print as text, base64 or hex (`--key-format`,
 * `--value-format`). Stops after `-n` records, at the end of every partition read (`-e`: the
 * end as it was when reading started), after `--timeout-ms` without a record, or on
 * SIGINT/SIGTERM (exit 0).
 *
 * With `--group G` it is a member of consumer group G (GroupConsumer, over GroupService.Consume):
 * the broker assigns the partitions, reading starts at the group's committed offsets (or, for a
 * partition without one, at the end — the beginning with `--from-beginning`), and the offsets of
 * printed records are committed as it goes (every second, and when it stops). With `-e` it stops
 * once every partition it was assigned is read up to its end as of the assignment.
 *
 * A batch that cannot be read (CORRUPT_MESSAGE) ends the command with that error, which names
 * the partition and the batch's offset; with `--skip-corrupt` one line on stderr says so
 * (`rill: skipped ...`) and reading goes on after the batch.
 */

import { Admin } from "../client/admin.ts";
import { Consumer, type CorruptBatchReport, type SeekTarget, type TopicPartition } from "../client/consumer.ts";
import { GroupAdmin } from "../client/group-admin.ts";
import { GroupConsumer } from "../client/group-consumer.ts";
import { type Context, clientOptions } from "./context.ts";
import type { OffsetSpec } from "./offset-spec.ts";
import { CliError, write } from "./output.ts";
import { type Encoding, type PrintOptions, formatRecord } from "./record-format.ts";
import { checkPartition } from "./topic-commands.ts";

/** Options of `consume`. */
export interface ConsumeOptions {
  readonly fromBeginning?: boolean;
  readonly offset?: OffsetSpec;
  readonly timestamp?: number;
  readonly partition?: number;
  readonly maxMessages?: number;
  readonly timeoutMs?: number;
  readonly format: "text" | "json";
  /** `--json`: the same as `--format json`. */
  readonly json?: boolean;
  /** `-f`: a format string (record-format.ts). */
  readonly formatString?: string;
  readonly printKey?: boolean;
  readonly keySeparator: string;
  readonly keyFormat?: Encoding;
  readonly valueFormat?: Encoding;
  readonly group?: string;
  /** Skip batches that cannot be read (reported on stderr). */
  readonly skipCorrupt?: boolean;
  /** `-e`: stop at the end of every partition read. */
  readonly exitAtEnd?: boolean;
  /** The topic arguments are regular expressions (each must match a whole name). */
  readonly regex?: boolean;
  /** `--client-rack`: read from an in-sync replica in this rack where the leader points there (KIP-392). */
  readonly clientRack?: string;
}

/** How often `-e` looks whether every partition is read to its end (besides after each record). */
const END_CHECK_INTERVAL_MS = 100;

function printOptions(o: ConsumeOptions): PrintOptions {
  return {
    format: o.json ? "json" : o.format,
    formatString: o.formatString,
    printKey: o.printKey,
    keySeparator: o.keySeparator,
    keyFormat: o.keyFormat ?? "text",
    valueFormat: o.valueFormat ?? "text",
  };
}

/** The consumers' skipCorrupt options for `o`: each skipped batch is one line on stderr. */
function corruptOptions(ctx: Context, o: ConsumeOptions): { skipCorrupt: boolean; onCorrupt?: (r: CorruptBatchReport) => Promise<void> } {
  if (o.skipCorrupt !== true) return { skipCorrupt: false };
  return {
    skipCorrupt: true,
    onCorrupt: (r) =>
      write(ctx.io.stderr, `rill: skipped ${r.topic}-${r.partition} offsets ${r.offset}..${r.nextOffset - 1}: ${r.error.message}\n`),
  };
}

/** The one start position of `o` (a spec; `--from-beginning` and `--timestamp` are spellings of one). */
function startOf(o: ConsumeOptions): OffsetSpec {
  const given = [o.fromBeginning === true, o.offset !== undefined, o.timestamp !== undefined].filter(Boolean).length;
  if (given > 1) throw new CliError("consume: give at most one of --from-beginning, --offset, --timestamp");
  if (o.fromBeginning) return { kind: "earliest" };
  if (o.offset !== undefined) return o.offset;
  if (o.timestamp !== undefined) return { kind: "time", timestampMs: o.timestamp };
  return { kind: "latest" };
}

const keyOf = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

/** The topics `args` name: themselves, or with `--regex` every topic one of them matches whole. */
async function resolveTopics(ctx: Context, args: readonly string[], regex: boolean): Promise<string[]> {
  if (!regex) return [...new Set(args)];
  const patterns = args.map((a) => {
    try {
      return new RegExp(`^(?:${a})$`);
    } catch (e) {
      throw new CliError(`--regex: ${JSON.stringify(a)} is not a regular expression: ${(e as Error).message}`);
    }
  });
  const admin = new Admin(clientOptions(ctx));
  try {
    const names = (await admin.listTopics()).map((t) => t.name).filter((n) => patterns.some((p) => p.test(n)));
    if (names.length === 0) throw new CliError(`consume: no topic matches ${args.map((a) => JSON.stringify(a)).join(", ")}`);
    return names;
  } finally {
    await admin.close();
  }
}

/** Each partition's earliest and latest offsets. */
async function bounds(admin: Admin, tps: readonly TopicPartition[]): Promise<Map<string, { start: number; end: number }>> {
  const [starts, ends] = await Promise.all([
    admin.listOffsets(tps.map((tp) => ({ ...tp, query: "earliest" as const }))),
    admin.listOffsets(tps.map((tp) => ({ ...tp, query: "latest" as const }))),
  ]);
  return new Map(tps.map((tp, i) => [keyOf(tp), { start: starts[i]!.offset, end: ends[i]!.offset }]));
}

/** Where partition `tp` starts for `spec` (a relative spec needs its bounds). */
function seekTarget(spec: OffsetSpec, b: { start: number; end: number } | undefined): SeekTarget {
  switch (spec.kind) {
    case "earliest":
    case "latest":
      return spec.kind;
    case "offset":
      return spec.offset;
    case "time":
      return { timestampMs: spec.timestampMs };
    case "fromEnd":
      return Math.max(b!.start, b!.end - spec.count);
    case "fromStart":
      return Math.min(b!.end, b!.start + spec.count);
  }
}

/** Stops `stop()` after `timeoutMs` without `arm()` being called again (nothing without a timeout). */
function idleTimer(timeoutMs: number | undefined, stop: () => void): { arm: () => void; clear: () => void } {
  let idle: ReturnType<typeof setTimeout> | null = null;
  return {
    arm: () => {
      if (timeoutMs === undefined) return;
      if (idle !== null) clearTimeout(idle);
      idle = setTimeout(stop, timeoutMs);
    },
    clear: () => {
      if (idle !== null) clearTimeout(idle);
    },
  };
}

/** Prints records of `topics` until a stop condition; see the module comment. */
export async function consume(ctx: Context, topicArgs: readonly string[], o: ConsumeOptions): Promise<void> {
  const spec = startOf(o);
  if (o.partition !== undefined && (topicArgs.length !== 1 || o.regex))
    throw new CliError("consume: --partition needs exactly one topic (not --regex)");
  if (o.group !== undefined) return consumeInGroup(ctx, topicArgs, o.group, o);
  if (o.maxMessages === 0) return;
  const topics = await resolveTopics(ctx, topicArgs, o.regex === true);
  const consumer = new Consumer({
    ...clientOptions(ctx),
    autoOffsetReset: o.fromBeginning ? "earliest" : "latest",
    ...corruptOptions(ctx, o),
    clientRack: o.clientRack ?? "",
  });
  const admin = new Admin(clientOptions(ctx));
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    void consumer.close();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const idle = idleTimer(o.timeoutMs, stop);
  let endCheck: ReturnType<typeof setInterval> | null = null;
  const print = printOptions(o);
  try {
    const tps: TopicPartition[] = [];
    for (const topic of topics) {
      const count = await consumer.partitionCount(topic);
      if (o.partition !== undefined) checkPartition(topic, o.partition, count);
      for (let p = 0; p < count; p++) if (o.partition === undefined || o.partition === p) tps.push({ topic, partition: p });
    }
    const relative = spec.kind === "fromEnd" || spec.kind === "fromStart";
    const b = relative || o.exitAtEnd ? await bounds(admin, tps) : new Map<string, { start: number; end: number }>();
    consumer.assign(tps.map((tp) => ({ ...tp, offset: seekTarget(spec, b.get(keyOf(tp))) })));
    // -e: the partitions not yet read to their end (as of now).
    const open = new Map(o.exitAtEnd ? tps.map((tp) => [keyOf(tp), tp] as const) : []);
    const checkEnds = async (): Promise<void> => {
      for (const [k, tp] of open) if ((await consumer.position(tp)) >= b.get(k)!.end) open.delete(k);
      if (open.size === 0) stop();
    };
    if (o.exitAtEnd) {
      await checkEnds();
      endCheck = setInterval(() => void checkEnds().catch(() => undefined), END_CHECK_INTERVAL_MS);
    }
    idle.arm();
    let n = 0;
    if (stopped) return; // -e with nothing to read
    for await (const r of consumer) {
      await write(ctx.io.stdout, formatRecord(r, print));
      idle.arm();
      if (o.maxMessages !== undefined && ++n >= o.maxMessages) break;
      if (o.exitAtEnd) {
        const k = keyOf(r);
        if (open.has(k) && r.offset + 1 >= b.get(k)!.end) open.delete(k);
        if (open.size === 0) break;
      }
    }
  } finally {
    idle.clear();
    if (endCheck !== null) clearInterval(endCheck);
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await consumer.close();
    await admin.close();
  }
}

/** How often `consume --group` commits what it printed. */
const GROUP_COMMIT_INTERVAL_MS = 1000;

/** `consume --group G`: a group member; commits the printed records' offsets as it goes. */
async function consumeInGroup(ctx: Context, topicArgs: readonly string[], group: string, o: ConsumeOptions): Promise<void> {
  for (const [flag, given] of [
    ["--offset", o.offset !== undefined],
    ["--timestamp", o.timestamp !== undefined],
    ["--partition", o.partition !== undefined],
  ] as const) {
    if (given)
      throw new CliError(`consume: ${flag} cannot be used with --group (the group's committed offsets and the broker's assignment decide)`);
  }
  if (o.maxMessages === 0) return;
  const topics = await resolveTopics(ctx, topicArgs, o.regex === true);
  // An unknown topic (or a broker that is not running) is reported here, in one line.
  const admin = new Admin(clientOptions(ctx));
  const groupAdmin = new GroupAdmin(clientOptions(ctx));
  try {
    await admin.describeTopics(topics, { includeConfigs: false });
  } catch (e) {
    await admin.close();
    await groupAdmin.close();
    throw e;
  }
  // -e: each assigned partition's end as of its assignment, and where the group starts in it.
  const ends = new Map<string, { start: number; end: number }>();
  const onAssigned = async (tps: TopicPartition[]): Promise<void> => {
    if (!o.exitAtEnd) return;
    const [b, committed] = await Promise.all([bounds(admin, tps), groupAdmin.fetchOffsets(group, topicsOf(tps))]);
    const at = new Map(committed.map((c) => [keyOf(c), c.offset]));
    for (const tp of tps) {
      const { start, end } = b.get(keyOf(tp))!;
      const c = at.get(keyOf(tp)) ?? -1;
      ends.set(keyOf(tp), { start: c >= 0 ? c : o.fromBeginning ? start : end, end });
    }
  };
  const consumer = new GroupConsumer({
    ...clientOptions(ctx),
    groupId: group,
    autoOffsetReset: o.fromBeginning ? "earliest" : "latest",
    autoCommit: true,
    autoCommitIntervalMs: GROUP_COMMIT_INTERVAL_MS,
    clientId: "rill-cli",
    onAssigned,
    ...corruptOptions(ctx, o),
  });
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    void consumer.close().catch(() => undefined);
  };
  /** -e: every owned partition (one at least) read to its end as of its assignment. */
  const atEnd = (): boolean => {
    const owned = consumer.assignment();
    return (
      owned.length > 0 &&
      owned.every((tp) => {
        const e = ends.get(keyOf(tp));
        return e !== undefined && Math.max(consumer.position(tp), e.start) >= e.end;
      })
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const idle = idleTimer(o.timeoutMs, stop);
  // Closing ends the iterator and commits what was printed: -e closes from here.
  const endCheck = o.exitAtEnd ? setInterval(() => atEnd() && stop(), END_CHECK_INTERVAL_MS) : null;
  const print = printOptions(o);
  try {
    consumer.subscribe(topics);
    idle.arm();
    let n = 0;
    for await (const r of consumer) {
      await write(ctx.io.stdout, formatRecord(r, print));
      idle.arm();
      if (o.maxMessages !== undefined && ++n >= o.maxMessages) break;
      if (o.exitAtEnd && atEnd()) break;
    }
  } catch (e) {
    await consumer.close().catch(() => undefined);
    throw e;
  } finally {
    idle.clear();
    if (endCheck !== null) clearInterval(endCheck);
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await admin.close();
    await groupAdmin.close();
  }
  // Commits what was printed, then leaves the group (errors reach the one error line).
  if (!stopped) await consumer.close();
  else await consumer.close().catch(() => undefined);
}

function topicsOf(tps: readonly TopicPartition[]): { topic: string; partitions: number[] }[] {
  const by = new Map<string, number[]>();
  for (const tp of tps) by.set(tp.topic, [...(by.get(tp.topic) ?? []), tp.partition]);
  return [...by].map(([topic, partitions]) => ({ topic, partitions }));
}
