/**
 * `rill quota set|list` (issue 13): client byte-rate quotas of users and/or client ids.
 *
 *   rill quota set --for-user alice --producer-byte-rate 1048576
 *   rill quota set --default-user --for-client-id app --consumer-byte-rate 2097152
 *   rill quota set --client-id app --remove producer_byte_rate
 *   rill quota list [--for-user alice] [--json]
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { Admin, type QuotaEntity, type QuotaFilter, type QuotaKey, quotaEntityName } from "../client/admin.ts";
import { type Context, clientOptions } from "./context.ts";
import { CliError, write } from "./output.ts";
import { intIn } from "./parse.ts";

/** Options of `quota set`. */
export interface QuotaSetOptions {
  readonly forUser?: string;
  readonly defaultUser?: boolean;
  readonly forClientId?: string;
  readonly defaultClientId?: boolean;
  readonly producerByteRate?: number;
  readonly consumerByteRate?: number;
  readonly remove?: string[];
  readonly validateOnly?: boolean;
  readonly json?: boolean;
}

/** Options of `quota list`. */
export interface QuotaListOptions {
  readonly forUser?: string;
  readonly defaultUser?: boolean;
  readonly forClientId?: string;
  readonly defaultClientId?: boolean;
  readonly json?: boolean;
}

const KEYS: readonly QuotaKey[] = ["producer_byte_rate", "consumer_byte_rate"];

/** The entity the options name; a usage error when they name none, or a part two ways. */
export function entityOf(o: { forUser?: string; defaultUser?: boolean; forClientId?: string; defaultClientId?: boolean }): QuotaEntity {
  if (o.forUser !== undefined && o.defaultUser) throw new CliError("give --for-user or --default-user, not both");
  if (o.forClientId !== undefined && o.defaultClientId) throw new CliError("give --for-client-id or --default-client-id, not both");
  const user = o.defaultUser ? null : o.forUser;
  const clientId = o.defaultClientId ? null : o.forClientId;
  if (user === undefined && clientId === undefined)
    throw new CliError("name an entity: --for-user, --default-user, --for-client-id and/or --default-client-id");
  return { ...(user !== undefined ? { user } : {}), ...(clientId !== undefined ? { clientId } : {}) };
}

/** Sets and removes the quotas of one entity. */
export async function setQuota(ctx: Context, o: QuotaSetOptions): Promise<void> {
  const entity = entityOf(o);
  const set: Partial<Record<QuotaKey, number>> = {
    ...(o.producerByteRate !== undefined ? { producer_byte_rate: o.producerByteRate } : {}),
    ...(o.consumerByteRate !== undefined ? { consumer_byte_rate: o.consumerByteRate } : {}),
  };
  const remove = (o.remove ?? []) as QuotaKey[];
  if (Object.keys(set).length === 0 && remove.length === 0)
    throw new CliError("nothing to change: give --producer-byte-rate, --consumer-byte-rate or --remove <key>");
  const admin = new Admin(clientOptions(ctx));
  try {
    await admin.alterClientQuotas([{ entity, set, remove }], { validateOnly: o.validateOnly ?? false });
  } finally {
    await admin.close();
  }
  if (o.json) return write(ctx.io.stdout, `${JSON.stringify({ entity, set, removed: remove, validateOnly: o.validateOnly ?? false })}\n`);
  const changes = [...Object.entries(set).map(([k, v]) => `${k}=${v}`), ...remove.map((k) => `${k} removed`)];
  await write(ctx.io.stdout, `${o.validateOnly ? "Valid" : "Set"}: ${quotaEntityName(entity)} ${changes.join(", ")}.\n`);
}

/** Lists the quotas of the entities the options match (all without options). */
export async function listQuotas(ctx: Context, o: QuotaListOptions): Promise<void> {
  const filter: QuotaFilter = {
    ...(o.defaultUser ? { user: "default" as const } : o.forUser !== undefined ? { user: { name: o.forUser } } : {}),
    ...(o.defaultClientId ? { clientId: "default" as const } : o.forClientId !== undefined ? { clientId: { name: o.forClientId } } : {}),
  };
  const admin = new Admin(clientOptions(ctx));
  const quotas = await admin.describeClientQuotas(filter).finally(() => admin.close());
  if (o.json) {
    await write(ctx.io.stdout, `${JSON.stringify(quotas)}\n`);
    return;
  }
  const lines = quotas.map(
    (q) =>
      `${quotaEntityName(q.entity)} ${KEYS.filter((k) => q.values[k] !== undefined)
        .map((k) => `${k}=${q.values[k]}`)
        .join(" ")}\n`,
  );
  await write(ctx.io.stdout, lines.join(""));
}

function quotaKey(value: string, previous: string[] = []): string[] {
  if (!(KEYS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${KEYS.join(", ")}, got "${value}"`);
  return [...previous, value];
}

function entityOptions(cmd: Command): Command {
  return cmd
    .option(
      "--for-user <name>",
      "the user the quota is for (principal User:<name>; ANONYMOUS without authentication). Not --user, which names who logs in",
    )
    .option("--default-user", "the default user entity: every user without a quota of its own")
    .option("--for-client-id <id>", "the client id the quota is for (call metadata rill-client-id)")
    .option("--default-client-id", "the default client-id entity");
}

/** Adds `rill quota set|list` to `program`. */
export function registerQuota(program: Command, contextOf: (cmd: Command) => Context): void {
  const quota = program.command("quota").description("set and list client byte-rate quotas of users and client ids");
  entityOptions(quota.command("set").description("set or remove the quotas of one user and/or client id"))
    .option("--producer-byte-rate <bytes>", "bytes per second the entity may produce", intIn(1, Number.MAX_SAFE_INTEGER))
    .option("--consumer-byte-rate <bytes>", "bytes per second the entity may consume", intIn(1, Number.MAX_SAFE_INTEGER))
    .option("--remove <key>", "remove a quota: producer_byte_rate or consumer_byte_rate (repeatable)", quotaKey)
    .option("--validate-only", "check the change and store nothing")
    .option("--json", "print JSON")
    .action(async (o: QuotaSetOptions, cmd: Command) => setQuota(contextOf(cmd), o));
  entityOptions(quota.command("list").description("list quotas (filtered by the entity options given)"))
    .option("--json", "print JSON")
    .action(async (o: QuotaListOptions, cmd: Command) => listQuotas(contextOf(cmd), o));
}
