/**
 * The checker of the transactional fault scenario (txn-engine.ts): consume–transform–produce
 * workers read an input topic and, in one transaction each time, write one record per input
 * record to each of two output topics and commit the input offsets with the transaction. Pure:
 * it judges what the round recorded.
 *
 * What the round records:
 * - every transaction a worker attempted (`TxnAttempt`): its tag (unique in the round), the
 *   input records it processed, the output records it sent, and how it ended — `committed`
 *   (EndTransaction(commit) answered OK), `aborted` (EndTransaction(abort) answered OK),
 *   `abandoned` (the worker dropped it without ending it, as a crashed process would; a new
 *   InitProducerId with the same transactional id must abort it), or `unknown` (no answer, or an
 *   error after which it may have committed);
 * - every READ_COMMITTED read of an output partition made during the run and by the final read
 *   (the whole partition, after every transaction ended), with each record's value;
 * - the last stable offsets READ_COMMITTED answers reported, per node and partition, with the
 *   node's incarnation (a restarted node starts a new one);
 * - the group's committed offset of each input partition at the end, and each input partition's
 *   records (offset and value).
 *
 * An output record's value is `<topic letter>|<input value>|<tag>`.
 *
 * Anomalies (0 required):
 * - abortedRead: a READ_COMMITTED read returned a record of a transaction that was aborted or
 *   abandoned;
 * - lostCommit: a record of a transaction whose commit was acknowledged is missing from the final
 *   read;
 * - torn: some but not all of a transaction's records are in the final read;
 * - duplicate / missing (exactly once): an input record below the group's committed offset
 *   appears other than exactly once in an output topic's final read (by input value); one at or
 *   above it appears at all;
 * - phantom: a value in a read that no worker sent;
 * - lsoBackwards: a node's last stable offset of a partition went down within one incarnation.
 */

/** How a transaction ended, as its worker saw it. */
export type TxnOutcome = "committed" | "aborted" | "abandoned" | "unknown";

/** One output record a transaction sent. */
export interface TxnOutput {
  readonly topic: string;
  readonly partition: number;
  readonly value: string;
}

/** One transaction a worker attempted. */
export interface TxnAttempt {
  readonly tag: string;
  readonly worker: number;
  /** Input values it processed (each once). */
  readonly inputs: readonly string[];
  readonly outputs: TxnOutput[];
  outcome: TxnOutcome;
  /** Why, for `unknown` (and errors that led to an abort). */
  reason: string;
  /** Retriable errors answered (and retried) inside it. */
  readonly retries: string[];
  readonly startedAtMs: number;
  endedAtMs: number;
}

/** One partition of one READ_COMMITTED answer. */
export interface TxnRead {
  readonly reader: string;
  readonly node: number;
  readonly topic: string;
  readonly partition: number;
  readonly atMs: number;
  readonly values: readonly string[];
}

/** A last stable offset a node answered. */
export interface LsoSample {
  readonly node: number;
  /** Counts the node's restarts: samples of different incarnations are not compared. */
  readonly incarnation: number;
  readonly topic: string;
  readonly partition: number;
  readonly atMs: number;
  readonly lso: number;
}

/** Everything a transactional round recorded. */
export interface TxnHistory {
  readonly attempts: Map<string, TxnAttempt>;
  readonly reads: TxnRead[];
  readonly lso: LsoSample[];
  /** The output topics (each input record must reach every one exactly once). */
  readonly outputTopics: readonly string[];
  /** Input partition -> its records' values, by offset. */
  readonly input: Map<number, readonly string[]>;
  /** Input partition -> the group's committed offset at the end (-1: none). */
  readonly committed: Map<number, number>;
  /** The reader name of the final read. */
  readonly finalReader: string;
}

export interface TxnAnomalies {
  readonly abortedRead: { tag: string; value: string; reader: string; node: number; atMs: number; outcome: TxnOutcome }[];
  readonly lostCommit: { tag: string; missing: string[] }[];
  readonly torn: { tag: string; seen: number; of: number; missing: string[] }[];
  readonly duplicate: { topic: string; input: string; times: number }[];
  readonly missing: { topic: string; input: string }[];
  readonly beyondCommitted: { topic: string; input: string; inputPartition: number; committed: number }[];
  readonly phantom: { value: string; reader: string; node: number; topic: string; partition: number }[];
  readonly lsoBackwards: { node: number; topic: string; partition: number; from: number; to: number; atMs: number }[];
}

export interface TxnCheckResult {
  readonly anomalies: TxnAnomalies;
  readonly total: number;
  readonly counts: {
    readonly attempts: number;
    readonly committed: number;
    readonly aborted: number;
    readonly abandoned: number;
    readonly unknown: number;
    /** Input records below the committed offsets (each must be in every output exactly once). */
    readonly inputsCommitted: number;
    readonly inputsTotal: number;
    readonly finalRecords: number;
    readonly readsDuringRun: number;
  };
}

