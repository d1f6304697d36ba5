import { describe, expect, it } from "vitest";
import { rillError } from "../../../src/base/errors.ts";
import { changeCodecs } from "../../../src/rpc/admin-codec.ts";
import {
  decodeAlterClientQuotas,
  decodeDescribeClientQuotas,
  encodeAlterClientQuotasResult,
  encodeDescribeClientQuotasResult,
} from "../../../src/rpc/quota-codec.ts";
import { create } from "@bufbuild/protobuf";
import { DescribeClientQuotasRequestSchema, QuotaEntityType, QuotaMatchType } from "../../../src/gen/rill/v1/admin_service_pb.ts";
import type { AlterClientQuotasInput } from "../../../src/service/quota-admin-types.ts";

describe("client quota messages", () => {
  it("AlterClientQuotas travels to the controller and back unchanged (forwarding)", () => {
    const input: AlterClientQuotasInput = {
      entries: [
        {
          entity: [
            { type: "user", name: "alice" },
            { type: "client-id", name: null },
          ],
          ops: [
            { key: "producer_byte_rate", value: 1048576, remove: false },
            { key: "consumer_byte_rate", value: 0, remove: true },
          ],
        },
        { entity: [{ type: { unrecognized: 9 }, name: "x" }], ops: [{ key: "bogus", value: -1, remove: false }] },
      ],
      validateOnly: true,
    };
    const codec = changeCodecs.alterClientQuotas;
    expect(decodeAlterClientQuotas(codec.encodeInput(input))).toEqual(input);
    const result = {
      results: [
        { entity: input.entries[0]!.entity },
        { entity: input.entries[1]!.entity, error: rillError("INVALID_REQUEST", "entries[1].entity.parts[0].type: unknown entity type 9") },
      ],
    };
    const back = codec.decodeResult(encodeAlterClientQuotasResult(result));
    expect(back.results[0]).toEqual({ entity: input.entries[0]!.entity });
    expect(back.results[1]!.error?.kind.name).toBe("INVALID_REQUEST");
    expect(back.results[1]!.error?.message).toMatch(/unknown entity type 9/);
  });

  it("DescribeClientQuotas decodes match types (an unknown one kept for the error) and encodes entities as parts", () => {
    const req = create(DescribeClientQuotasRequestSchema, {
      components: [
        { entityType: QuotaEntityType.USER, matchType: QuotaMatchType.EXACT, match: "alice" },
        { entityType: QuotaEntityType.CLIENT_ID, matchType: 42 as QuotaMatchType },
      ],
      strict: true,
    });
    expect(decodeDescribeClientQuotas(req)).toEqual({
      components: [
        { entityType: "user", matchType: "exact", match: "alice" },
        { entityType: "client-id", matchType: { unrecognized: 42 }, match: "" },
      ],
      strict: true,
    });
    const res = encodeDescribeClientQuotasResult({
      entries: [{ entity: { user: null, clientId: "app" }, values: { consumer_byte_rate: 2048 } }],
    });
    expect(res.entries[0]!.entity!.parts.map((p) => [p.type, p.name])).toEqual([
      [QuotaEntityType.USER, undefined],
      [QuotaEntityType.CLIENT_ID, "app"],
    ]);
    expect(res.entries[0]!.values).toEqual({ consumer_byte_rate: 2048 });
  });
});
