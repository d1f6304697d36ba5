import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { rillError } from "../../../src/base/errors.ts";
import {
  AclOperation,
  AclPatternType,
  AclPermission,
  AclResourceType,
  AlterUserScramCredentialsRequestSchema,
  CreateAclsRequestSchema,
  DescribeAclsRequestSchema,
  ScramMechanism,
} from "../../../src/gen/rill/v1/security_pb.ts";
import {
  decodeAlterUserScramCredentials,
  decodeCreateAcls,
  decodeDeleteAclsResult,
  decodeDescribeAcls,
  encodeAlterUserScramCredentialsInput,
  encodeDeleteAclsResult,
  encodeDescribeUserScramCredentialsResult,
  securityChangeCodecs,
} from "../../../src/rpc/admin-security-codec.ts";
import type { AclBinding } from "../../../src/metadata/security-types.ts";

const binding: AclBinding = {
  principal: "User:alice",
  host: "*",
  resourceType: "TRANSACTIONAL_ID",
  resourceName: "tx-",
  patternType: "PREFIXED",
  operation: "DESCRIBE_CONFIGS",
  permission: "DENY",
};

describe("the security messages' codec", () => {
  it("maps every enum to its domain name and back; UNSPECIFIED is undefined, an unknown number its text", () => {
    const req = create(CreateAclsRequestSchema, {
      creations: [
        {
          principal: "User:alice",
          host: "*",
          resourceType: AclResourceType.TRANSACTIONAL_ID,
          resourceName: "tx-",
          patternType: AclPatternType.PREFIXED,
          operation: AclOperation.DESCRIBE_CONFIGS,
          permission: AclPermission.DENY,
        },
        { principal: "User:b", host: "*", resourceName: "t", operation: 77 as AclOperation },
      ],
    });
    const input = decodeCreateAcls(req);
    expect(input.creations[0]).toEqual(binding);
    expect(input.creations[1]).toMatchObject({ resourceType: undefined, patternType: undefined, operation: "77", permission: undefined });
    // Forwarded as it came, unknown values included.
    expect(securityChangeCodecs.createAcls.encodeInput(input)).toEqual(req);
  });

  it("decodes an absent filter as 'every binding' and keeps unset strings unset", () => {
    expect(decodeDescribeAcls(create(DescribeAclsRequestSchema, {}))).toEqual({ filter: {} });
    const f = decodeDescribeAcls(
      create(DescribeAclsRequestSchema, { filter: { resourceName: "", patternType: AclPatternType.MATCH } }),
    ).filter;
    expect(f).toEqual({
      principal: undefined,
      host: undefined,
      resourceType: undefined,
      resourceName: "",
      patternType: "MATCH",
      operation: undefined,
      permission: undefined,
    });
  });

  it("round-trips a DeleteAcls answer with matches and an error", () => {
    const result = { results: [{ matched: [binding] }, { matched: [], error: rillError("INVALID_REQUEST", "filters[1]: bad") }] };
    const back = decodeDeleteAclsResult(encodeDeleteAclsResult(result));
    expect(back.results[0]).toEqual({ matched: [binding] });
    expect(back.results[1]!.error?.kind.name).toBe("INVALID_REQUEST");
    expect(back.results[1]!.error?.message).toBe("filters[1]: bad");
  });

  it("maps SCRAM mechanisms by name (SCRAM-SHA-256 <-> SCRAM_MECHANISM_SCRAM_SHA_256)", () => {
    const req = create(AlterUserScramCredentialsRequestSchema, {
      upsertions: [{ name: "a", mechanism: ScramMechanism.SCRAM_SHA_512, iterations: 8192, password: "p" }],
      deletions: [{ name: "b", mechanism: ScramMechanism.SCRAM_SHA_256 }, { name: "c" }],
    });
    const input = decodeAlterUserScramCredentials(req);
    expect(input.upsertions[0]).toMatchObject({ name: "a", mechanism: "SCRAM-SHA-512", iterations: 8192, password: "p" });
    expect(input.deletions).toEqual([
      { name: "b", mechanism: "SCRAM-SHA-256" },
      { name: "c", mechanism: undefined },
    ]);
    expect(encodeAlterUserScramCredentialsInput(input)).toEqual(req);
    const described = encodeDescribeUserScramCredentialsResult({
      results: [{ user: "a", credentials: [{ mechanism: "SCRAM-SHA-512", iterations: 8192 }] }],
    });
    expect(described.results[0]!.credentials[0]!.mechanism).toBe(ScramMechanism.SCRAM_SHA_512);
  });
});
