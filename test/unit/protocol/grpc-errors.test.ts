/** The trailer codec and error decoder that the broker, its internal clients and the SDK share. */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { Errors, GrpcStatus, RillError } from "../../../src/base/errors.ts";
import {
  ERROR_CODE_KEY,
  ERROR_NAME_KEY,
  ERROR_RETRIABLE_KEY,
  errorMetadata,
  errorStatus,
  errorTrailer,
  isServiceError,
  rillErrorFromStatus,
  trailerError,
} from "../../../src/protocol/grpc-errors.ts";

/** What a client sees of a status: grpc-js copies the trailers into a fresh Metadata. */
function received(status: { code: number; details: string; metadata: grpc.Metadata }): grpc.StatusObject {
  const metadata = new grpc.Metadata();
  for (const [key, values] of Object.entries(status.metadata.getMap())) metadata.set(key, String(values));
  return { code: status.code, details: status.details, metadata };
}

describe("trailer codec", () => {
  it("every catalog entry survives the round trip: code, name, retriable, gRPC status and message", () => {
    const kinds = Object.values(Errors);
    expect(kinds.length).toBeGreaterThan(40);
    for (const kind of kinds) {
      const sent = new RillError(kind, `topic "t": ${kind.name}`);
      const status = errorStatus(sent);
      expect(status.code).toBe(kind.grpc);
      const back = rillErrorFromStatus(received(status));
      expect(back.kind).toBe(kind); // the catalog's own entry, not a look-alike
      expect([back.code, back.kind.name, back.retriable, back.message]).toEqual([kind.code, kind.name, kind.retriable, sent.message]);
    }
  });

  it("writes three entries under the documented keys", () => {
    const err = new RillError(Errors.UNKNOWN_TOPIC_OR_PARTITION, "x");
    expect(errorTrailer(err)).toEqual([
      ["rill-error-code", "3"],
      ["rill-error-name", "UNKNOWN_TOPIC_OR_PARTITION"],
      ["rill-error-retriable", "true"],
    ]);
    expect(errorMetadata(err).get(ERROR_CODE_KEY)).toEqual(["3"]);
    expect([ERROR_NAME_KEY, ERROR_RETRIABLE_KEY]).toEqual(["rill-error-name", "rill-error-retriable"]);
  });

  it("keeps a code this side does not know (a newer peer) with the name and flag it was sent with", () => {
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_KEY, "99999");
    metadata.set(ERROR_NAME_KEY, "SOMETHING_NEW");
    metadata.set(ERROR_RETRIABLE_KEY, "true");
    const e = rillErrorFromStatus({ code: GrpcStatus.FAILED_PRECONDITION, details: "later", metadata });
    expect([e.code, e.kind.name, e.retriable, e.kind.grpc, e.message]).toEqual([
      99999,
      "SOMETHING_NEW",
      true,
      GrpcStatus.FAILED_PRECONDITION,
      "later",
    ]);
  });
});

describe("rillErrorFromStatus without trailers", () => {
  it("maps INVALID_ARGUMENT and DEADLINE_EXCEEDED to their catalog entries", () => {
    const metadata = new grpc.Metadata();
    expect(trailerError({ code: GrpcStatus.INVALID_ARGUMENT, details: "bad", metadata })).toBeUndefined();
    expect(rillErrorFromStatus({ code: GrpcStatus.INVALID_ARGUMENT, details: "bad", metadata }).kind).toBe(Errors.INVALID_ARGUMENT);
    const late = rillErrorFromStatus({ code: GrpcStatus.DEADLINE_EXCEEDED, details: "Deadline exceeded" });
    expect([late.kind, late.message]).toEqual([Errors.REQUEST_TIMED_OUT, "Deadline exceeded"]);
  });

  it("names any other status in an UNKNOWN_SERVER_ERROR, falling back to the error's message", () => {
    const e = rillErrorFromStatus({ code: GrpcStatus.UNIMPLEMENTED, details: "no such method" });
    expect([e.kind, e.message]).toEqual([Errors.UNKNOWN_SERVER_ERROR, "UNIMPLEMENTED: no such method"]);
    const empty = rillErrorFromStatus({ code: GrpcStatus.INTERNAL, details: "", message: "13 INTERNAL: boom" });
    expect(empty.message).toBe("INTERNAL: 13 INTERNAL: boom");
  });

  it("ignores a trailer whose code is not an integer", () => {
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_KEY, "three");
    expect(trailerError({ code: GrpcStatus.NOT_FOUND, details: "d", metadata })).toBeUndefined();
    expect(rillErrorFromStatus({ code: GrpcStatus.NOT_FOUND, details: "d", metadata }).kind).toBe(Errors.UNKNOWN_SERVER_ERROR);
  });

  it("recognises what grpc-js fails a call with", () => {
    const e = Object.assign(new Error("14 UNAVAILABLE: x"), { code: 14, details: "x", metadata: new grpc.Metadata() });
    expect(isServiceError(e)).toBe(true);
    expect(isServiceError(new Error("plain"))).toBe(false);
    expect(isServiceError({ code: 14, details: "x" })).toBe(false);
  });
});
