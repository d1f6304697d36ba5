/**
 * Conversions between protobuf-es shapes and the SDK's TypeScript types.
 *
 * Offsets and timestamps: proto int64 fields are `bigint` in protobuf-es; the SDK gives them to
 * applications as `number`, exact up to 2^53 - 1 (9 * 10^15 records per partition, or year
 * 287396 in ms) — the same bound the batch codec (src/protocol/record-batch.ts) holds offsets
 * to. A value outside that range is reported, never rounded.
 */

import { Errors, RillError } from "../base/errors.ts";

/** An int64 from the wire as a number; throws UNKNOWN_SERVER_ERROR naming `field` when not exact. */
export function toNumber(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RillError(Errors.UNKNOWN_SERVER_ERROR, `${field}: ${v} is beyond 2^53, the SDK's offset range`);
  }
  return Number(v);
}

/** A number for an int64 field; throws INVALID_ARGUMENT naming `field` unless a safe integer. */
export function toInt64(v: number, field: string): bigint {
  if (!Number.isSafeInteger(v)) throw new RillError(Errors.INVALID_ARGUMENT, `${field}: ${v} is not an integer`);
  return BigInt(v);
}

/** Throws INVALID_ARGUMENT naming `field` unless `v` is an integer in [min, max]. */
export function checkInt(v: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RillError(Errors.INVALID_ARGUMENT, `${field}: ${v} is not an integer in [${min}, ${max}]`);
  }
  return v;
}

/** Throws INVALID_ARGUMENT naming `field` unless `v` is one of `choices`. */
export function checkChoice<T extends string>(v: string, field: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(v)) {
    throw new RillError(Errors.INVALID_ARGUMENT, `${field}: "${v}" is not one of ${choices.join(", ")}`);
  }
  return v as T;
}
