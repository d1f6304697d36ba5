/**
 * `rill transaction list|describe|abort|find-hanging` (issue 17), as Kafka's kafka-transactions.sh:
 *
 *   rill transaction list [--state Ongoing] [--json]
 *   rill transaction describe <transactional-id> [--json]
 *   rill transaction abort <transactional-id>
 *   rill transaction abort --topic t --partition 0 --producer-id 7 --producer-epoch 3 [--coordinator-epoch 2]
 *   rill transaction find-hanging [--max-transaction-timeout-ms 900000] [--json]
 *
 * A hanging transaction is one open longer than the broker's longest allowed timeout
 * (`transaction.max.timeout.ms`): its producer is gone and the coordinator did not end it.
 */
import type { Command } from "commander";
import { Admin, type TransactionListing } from "../client/admin.ts";
import { type Context, clientOptions } from "./context.ts";
import { CliError, write } from "./output.ts";
import { intIn } from "./parse.ts";

/** Options of `transaction list`. */
export interface TransactionListOptions {
  readonly state?: string[];
  readonly json?: boolean;
}

/** Options of `transaction abort`. */
export interface TransactionAbortOptions {
  readonly topic?: string;
  readonly partition?: number;
  readonly producerId?: number;
  readonly producerEpoch?: number;
  readonly coordinatorEpoch?: number;
}

async function withAdmin<T>(ctx: Context, f: (a: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(clientOptions(ctx));
  try {
    return await f(admin);
  } finally {
    await admin.close();
  }
}

function rows(list: readonly TransactionListing[]): string {
  const head = "TRANSACTIONAL ID\tPRODUCER ID\tSTATE\tOPEN FOR (ms)\tCOORDINATOR\n";
  return (
    head +
    list
      .map((t) => `${t.transactionalId}\t${t.producerId}\t${t.state}\t${t.durationMs < 0 ? "-" : t.durationMs}\t${t.coordinatorId}\n`)
      .join("")
  );
}

/** Lists the transactional ids the coordinators know. */
export async function listTransactions(ctx: Context, o: TransactionListOptions): Promise<void> {
  const list = await withAdmin(ctx, (a) => a.listTransactions({ states: o.state ?? [] }));
  await write(ctx.io.stdout, o.json ? `${JSON.stringify(list)}\n` : rows(list));
}

/** Describes one transactional id. */
export async function describeTransaction(ctx: Context, id: string, o: { json?: boolean }): Promise<void> {
  const [d] = await withAdmin(ctx, (a) => a.describeTransactions([id]));
  if (d === undefined) throw new CliError(`transactional id "${id}": no answer`);
  if (o.json) return write(ctx.io.stdout, `${JSON.stringify(d)}\n`);
  const parts = d.partitions.map((p) => `${p.topic}-${p.partition}`).join(", ") || "-";
  await write(
    ctx.io.stdout,
    `Transactional id: ${d.transactionalId}\nState: ${d.state}\nProducer: id ${d.producerId}, epoch ${d.producerEpoch}\n` +
      `Timeout: ${d.timeoutMs} ms\nStarted: ${d.startTimeMs < 0 ? "-" : new Date(d.startTimeMs).toISOString()}\n` +
      `Partitions: ${parts}\nGroups: ${d.groups.join(", ") || "-"}\nCoordinator: ${d.coordinatorId}\n`,
  );
}

/** Aborts a transactional id's open transaction, or a hanging transaction in one partition. */
export async function abortTransaction(ctx: Context, id: string | undefined, o: TransactionAbortOptions): Promise<void> {
  const partitionForm = o.topic !== undefined || o.partition !== undefined || o.producerId !== undefined;
  if ((id !== undefined) === partitionForm)
    throw new CliError("give a transactional id, or --topic, --partition, --producer-id and --producer-epoch (not both)");
  if (id !== undefined) {
    await withAdmin(ctx, (a) => a.abortTransaction({ transactionalId: id }));
    return write(ctx.io.stdout, `Aborted the open transaction of "${id}".\n`);
  }
  if (o.topic === undefined || o.partition === undefined || o.producerId === undefined || o.producerEpoch === undefined)
    throw new CliError("the partition form needs --topic, --partition, --producer-id and --producer-epoch");
  const target = {
    topic: o.topic,
    partition: o.partition,
    producerId: o.producerId,
    producerEpoch: o.producerEpoch,
    coordinatorEpoch: o.coordinatorEpoch ?? -1,
  };
  await withAdmin(ctx, (a) => a.abortTransaction(target));
  await write(ctx.io.stdout, `Aborted producer ${o.producerId}'s transaction in ${o.topic}-${o.partition}.\n`);
}

/** Lists transactions open longer than the longest allowed timeout. */
export async function findHanging(ctx: Context, o: { maxTransactionTimeoutMs: number; json?: boolean }): Promise<void> {
  const list = await withAdmin(ctx, (a) => a.listTransactions({ durationFilterMs: o.maxTransactionTimeoutMs }));
  const open = list.filter((t) => t.durationMs >= 0);
  await write(ctx.io.stdout, o.json ? `${JSON.stringify(open)}\n` : rows(open));
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Adds `rill transaction list|describe|abort|find-hanging` to `program`. */
export function registerTransactions(program: Command, contextOf: (cmd: Command) => Context): void {
  const t = program.command("transaction").description("list, describe and abort transactions (as kafka-transactions.sh)");
  t.command("list")
    .description("list the transactional ids the coordinators know")
    .option(
      "--state <state>",
      "only this state (repeatable): Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort",
      collect,
    )
    .option("--json", "print JSON")
    .action(async (o: TransactionListOptions, cmd: Command) => listTransactions(contextOf(cmd), o));
  t.command("describe <transactional-id>")
    .description("state, producer, timeout, partitions and groups of a transactional id")
    .option("--json", "print JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => describeTransaction(contextOf(cmd), id, o));
  t.command("abort [transactional-id]")
    .description("abort a transactional id's open transaction, or a hanging one in one partition")
    .option("--topic <topic>", "the partition form: topic")
    .option("--partition <n>", "the partition form: partition", intIn(0, 0x7fffffff))
    .option("--producer-id <id>", "the partition form: the producer whose transaction hangs", intIn(0, Number.MAX_SAFE_INTEGER))
    .option("--producer-epoch <n>", "the partition form: its epoch", intIn(0, 32767))
    .option("--coordinator-epoch <n>", "the partition form: the coordinator epoch of the marker (default -1)", intIn(-1, 0x7fffffff))
    .action(async (id: string | undefined, o: TransactionAbortOptions, cmd: Command) => abortTransaction(contextOf(cmd), id, o));
  t.command("find-hanging")
    .description("transactions open longer than the longest allowed timeout (their producer is gone)")
    .option("--max-transaction-timeout-ms <ms>", "the broker's transaction.max.timeout.ms", intIn(0, 0x7fffffff), 900_000)
    .option("--json", "print JSON")
    .action(async (o: { maxTransactionTimeoutMs: number; json?: boolean }, cmd: Command) => findHanging(contextOf(cmd), o));
}
