/**
 * `rill acl add|list|remove` (flags as Kafka's kafka-acls) and `rill user add|list|remove` (SCRAM
 * credentials). A password is never taken on the command line: `rill user add` reads it from
 * `--new-password-file`, or from stdin (first line), prompting without echo on a terminal.
 */

import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError, Option } from "commander";
import { Admin } from "../client/admin.ts";
import {
  ACL_OPERATIONS,
  type AclBindingInfo,
  type AclFilter,
  type AclOperationName,
  type AclPatternFilterName,
  type AclPermissionName,
  type AclResourceTypeName,
  formatBinding,
  SCRAM_MECHANISM_NAMES,
  type ScramMechanismName,
} from "../client/acls.ts";
import { type Context, clientOptions } from "./context.ts";
import { CliError, type Io, write } from "./output.ts";
import { collect, intIn } from "./parse.ts";

/** The resource flags of `rill acl`, as given. */
interface ResourceFlags {
  readonly topic?: string[];
  readonly group?: string[];
  readonly cluster?: boolean;
  readonly transactionalId?: string[];
  readonly resourcePatternType?: string;
}

/** Every flag of `rill acl add|list|remove`. */
interface AclFlags extends ResourceFlags {
  readonly allowPrincipal?: string[];
  readonly denyPrincipal?: string[];
  readonly principal?: string[];
  readonly permission?: string;
  readonly operation?: string[];
  readonly host?: string[];
  readonly json?: boolean;
}

const CLUSTER_NAME = "kafka-cluster";

async function withAdmin<T>(ctx: Context, f: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(clientOptions(ctx));
  try {
    return await f(admin);
  } finally {
    await admin.close();
  }
}

function upper(value: string): string {
  return value.toUpperCase().replaceAll("-", "_");
}

function operationOf(value: string): AclOperationName {
  const op = upper(value);
  if (!(ACL_OPERATIONS as readonly string[]).includes(op))
    throw new CliError(`--operation: expected one of ${ACL_OPERATIONS.join(", ")} (any case), got "${value}"`);
  return op as AclOperationName;
}

function mechanismOf(value: string): ScramMechanismName {
  const m = value.toUpperCase();
  if (!(SCRAM_MECHANISM_NAMES as readonly string[]).includes(m))
    throw new InvalidArgumentError(`expected one of ${SCRAM_MECHANISM_NAMES.join(", ")}, got "${value}"`);
  return m as ScramMechanismName;
}

/** The resources the flags name (type and name), in flag order. */
function resourcesOf(o: ResourceFlags): { type: AclResourceTypeName; name: string }[] {
  return [
    ...(o.topic ?? []).map((name) => ({ type: "TOPIC" as const, name })),
    ...(o.group ?? []).map((name) => ({ type: "GROUP" as const, name })),
    ...(o.cluster ? [{ type: "CLUSTER" as const, name: CLUSTER_NAME }] : []),
    ...(o.transactionalId ?? []).map((name) => ({ type: "TRANSACTIONAL_ID" as const, name })),
  ];
}

function patternOf(o: ResourceFlags, fallback: AclPatternFilterName): AclPatternFilterName {
  if (o.resourcePatternType === undefined) return fallback;
  const p = upper(o.resourcePatternType);
  if (!["LITERAL", "PREFIXED", "ANY", "MATCH"].includes(p))
    throw new CliError(`--resource-pattern-type: expected literal, prefixed, any or match, got "${o.resourcePatternType}"`);
  return p as AclPatternFilterName;
}

/** The (principal, permission) pairs the flags name; undefined fields = any (for filters). */
function principalsOf(o: AclFlags): { principal?: string; permission?: AclPermissionName }[] {
  const out: { principal?: string; permission?: AclPermissionName }[] = [
    ...(o.allowPrincipal ?? []).map((principal) => ({ principal, permission: "ALLOW" as const })),
    ...(o.denyPrincipal ?? []).map((principal) => ({ principal, permission: "DENY" as const })),
  ];
  const permission = o.permission === undefined ? undefined : upper(o.permission);
  if (permission !== undefined && permission !== "ALLOW" && permission !== "DENY")
    throw new CliError(`--permission: expected allow or deny, got "${o.permission}"`);
  for (const principal of o.principal ?? [])
    out.push({ principal, ...(permission ? { permission: permission as AclPermissionName } : {}) });
  if (out.length === 0 && permission) out.push({ permission: permission as AclPermissionName });
  return out;
}

function cross<A, B>(as: readonly A[], bs: readonly B[]): [A, B][] {
  return as.flatMap((a) => bs.map((b): [A, B] => [a, b]));
}

