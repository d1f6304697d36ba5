import { describe, expect, it } from "vitest";
import { Errors, RillError, rillError } from "../../../src/base/errors.ts";
import {
  KAFKA_ERROR_NAMES,
  KAFKA_NONE,
  KAFKA_UNKNOWN_SERVER_ERROR,
  kafkaCodeOf,
  kafkaErrorCode,
  offsetNotAvailableFor,
  RILL_TO_KAFKA,
} from "../../../src/kafka/error-codes.ts";

const catalog = Object.values(Errors);

describe("Kafka error codes", () => {
  it("Kafka's list runs -1 to 133 without a gap, with the codes every client knows where they belong", () => {
    expect([...KAFKA_ERROR_NAMES.keys()]).toEqual(Array.from({ length: 135 }, (_, i) => i - 1));
    expect(KAFKA_ERROR_NAMES.get(0)).toBe("NONE");
    expect(KAFKA_ERROR_NAMES.get(35)).toBe("UNSUPPORTED_VERSION");
    expect(KAFKA_ERROR_NAMES.get(70)).toBe("FETCH_SESSION_ID_NOT_FOUND");
    expect(KAFKA_ERROR_NAMES.get(86)).toBe("GROUP_SUBSCRIBED_TO_TOPIC");
    expect(KAFKA_ERROR_NAMES.get(113)).toBe("STALE_MEMBER_EPOCH");
    expect(KAFKA_ERROR_NAMES.get(133)).toBe("SHARE_SESSION_LIMIT_REACHED");
  });

  it("every catalog code maps to a valid Kafka code other than NONE", () => {
    for (const kind of catalog) {
      const k = kafkaCodeOf(kind.code);
      expect(KAFKA_ERROR_NAMES.has(k), kind.name).toBe(true);
      expect(k, kind.name).not.toBe(KAFKA_NONE);
    }
  });

  it("Kafka's own codes (below 10,000) map to themselves, and the catalog names them as Kafka does", () => {
    for (const kind of catalog.filter((k) => k.code < 10_000)) {
      expect(KAFKA_ERROR_NAMES.get(kind.code), `catalog code ${kind.code}`).toBe(kind.name);
      expect(kafkaCodeOf(kind.code)).toBe(kind.code);
    }
  });

  it("every Rill-only code (10,000 and up) has a considered mapping, and the table has no stale entry", () => {
    const rillOnly = catalog.filter((k) => k.code >= 10_000).map((k) => k.code);
    expect(
      rillOnly.filter((c) => !RILL_TO_KAFKA.has(c)),
      "codes missing from RILL_TO_KAFKA",
    ).toEqual([]);
    expect(
      [...RILL_TO_KAFKA.keys()].filter((c) => !rillOnly.includes(c)),
      "entries of no catalog code",
    ).toEqual([]);
    for (const [rill, kafka] of RILL_TO_KAFKA) {
      expect(kafka, `${rill}`).toBeLessThan(10_000);
      expect(KAFKA_ERROR_NAMES.has(kafka), `${rill} -> ${kafka}`).toBe(true);
    }
  });

  it("keeps a Rill-only code's retry meaning: a retriable condition maps to a code Kafka clients retry", () => {
    // Kafka's retriable codes among the targets (RetriableException subclasses).
    const kafkaRetriable = new Set([2, 6, 7, 56]);
    for (const kind of catalog.filter((k) => k.code >= 10_000)) {
      if (kind.retriable) expect(kafkaRetriable.has(kafkaCodeOf(kind.code)), kind.name).toBe(true);
    }
  });

  it("kafkaErrorCode: null is NONE; a RillError answers its mapped code; codes nobody knows are UNKNOWN_SERVER_ERROR", () => {
    expect(kafkaErrorCode(null)).toBe(0);
    expect(kafkaErrorCode(rillError("OFFSET_OUT_OF_RANGE", "x"))).toBe(1);
    expect(kafkaErrorCode(rillError("INVALID_ARGUMENT", "x"))).toBe(42);
    expect(kafkaErrorCode(rillError("SHUTTING_DOWN"))).toBe(6);
    expect(kafkaErrorCode(RillError.from(new Error("boom")))).toBe(-1);
    const unknownHigh = { code: 19_999, name: "FROM_A_NEWER_PEER", retriable: false, grpc: 2, doc: "" } as const;
    expect(kafkaErrorCode(new RillError(unknownHigh, "x"))).toBe(KAFKA_UNKNOWN_SERVER_ERROR);
    expect(kafkaErrorCode(new RillError({ ...unknownHigh, code: 9_000 }, "x"))).toBe(KAFKA_UNKNOWN_SERVER_ERROR);
  });

  it("OFFSET_NOT_AVAILABLE (a new leader's unknown high watermark, KIP-207) is LEADER_NOT_AVAILABLE for versions that predate it", () => {
    const code = kafkaErrorCode(rillError("OFFSET_NOT_AVAILABLE", "x"));
    expect([code, KAFKA_ERROR_NAMES.get(code)]).toEqual([78, "OFFSET_NOT_AVAILABLE"]);
    expect(offsetNotAvailableFor(code, true)).toBe(78);
    expect(offsetNotAvailableFor(code, false)).toBe(5); // LEADER_NOT_AVAILABLE: retriable, refreshes metadata
    expect(offsetNotAvailableFor(1, false)).toBe(1); // any other code is left alone
  });
});
