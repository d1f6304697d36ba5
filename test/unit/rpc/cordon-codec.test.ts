/** AlterBrokerCordons (issue 21) between AdminService messages and the domain types, both ways (a forwarded request). */
import { describe, expect, it } from "vitest";
import { Errors, RillError } from "../../../src/base/errors.ts";
import {
  decodeAlterBrokerCordons,
  decodeAlterBrokerCordonsResult,
  encodeAlterBrokerCordonsInput,
  encodeAlterBrokerCordonsResult,
} from "../../../src/rpc/cordon-codec.ts";

describe("cordon codec", () => {
  it("the gRPC codec carries the request and the per-broker errors both ways", () => {
    const input = { brokerIds: [4, 9], cordoned: true };
    expect(decodeAlterBrokerCordons(encodeAlterBrokerCordonsInput(input))).toEqual(input);
    const result = {
      results: [{ brokerId: 4 }, { brokerId: 9, error: new RillError(Errors.BROKER_ID_NOT_REGISTERED, "no broker 9") }],
    };
    const back = decodeAlterBrokerCordonsResult(encodeAlterBrokerCordonsResult(result));
    expect(back.results.map((r) => [r.brokerId, r.error?.kind.name ?? null, r.error?.message ?? null])).toEqual([
      [4, null, null],
      [9, "BROKER_ID_NOT_REGISTERED", "no broker 9"],
    ]);
  });
});