/** The bindings `rill acl add` creates: every principal × operation × resource × host. */
export function bindingsOf(o: AclFlags): AclBindingInfo[] {
  const principals = principalsOf(o);
  if (principals.length === 0) throw new CliError("acl add: give --allow-principal or --deny-principal (or --principal with --permission)");
  const operations = (o.operation ?? []).map(operationOf);
  if (operations.length === 0) throw new CliError("acl add: give at least one --operation");
  const resources = resourcesOf(o);
  if (resources.length === 0) throw new CliError("acl add: give a resource: --topic, --group, --cluster or --transactional-id");
  const pattern = patternOf(o, "LITERAL");
  if (pattern !== "LITERAL" && pattern !== "PREFIXED") throw new CliError("acl add: --resource-pattern-type must be literal or prefixed");
  const hosts = o.host?.length ? o.host : ["*"];
  const out: AclBindingInfo[] = [];
  for (const [[p, op], [r, host]] of cross(cross(principals, operations), cross(resources, hosts))) {
    if (!p.principal || !p.permission) throw new CliError("acl add: --principal needs --permission allow|deny");
    out.push({
      principal: p.principal,
      host,
      resourceType: r.type,
      resourceName: r.name,
      patternType: pattern,
      operation: op,
      permission: p.permission,
    });
  }
  return out;
}

/** The filters `rill acl list|remove` use: unset flags match any value. */
export function filtersOf(o: AclFlags, defaultPattern: AclPatternFilterName): AclFilter[] {
  const principals: { principal?: string; permission?: AclPermissionName }[] = principalsOf(o);
  const operations: (AclOperationName | undefined)[] = o.operation?.length ? o.operation.map(operationOf) : [undefined];
  const resources: ({ type: AclResourceTypeName; name: string } | undefined)[] = resourcesOf(o);
  const hosts: (string | undefined)[] = o.host?.length ? o.host : [undefined];
  const pattern = patternOf(o, defaultPattern);
  return cross(cross(principals.length ? principals : [{}], operations), cross(resources.length ? resources : [undefined], hosts)).map(
    ([[p, operation], [r, host]]) => ({
      ...p,
      ...(operation ? { operation } : {}),
      ...(host ? { host } : {}),
      ...(r ? { resourceType: r.type, resourceName: r.name, patternType: pattern } : o.resourcePatternType ? { patternType: pattern } : {}),
    }),
  );
}

async function aclAdd(ctx: Context, o: AclFlags): Promise<void> {
  const bindings = bindingsOf(o);
  await withAdmin(ctx, (admin) => admin.createAcls(bindings));
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify({ added: bindings })}\n`);
  else await write(ctx.io.stdout, bindings.map((b) => `Added ACL: ${formatBinding(b)}\n`).join(""));
}

async function aclList(ctx: Context, o: AclFlags): Promise<void> {
  const filters = filtersOf(o, "ANY");
  const found = await withAdmin(ctx, async (admin) => {
    const seen = new Map<string, AclBindingInfo>();
    for (const f of filters) for (const b of await admin.describeAcls(f)) seen.set(JSON.stringify(b), b);
    return [...seen.values()];
  });
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify(found)}\n`);
  else await write(ctx.io.stdout, found.map((b) => `${formatBinding(b)}\n`).join(""));
}

async function aclRemove(ctx: Context, o: AclFlags): Promise<void> {
  if (resourcesOf(o).length === 0)
    throw new CliError("acl remove: give a resource (--topic, --group, --cluster or --transactional-id), so nothing else is removed");
  const filters = filtersOf(o, "LITERAL");
  const removed = await withAdmin(ctx, (admin) => admin.deleteAcls(filters));
  if (o.json) return write(ctx.io.stdout, `${JSON.stringify({ removed: removed.flat() })}\n`);
  const lines = removed.flat().map((b) => `Removed ACL: ${formatBinding(b)}\n`);
  await write(ctx.io.stdout, lines.length ? lines.join("") : "No ACL matched.\n");
}

/** Reads a new user's password: the file's first line, or stdin's (prompting without echo on a terminal). */
async function readPassword(io: Io, file: string | undefined): Promise<string> {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new CliError(`--new-password-file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    return firstLine(text);
  }
  const stdin = io.stdin as NodeJS.ReadStream;
  if (stdin.isTTY) return promptHidden(io, "Password: ");
  let text = "";
  for await (const chunk of stdin) {
    text += chunk.toString();
    if (text.includes("\n")) break;
  }
  return firstLine(text);
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  const password = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (password === "") throw new CliError("the password is empty");
  return password;
}

/** Reads one line from a terminal without echoing it. */
async function promptHidden(io: Io, prompt: string): Promise<string> {
  const stdin = io.stdin as NodeJS.ReadStream;
  await write(io.stderr, prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    let line = "";
    for await (const chunk of stdin) {
      for (const ch of chunk.toString()) {
        if (ch === "\r" || ch === "\n") return firstLine(line);
        if (ch === "\u0003") throw new CliError("cancelled");
        if (ch === "\u007f") line = line.slice(0, -1);
        else line += ch;
      }
    }
    return firstLine(line);
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    await write(io.stderr, "\n");
  }
}

interface UserFlags {
  readonly mechanism?: ScramMechanismName[];
  readonly iterations?: number;
  readonly newPasswordFile?: string;
  readonly json?: boolean;
}

async function userAdd(ctx: Context, name: string, o: UserFlags): Promise<void> {
  const mechanisms = o.mechanism?.length ? o.mechanism : [...SCRAM_MECHANISM_NAMES];
  const password = await readPassword(ctx.io, o.newPasswordFile);
  await withAdmin(ctx, (admin) =>
    admin.alterUserScramCredentials({
      upsertions: mechanisms.map((mechanism) => ({ name, mechanism, iterations: o.iterations, password })),
    }),
  );
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify({ user: name, set: mechanisms })}\n`);
  else await write(ctx.io.stdout, `Set ${mechanisms.join(" and ")} credentials of user ${name}.\n`);
}

