/**
 * What a fault round records, as plain data the checker reads: every write a producer attempted
 * with its outcome, and every read (one partition of one Fetch answer) a consumer or the final
 * read-back made.
 *
 * A write's outcome is one of:
 * - `ok`: the broker answered with the record's partition and offset (acks=ALL: replicated to
 *   the ISR, at least min.insync.replicas);
 * - `failed`: a definite error answer — a catalog error that, by the API's contract
 *   (produce_service.proto: "Why the records for this partition were not written"), means
 *   nothing was written;
 * - `unknown`: the outcome cannot be known — no answer (deadline, connection lost), or one of
 *   the catalog errors that say the batch may have been written (REQUEST_TIMED_OUT,
 *   NOT_ENOUGH_REPLICAS_AFTER_APPEND, UNKNOWN_SERVER_ERROR).
 */
import type * as grpc from "@grpc/grpc-js";

/** How one produced value ended. */
export type Outcome =
  | { readonly kind: "ok"; readonly partition: number; readonly offset: number }
  | { readonly kind: "failed"; readonly code: number; readonly name: string; readonly message: string }
  | { readonly kind: "unknown"; readonly reason: string };

/** One value a producer tried to write (each value is unique in a round). */
export interface Write {
  readonly value: string;
  readonly producer: number;
  /** Partition asked for. */
  readonly partition: number;
  /** Node the request was sent to (it forwards to the leader when it does not lead). */
  readonly node: number;
  /** Milliseconds since the round started. */
  readonly sentAtMs: number;
  doneAtMs: number;
  outcome: Outcome | null;
}

/** One partition of one Fetch answer. */
export interface Read {
  /** Who read: "consumer 2" or "final". */
  readonly reader: string;
  readonly node: number;
  readonly partition: number;
  /** Offset asked for. */
  readonly from: number;
  readonly atMs: number;
  readonly offsets: readonly number[];
  readonly values: readonly string[];
}

/** A fault the nemesis applied, for the report. */
export interface FaultEvent {
  readonly atMs: number;
  readonly what: string;
}

/** Everything one round recorded. */
export interface History {
  readonly writes: Map<string, Write>;
  readonly reads: Read[];
  readonly faults: FaultEvent[];
}

export function newHistory(): History {
  return { writes: new Map(), reads: [], faults: [] };
}

/** Catalog errors after which the records may have been written (see the file comment). */
const INDETERMINATE_CODES: ReadonlySet<number> = new Set([
  -1, // UNKNOWN_SERVER_ERROR: anything may have happened
  7, // REQUEST_TIMED_OUT: "the batch may still be replicated later"
  20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND: "the batch was written but ..."
]);

/** Outcome of a per-partition ErrorDetail of a ProduceResponse. */
export function outcomeOfDetail(d: { code: number; name: string; message: string }): Outcome {
  if (INDETERMINATE_CODES.has(d.code)) return { kind: "unknown", reason: `${d.name}: ${d.message}` };
  return { kind: "failed", code: d.code, name: d.name, message: d.message };
}

/**
 * Outcome of a failed call: a catalog error (the `rill-error-code` trailer) is judged as a
 * per-partition error; anything else (deadline exceeded, connection refused or reset,
 * cancelled) is unknown — the request may have reached the broker.
 */
export function outcomeOfCallError(e: unknown): Outcome {
  const se = e as Partial<grpc.ServiceError>;
  const code = se.metadata?.get("rill-error-code")[0];
  if (code !== undefined) {
    const name = se.metadata?.get("rill-error-name")[0]?.toString() ?? "?";
    return outcomeOfDetail({ code: Number(code.toString()), name, message: se.details ?? String(e) });
  }
  const status = se.code !== undefined ? `grpc status ${se.code}` : "error";
  return { kind: "unknown", reason: `${status}: ${se.details ?? (e instanceof Error ? e.message : String(e))}` };
}