/** The input value an output value came from, and its tag; null for a value not of that shape. */
export function parseOutput(value: string): { input: string; tag: string } | null {
  const a = value.indexOf("|");
  const b = value.lastIndexOf("|");
  if (a < 0 || b <= a) return null;
  return { input: value.slice(a + 1, b), tag: value.slice(b + 1) };
}

/** Judges `h` (see the file comment). */
export function checkTxn(h: TxnHistory): TxnCheckResult {
  const anomalies: TxnAnomalies = {
    abortedRead: [],
    lostCommit: [],
    torn: [],
    duplicate: [],
    missing: [],
    beyondCommitted: [],
    phantom: [],
    lsoBackwards: [],
  };
  const sent = new Map<string, TxnAttempt>();
  for (const a of h.attempts.values()) for (const o of a.outputs) sent.set(`${o.topic}\u0000${o.value}`, a);

  // Reads: phantoms and aborted reads (during the run and in the final read).
  let readsDuringRun = 0;
  for (const r of h.reads) {
    if (r.reader !== h.finalReader) readsDuringRun++;
    for (const v of r.values) {
      const a = sent.get(`${r.topic}\u0000${v}`);
      if (a === undefined) {
        anomalies.phantom.push({ value: v, reader: r.reader, node: r.node, topic: r.topic, partition: r.partition });
        continue;
      }
      if (a.outcome === "aborted" || a.outcome === "abandoned")
        anomalies.abortedRead.push({ tag: a.tag, value: v, reader: r.reader, node: r.node, atMs: r.atMs, outcome: a.outcome });
    }
  }

  // The final read, per topic: which output values are there, how often.
  const finalSeen = new Map<string, number>();
  let finalRecords = 0;
  for (const r of h.reads) {
    if (r.reader !== h.finalReader) continue;
    for (const v of r.values) {
      finalRecords++;
      const k = `${r.topic}\u0000${v}`;
      finalSeen.set(k, (finalSeen.get(k) ?? 0) + 1);
    }
  }

  // Per transaction: all or nothing; all when its commit was acknowledged.
  for (const a of h.attempts.values()) {
    if (a.outputs.length === 0) continue;
    const missing = a.outputs.filter((o) => !finalSeen.has(`${o.topic}\u0000${o.value}`)).map((o) => `${o.topic}:${o.value}`);
    const seen = a.outputs.length - missing.length;
    if (a.outcome === "committed" && missing.length > 0) anomalies.lostCommit.push({ tag: a.tag, missing: missing.slice(0, 5) });
    else if (seen > 0 && missing.length > 0) anomalies.torn.push({ tag: a.tag, seen, of: a.outputs.length, missing: missing.slice(0, 5) });
  }

  // Exactly once, by input value, against the group's committed offsets.
  const perInput = new Map<string, number>(); // topic \0 input -> times in the final read
  for (const [k, n] of finalSeen) {
    const [topic, value] = k.split("\u0000") as [string, string];
    const p = parseOutput(value);
    if (p === null) continue;
    const key = `${topic}\u0000${p.input}`;
    perInput.set(key, (perInput.get(key) ?? 0) + n);
  }
  let inputsCommitted = 0;
  let inputsTotal = 0;
  for (const [partition, values] of h.input) {
    const committed = h.committed.get(partition) ?? -1;
    values.forEach((input, offset) => {
      inputsTotal++;
      const below = offset < committed;
      if (below) inputsCommitted++;
      for (const topic of h.outputTopics) {
        const times = perInput.get(`${topic}\u0000${input}`) ?? 0;
        if (below && times === 0) anomalies.missing.push({ topic, input });
        else if (times > 1) anomalies.duplicate.push({ topic, input, times });
        else if (!below && times > 0) anomalies.beyondCommitted.push({ topic, input, inputPartition: partition, committed });
      }
    });
  }

  // Last stable offsets never go down within one incarnation of a node.
  const last = new Map<string, LsoSample>();
  for (const s of [...h.lso].sort((x, y) => x.atMs - y.atMs)) {
    const k = `${s.node}/${s.incarnation}/${s.topic}/${s.partition}`;
    const prev = last.get(k);
    if (prev !== undefined && s.lso < prev.lso)
      anomalies.lsoBackwards.push({ node: s.node, topic: s.topic, partition: s.partition, from: prev.lso, to: s.lso, atMs: s.atMs });
    if (prev === undefined || s.lso >= prev.lso) last.set(k, s);
  }

  const count = (o: TxnOutcome): number => [...h.attempts.values()].filter((a) => a.outcome === o).length;
  const total = Object.values(anomalies).reduce((n, xs: unknown[]) => n + xs.length, 0);
  return {
    anomalies,
    total,
    counts: {
      attempts: h.attempts.size,
      committed: count("committed"),
      aborted: count("aborted"),
      abandoned: count("abandoned"),
      unknown: count("unknown"),
      inputsCommitted,
      inputsTotal,
      finalRecords,
      readsDuringRun,
    },
  };
}