async function userList(ctx: Context, o: UserFlags): Promise<void> {
  const users = await withAdmin(ctx, (admin) => admin.describeUserScramCredentials());
  if (o.json) {
    await write(ctx.io.stdout, `${JSON.stringify(users)}\n`);
    return;
  }
  const lines = users.map((u) => `${u.user}\t${u.credentials.map((c) => `${c.mechanism} (${c.iterations} iterations)`).join(", ")}\n`);
  await write(ctx.io.stdout, lines.join(""));
}

async function userRemove(ctx: Context, name: string, o: UserFlags): Promise<void> {
  const removed = await withAdmin(ctx, async (admin) => {
    const mechanisms = o.mechanism?.length
      ? o.mechanism
      : (await admin.describeUserScramCredentials([name]))[0]!.credentials.map((c) => c.mechanism);
    await admin.alterUserScramCredentials({ deletions: mechanisms.map((mechanism) => ({ name, mechanism })) });
    return mechanisms;
  });
  if (o.json) await write(ctx.io.stdout, `${JSON.stringify({ user: name, removed })}\n`);
  else await write(ctx.io.stdout, `Removed ${removed.join(" and ")} credentials of user ${name}.\n`);
}

function resourceOptions(cmd: Command, what: string): Command {
  return cmd
    .option("--topic <name>", `topic ${what} (repeatable; * = every topic)`, collect)
    .option("--group <id>", `consumer group ${what} (repeatable; * = every group)`, collect)
    .option("--cluster", `the cluster (${CLUSTER_NAME})`)
    .option("--transactional-id <id>", `transactional id ${what} (repeatable)`, collect)
    .option("--resource-pattern-type <type>", "literal, prefixed (add); also any, match (list, remove)")
    .option("--operation <op>", `operation (repeatable): ${ACL_OPERATIONS.join(", ")}`, collect)
    .option("--host <ip>", "client IP address (repeatable; default *)", collect);
}

function principalOptions(cmd: Command): Command {
  return cmd
    .option("--allow-principal <principal>", "User:<name> (or User:*) the ACL allows (repeatable)", collect)
    .option("--deny-principal <principal>", "User:<name> (or User:*) the ACL denies (repeatable)", collect)
    .option("--principal <principal>", "User:<name>, with --permission (repeatable)", collect)
    .option("--permission <allow|deny>", "with --principal");
}

/** Adds `acl` and `user` to the program. */
export function registerSecurityCommands(program: Command, ctx: (cmd: Command) => Context): void {
  const acl = program.command("acl").description("add, list and remove ACL bindings (Kafka's model; DENY wins)");
  principalOptions(
    resourceOptions(acl.command("add").description("add ACL bindings: every principal × operation × resource × host"), "to protect"),
  )
    .option("--json", "print JSON")
    .action(async (o: AclFlags, cmd: Command) => aclAdd(ctx(cmd), o));
  principalOptions(resourceOptions(acl.command("list").description("list ACL bindings (flags filter; none: all)"), "to list"))
    .option("--json", "print JSON")
    .action(async (o: AclFlags, cmd: Command) => aclList(ctx(cmd), o));
  principalOptions(resourceOptions(acl.command("remove").description("remove the ACL bindings the flags match"), "whose ACLs to remove"))
    .option("--json", "print JSON")
    .action(async (o: AclFlags, cmd: Command) => aclRemove(ctx(cmd), o));

  const user = program.command("user").description("add, list and remove SCRAM users (passwords are stored salted only)");
  const mechanism = () =>
    new Option("--mechanism <mechanism>", "SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default both)").argParser(
      (v: string, prev: ScramMechanismName[] = []) => [...prev, mechanismOf(v)],
    );
  user
    .command("add <name>")
    .description("create or replace a user's credentials; the password comes from --new-password-file or stdin, never the command line")
    .addOption(mechanism())
    .option("--iterations <n>", "PBKDF2 iterations, 4096 to 16384 (default 4096)", intIn(4096, 16384))
    .option("--new-password-file <file>", "file whose first line is the new password")
    .option("--json", "print JSON")
    .action(async (name: string, o: UserFlags, cmd: Command) => userAdd(ctx(cmd), name, o));
  user
    .command("list")
    .description("list users with their mechanisms and iteration counts")
    .option("--json", "print JSON")
    .action(async (o: UserFlags, cmd: Command) => userList(ctx(cmd), o));
  user
    .command("remove <name>")
    .description("delete a user's credentials (default: all of them)")
    .addOption(mechanism())
    .option("--json", "print JSON")
    .action(async (name: string, o: UserFlags, cmd: Command) => userRemove(ctx(cmd), name, o));
}
