/**
 * `rill group list|describe|reset-offsets|delete` over GroupService (the SDK's GroupAdmin).
 * Tables are plain text with aligned columns ("-" where there is no value); `--json` prints the
 * same data as one JSON value.
 */

import { GroupAdmin, type GroupDescription, type GroupOffset, type ResetTarget } from "../client/group-admin.ts";
import { type Context, clientOptions } from "./context.ts";
import { CliError, write } from "./output.ts";

async function withGroupAdmin<T>(ctx: Context, f: (admin: GroupAdmin) => Promise<T>): Promise<T> {
  const admin = new GroupAdmin(clientOptions(ctx));
  try {
    return await f(admin);
  } finally {
    await admin.close();
  }
}

/** Rows as columns padded to the widest cell (the last column is not padded). */
export function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return (
    cells
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

const dash = (n: number): string | number => (n < 0 ? "-" : n);

/** `rill group list`: id, state and member count of every group. */
export async function listGroups(ctx: Context, o: { json?: boolean }): Promise<void> {
  const groups = await withGroupAdmin(ctx, (a) => a.listGroups());
  if (o.json) {
    await write(ctx.io.stdout, `${JSON.stringify(groups)}\n`);
    return;
  }
  await write(
    ctx.io.stdout,
    table(
      ["GROUP", "STATE", "MEMBERS"],
      groups.map((g) => [g.groupId, g.state, g.members]),
    ),
  );
}

/** `rill group describe G`: the group's state, per-partition offsets and lag, and its members. */
export async function describeGroup(ctx: Context, groupId: string, o: { json?: boolean }): Promise<void> {
  const [g] = await withGroupAdmin(ctx, (a) => a.describeGroups([groupId]));
  if (o.json) {
    await write(ctx.io.stdout, `${JSON.stringify(g)}\n`);
    return;
  }
  await write(ctx.io.stdout, formatGroup(g!));
}

/** The text form of `group describe`. */
export function formatGroup(g: GroupDescription): string {
  const members = new Map(g.members.map((m) => [m.memberId, m]));
  const head =
    `Group: ${g.groupId}\tState: ${g.state}\tMembers: ${g.members.length}\tGroupEpoch: ${g.groupEpoch}` +
    `\tAssignmentEpoch: ${g.assignmentEpoch}\tAssignor: ${g.assignor || "-"}\tCoordinator: ${g.coordinatorId}\n`;
  const offsets = table(
    ["TOPIC", "PARTITION", "COMMITTED-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST"],
    g.offsets.map((p) => {
      const m = members.get(p.memberId);
      return [
        p.topic,
        p.partition,
        dash(p.committedOffset),
        dash(p.logEndOffset),
        dash(p.lag),
        p.memberId || "-",
        m?.clientId || "-",
        m?.clientHost || "-",
      ];
    }),
  );
  const parts = (list: GroupDescription["members"][number]["assignment"]): string =>
    list.flatMap((t) => t.partitions.map((p) => `${t.topic}-${p}`)).join(",") || "-";
  const memberTable = table(
    ["MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "EPOCH", "TOPICS", "ASSIGNMENT", "TARGET"],
    g.members.map((m) => [
      m.memberId,
      m.instanceId ?? "-",
      m.clientId || "-",
      m.clientHost || "-",
      m.memberEpoch,
      m.topics.join(",") || "-",
      parts(m.assignment),
      parts(m.targetAssignment),
    ]),
  );
  return `${head}\n${offsets}${g.members.length > 0 ? `\n${memberTable}` : ""}`;
}

/** Options of `group reset-offsets`. */
export interface ResetOptions {
  readonly topic: string;
  readonly partition?: number[];
  readonly toEarliest?: boolean;
  readonly toLatest?: boolean;
  readonly toOffset?: number;
  readonly toTimestamp?: number | undefined;
  /** Show the new offsets only (the default; kept for scripts that say so). */
  readonly dryRun?: boolean;
  /** Commit the new offsets (without it nothing is committed, as Kafka's tool). */
  readonly execute?: boolean;
  readonly json?: boolean;
}

function resetTarget(o: ResetOptions): ResetTarget {
  const given: ResetTarget[] = [];
  if (o.toEarliest) given.push("earliest");
  if (o.toLatest) given.push("latest");
  if (o.toOffset !== undefined) given.push({ offset: o.toOffset });
  if (o.toTimestamp !== undefined) given.push({ timestampMs: o.toTimestamp });
  if (given.length !== 1)
    throw new CliError("group reset-offsets: give exactly one of --to-earliest, --to-latest, --to-offset N, --to-timestamp MS");
  return given[0]!;
}

/**
 * `rill group reset-offsets G --topic T --to-...`: shows the offsets the group's would be reset
 * to; with `--execute` commits them (the group must have no members), as Kafka's
 * kafka-consumer-groups.sh.
 */
export async function resetOffsets(ctx: Context, groupId: string, o: ResetOptions): Promise<void> {
  const target = resetTarget(o);
  if (o.execute && o.dryRun) throw new CliError("group reset-offsets: give --execute or --dry-run, not both");
  const dryRun = o.execute !== true;
  const partitions = [{ topic: o.topic, partitions: o.partition ?? [] }];
  const offsets: GroupOffset[] = await withGroupAdmin(ctx, (a) => a.resetOffsets(groupId, partitions, target, { dryRun }));
  if (o.json) {
    await write(ctx.io.stdout, `${JSON.stringify({ groupId, dryRun, offsets })}\n`);
    return;
  }
  const what = dryRun
    ? `Offsets group ${groupId} would be reset to (preview, nothing committed; add --execute to commit):`
    : `Reset offsets of group ${groupId}:`;
  await write(
    ctx.io.stdout,
    `${what}\n${table(
      ["TOPIC", "PARTITION", "NEW-OFFSET"],
      offsets.map((x) => [x.topic, x.partition, x.offset]),
    )}`,
  );
}

/** `rill group delete G`: deletes a group without members and its committed offsets. */
export async function deleteGroup(ctx: Context, groupId: string, o: { json?: boolean } = {}): Promise<void> {
  await withGroupAdmin(ctx, (a) => a.deleteGroups([groupId]));
  await write(ctx.io.stdout, o.json ? `${JSON.stringify({ deleted: groupId })}\n` : `Deleted group ${groupId}.\n`);
}
