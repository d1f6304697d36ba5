/**
 * A consumer-group member as its own process, for test/integration/groups-scenario.test.ts:
 * consumes with the SDK's GroupConsumer, "processes" each record (prints it), then commits it,
 * and prints one JSON line per record, assignment change and commit outcome.
 *
 * Run with bun: `bun test/integration/group-consumer-proc.ts`, configured by the environment:
 *   RILL_BOOTSTRAP       broker address (required)
 *   GROUP                group id (required)
 *   TOPICS               comma-separated topics (required)
 *   NAME                 label printed on every line (default: the pid)
 *   NO_COMMIT_LAST       K: commits trail processing by K records, so at any moment the last K
 *                        processed records are not committed (default 0: commit each record)
 *   SESSION_TIMEOUT_MS   session timeout asked for (default 6000)
 *   AUTO_OFFSET_RESET    earliest | latest | none (default earliest)
 *   MAX_OUTSTANDING      max_outstanding_records (default: the broker's)
 *
 * Lines (stdout), each with "name" and "t" (Date.now()):
 *   {"type":"assigned"|"revoked","partitions":[{"topic","partition"}],"memberId","epoch"}
 *   {"type":"record","topic","partition","offset","key","value"}
 *   {"type":"committed","topic","partition","offset"}                 (the broker confirmed it)
 *   {"type":"commit-failed","topic","partition","offset","error"}
 *   {"type":"abandoned","topic","partition","offset"}   (processed, revoked before its commit)
 *   {"type":"closed"}                                   (after SIGTERM: left the group)
 *   {"type":"error","error"}                            (then exit 1)
 * SIGTERM closes the consumer (leaving the group) and exits 0; SIGKILL is the crash case.
 */

import { GroupConsumer, type GroupTopicPartition } from "../../src/client/group-consumer.ts";

const env = process.env;
const need = (k: string): string => {
  const v = env[k];
  if (v === undefined || v === "") {
    process.stderr.write(`group-consumer-proc: ${k} is required\n`);
    process.exit(2);
  }
  return v;
};
const bootstrap = need("RILL_BOOTSTRAP");
const groupId = need("GROUP");
const topics = need("TOPICS").split(",");
const name = env["NAME"] ?? String(process.pid);
const noCommitLast = Number(env["NO_COMMIT_LAST"] ?? "0");
const sessionTimeoutMs = Number(env["SESSION_TIMEOUT_MS"] ?? "6000");
const autoOffsetReset = (env["AUTO_OFFSET_RESET"] ?? "earliest") as "earliest" | "latest" | "none";
const maxOutstanding = env["MAX_OUTSTANDING"] !== undefined ? Number(env["MAX_OUTSTANDING"]) : undefined;

function out(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ name, t: Date.now(), ...line })}\n`);
}

/** Processed records whose commit is held back (NO_COMMIT_LAST). */
let trailing: Array<{ topic: string; partition: number; offset: number }> = [];

const consumer: GroupConsumer = new GroupConsumer({
  bootstrap,
  groupId,
  autoOffsetReset,
  autoCommit: false,
  sessionTimeoutMs,
  maxOutstandingRecords: maxOutstanding,
  clientId: name,
  retry: { retries: 3 },
  onAssigned: (partitions: GroupTopicPartition[]): void =>
    out({ type: "assigned", partitions, memberId: consumer.memberId, epoch: consumer.memberEpoch }),
  onRevoked: (partitions: GroupTopicPartition[]): void => {
    // Held-back commits of a revoked partition can no longer be made (and must not be made
    // later, should the partition come back: that would move its offset backwards).
    const gone = new Set(partitions.map((p) => `${p.topic}\u0000${p.partition}`));
    for (const r of trailing) if (gone.has(`${r.topic}\u0000${r.partition}`)) out({ type: "abandoned", ...r });
    trailing = trailing.filter((r) => !gone.has(`${r.topic}\u0000${r.partition}`));
    out({ type: "revoked", partitions, memberId: consumer.memberId, epoch: consumer.memberEpoch });
  },
});

async function commitOne(r: { topic: string; partition: number; offset: number }): Promise<void> {
  const offset = r.offset + 1;
  try {
    await consumer.commit([{ topic: r.topic, partition: r.partition, offset }]);
    out({ type: "committed", topic: r.topic, partition: r.partition, offset });
  } catch (e) {
    out({ type: "commit-failed", topic: r.topic, partition: r.partition, offset, error: e instanceof Error ? e.message : String(e) });
  }
}

let stopping = false;
process.on("SIGTERM", () => {
  stopping = true;
  void consumer.close().finally(() => {
    out({ type: "closed" });
    process.exit(0);
  });
});

try {
  consumer.subscribe(topics);
  for await (const r of consumer) {
    out({
      type: "record",
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      key: r.key?.toString("utf8") ?? null,
      value: r.value?.toString("utf8") ?? null,
    });
    trailing.push({ topic: r.topic, partition: r.partition, offset: r.offset });
    while (trailing.length > noCommitLast) await commitOne(trailing.shift()!);
  }
} catch (e) {
  if (!stopping) {
    out({ type: "error", error: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  }
}
