/**
 * `rill consume TOPIC`: prints records of one partition (`--partition`) or all of them, from the
 * end (default), the beginning, an offset or a timestamp; as text (the value, or key SEP value
 * with `--print-key`) or JSON lines. Stops after `-n` records, after `--timeout-ms` without a
 * record, or on SIGINT/SIGTERM (exit 0).
 *
 * With `--group G` it is a member of consumer group G (GroupConsumer, over GroupService.Consume):
 * the broker assigns the partitions, reading starts at the group's committed offsets (or, for a
 * partition without one, at the end — the beginning with `--from-beginning`), and the offsets of
 * printed records are committed as it goes (every second, and when it stops).
 *
 * A batch that cannot be read (CORRUPT_MESSAGE) ends the command with that error, which names
 * the partition and the batch's offset; with `--skip-corrupt` one line on stderr says so
 * (`rill: skipped ...`) and reading goes on after the batch.
 */

import { Consumer, type ConsumerRecord, type CorruptBatchReport, type SeekTarget } from "../client/consumer.ts";
import { Admin } from "../client/admin.ts";
import { GroupConsumer } from "../client/group-consumer.ts";
import { type Context, clientOptions } from "./context.ts";
import { CliError, write } from "./output.ts";
import { checkPartition } from "./topic-commands.ts";

/** Options of `consume`. */
export interface ConsumeOptions {
  readonly fromBeginning?: boolean;
  readonly offset?: number;
  readonly timestamp?: number;
  readonly partition?: number;
  readonly maxMessages?: number;
  readonly timeoutMs?: number;
  readonly format: "text" | "json";
  readonly printKey?: boolean;
  readonly keySeparator: string;
  readonly group?: string;
  /** Skip batches that cannot be read (reported on stderr). */
  readonly skipCorrupt?: boolean;
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

function startOf(o: ConsumeOptions): SeekTarget {
  const given = [o.fromBeginning === true, o.offset !== undefined, o.timestamp !== undefined].filter(Boolean).length;
  if (given > 1) throw new CliError("consume: give at most one of --from-beginning, --offset, --timestamp");
  if (o.fromBeginning) return "earliest";
  if (o.offset !== undefined) return o.offset;
  if (o.timestamp !== undefined) return { timestampMs: o.timestamp };
  return "latest";
}

function text(b: Buffer | null): string | null {
  return b === null ? null : b.toString("utf8");
}

/** One output line for `r`. */
export function formatRecord(r: ConsumerRecord, o: Pick<ConsumeOptions, "format" | "printKey" | "keySeparator">): string {
  if (o.format === "json") {
    const headers = r.headers.map((h) => ({ key: h.key, value: text(h.value) }));
    return `${JSON.stringify({ topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestampMs, key: text(r.key), value: text(r.value), headers })}\n`;
  }
  const value = text(r.value) ?? "null";
  return o.printKey ? `${text(r.key) ?? "null"}${o.keySeparator}${value}\n` : `${value}\n`;
}

/** Prints records of `topic` until a stop condition; see the module comment. */
export async function consume(ctx: Context, topic: string, o: ConsumeOptions): Promise<void> {
  if (o.group !== undefined) return consumeInGroup(ctx, topic, o.group, o);
  const start = startOf(o);
  if (o.maxMessages === 0) return;
  const consumer = new Consumer({
    ...clientOptions(ctx),
    autoOffsetReset: o.fromBeginning ? "earliest" : "latest",
    ...corruptOptions(ctx, o),
  });
  const stop = (): void => void consumer.close();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let idle: ReturnType<typeof setTimeout> | null = null;
  const armIdle = (): void => {
    if (o.timeoutMs === undefined) return;
    if (idle !== null) clearTimeout(idle);
    idle = setTimeout(stop, o.timeoutMs);
  };
  try {
    const count = await consumer.partitionCount(topic);
    if (o.partition !== undefined) checkPartition(topic, o.partition, count);
    const partitions = o.partition !== undefined ? [o.partition] : Array.from({ length: count }, (_, i) => i);
    consumer.assign(partitions.map((partition) => ({ topic, partition, offset: start })));
    armIdle();
    let n = 0;
    for await (const r of consumer) {
      await write(ctx.io.stdout, formatRecord(r, o));
      armIdle();
      if (o.maxMessages !== undefined && ++n >= o.maxMessages) break;
    }
  } finally {
    if (idle !== null) clearTimeout(idle);
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await consumer.close();
  }
}

/** How often `consume --group` commits what it printed. */
const GROUP_COMMIT_INTERVAL_MS = 1000;

/** `consume --group G`: a group member; commits the printed records' offsets as it goes. */
async function consumeInGroup(ctx: Context, topic: string, group: string, o: ConsumeOptions): Promise<void> {
  for (const [flag, given] of [
    ["--offset", o.offset !== undefined],
    ["--timestamp", o.timestamp !== undefined],
    ["--partition", o.partition !== undefined],
  ] as const) {
    if (given)
      throw new CliError(`consume: ${flag} cannot be used with --group (the group's committed offsets and the broker's assignment decide)`);
  }
  if (o.maxMessages === 0) return;
  // An unknown topic (or a broker that is not running) is reported here, in one line.
  const admin = new Admin(clientOptions(ctx));
  try {
    await admin.describeTopics([topic], { includeConfigs: false });
  } finally {
    await admin.close();
  }
  const consumer = new GroupConsumer({
    ...clientOptions(ctx),
    groupId: group,
    autoOffsetReset: o.fromBeginning ? "earliest" : "latest",
    autoCommit: true,
    autoCommitIntervalMs: GROUP_COMMIT_INTERVAL_MS,
    clientId: "rill-cli",
    ...corruptOptions(ctx, o),
  });
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    void consumer.close().catch(() => undefined);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let idle: ReturnType<typeof setTimeout> | null = null;
  const armIdle = (): void => {
    if (o.timeoutMs === undefined) return;
    if (idle !== null) clearTimeout(idle);
    idle = setTimeout(stop, o.timeoutMs);
  };
  try {
    consumer.subscribe([topic]);
    armIdle();
    let n = 0;
    for await (const r of consumer) {
      await write(ctx.io.stdout, formatRecord(r, o));
      armIdle();
      if (o.maxMessages !== undefined && ++n >= o.maxMessages) break;
    }
  } catch (e) {
    await consumer.close().catch(() => undefined);
    throw e;
  } finally {
    if (idle !== null) clearTimeout(idle);
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  // Commits what was printed, then leaves the group (errors reach the one error line).
  if (!stopped) await consumer.close();
  else await consumer.close().catch(() => undefined);
}
