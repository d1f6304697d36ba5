/**
 * Golden bytes of the Kafka listener's admin, ACL, SCRAM, quota and SASL messages, every version
 * implemented: each layout below is written out by hand from Kafka's message definitions
 * (fields in order, the versions each exists in, compact forms and tag sections in flexible
 * versions) with a byte builder of its own, and must equal what the schema encodes — and decode
 * back to the same value.
 */
import { describe, expect, it } from "vitest";
import { AlterClientQuotasRequest, AlterClientQuotasResponse } from "../../../src/kafka/apis/alter-client-quotas.ts";
import { AlterConfigsRequest, AlterConfigsResponse } from "../../../src/kafka/apis/alter-configs.ts";
import {
  AlterUserScramCredentialsRequest,
  AlterUserScramCredentialsResponse,
} from "../../../src/kafka/apis/alter-user-scram-credentials.ts";
import { CreateAclsRequest, CreateAclsResponse } from "../../../src/kafka/apis/create-acls.ts";
import { CreatePartitionsRequest, CreatePartitionsResponse } from "../../../src/kafka/apis/create-partitions.ts";
import { CreateTopicsRequest, CreateTopicsResponse } from "../../../src/kafka/apis/create-topics.ts";
import { DeleteAclsRequest, DeleteAclsResponse } from "../../../src/kafka/apis/delete-acls.ts";
import { DeleteRecordsRequest, DeleteRecordsResponse } from "../../../src/kafka/apis/delete-records.ts";
import { DeleteTopicsRequest, DeleteTopicsResponse } from "../../../src/kafka/apis/delete-topics.ts";
import { DescribeAclsRequest, DescribeAclsResponse } from "../../../src/kafka/apis/describe-acls.ts";
import { DescribeClientQuotasRequest, DescribeClientQuotasResponse } from "../../../src/kafka/apis/describe-client-quotas.ts";
import { DescribeClusterRequest, DescribeClusterResponse } from "../../../src/kafka/apis/describe-cluster.ts";
import { DescribeConfigsRequest, DescribeConfigsResponse } from "../../../src/kafka/apis/describe-configs.ts";
import {
  DescribeUserScramCredentialsRequest,
  DescribeUserScramCredentialsResponse,
} from "../../../src/kafka/apis/describe-user-scram-credentials.ts";
import { ElectLeadersRequest, ElectLeadersResponse } from "../../../src/kafka/apis/elect-leaders.ts";
import { IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse } from "../../../src/kafka/apis/incremental-alter-configs.ts";
import { SaslAuthenticateRequest, SaslAuthenticateResponse } from "../../../src/kafka/apis/sasl-authenticate.ts";
import { SaslHandshakeRequest, SaslHandshakeResponse } from "../../../src/kafka/apis/sasl-handshake.ts";
import { type Fields, type Message, decode, encode } from "../../../src/kafka/schema.ts";
import { KafkaReader, KafkaWriter } from "../../../src/kafka/wire.ts";

// ---- a byte builder of the test's own -----------------------------------------------------------

const i8 = (n: number) => Buffer.from([n & 0xff]);
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const i64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};
const f64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return b;
};
const bool = (v: boolean) => Buffer.from([v ? 1 : 0]);
const uvarint = (n: number) => {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
};
/** STRING / COMPACT_STRING (null: -1 / 0). */
const str = (s: string | null, flex: boolean) => {
  if (s === null) return flex ? uvarint(0) : i16(-1);
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([flex ? uvarint(b.length + 1) : i16(b.length), b]);
};
const bytes = (b: Buffer, flex: boolean) => Buffer.concat([flex ? uvarint(b.length + 1) : i32(b.length), b]);
/** ARRAY / COMPACT_ARRAY of already-built elements (null: -1 / 0). */
const arr = (items: Buffer[] | null, flex: boolean) =>
  items === null ? (flex ? uvarint(0) : i32(-1)) : Buffer.concat([flex ? uvarint(items.length + 1) : i32(items.length), ...items]);
/** An empty tag section, in flexible versions only. */
const tags = (flex: boolean) => (flex ? uvarint(0) : Buffer.alloc(0));
const cat = (...parts: Buffer[]) => Buffer.concat(parts);
const when = (cond: boolean, b: Buffer) => (cond ? b : Buffer.alloc(0));

function encoded<F extends Fields>(m: Message<F>, value: unknown, version: number): Buffer {
  const w = new KafkaWriter();
  encode(m, value as never, version, w);
  return w.toBuffer();
}

/** `value` encodes to `golden` in `version`, and `golden` decodes to a value that encodes the same. */
function checkGolden<F extends Fields>(m: Message<F>, version: number, value: unknown, golden: Buffer): void {
  expect(encoded(m, value, version).toString("hex"), `${m.name} v${version}`).toBe(golden.toString("hex"));
  const r = new KafkaReader(golden);
  const back = decode(m, r, version);
  expect(r.remaining).toBe(0);
  expect(encoded(m, back, version).toString("hex")).toBe(golden.toString("hex"));
}

function versionsOf(m: Message<Fields>): number[] {
  return Array.from({ length: m.versions[1] - m.versions[0] + 1 }, (_, i) => m.versions[0] + i);
}

// ---- topics ---------------------------------------------------------------------------------------

describe("CreateTopics v0-7", () => {
  it("request", () => {
    const value = {
      topics: [{ name: "t", numPartitions: 3, replicationFactor: -1, assignments: [], configs: [{ name: "retention.ms", value: "1000" }] }],
      timeoutMs: 5000,
      validateOnly: true,
    };
    for (const v of versionsOf(CreateTopicsRequest)) {
      const f = v >= 5;
      const golden = cat(
        arr([cat(str("t", f), i32(3), i16(-1), arr([], f), arr([cat(str("retention.ms", f), str("1000", f), tags(f))], f), tags(f))], f),
        i32(5000),
        when(v >= 1, bool(true)),
        tags(f),
      );
      checkGolden(CreateTopicsRequest, v, value, golden);
    }
  });

  it("response", () => {
    const id = Buffer.alloc(16, 0xab);
    const value = {
      throttleTimeMs: 0,
      topics: [
        {
          name: "t",
          topicId: id,
          errorCode: 36,
          errorMessage: "exists",
          numPartitions: 3,
          replicationFactor: 1,
          configs: [{ name: "k", value: null, readOnly: false, configSource: 5, isSensitive: true }],
        },
      ],
    };
    for (const v of versionsOf(CreateTopicsResponse)) {
      const f = v >= 5;
      const topic = cat(
        str("t", f),
        when(v >= 7, id),
        i16(36),
        when(v >= 1, str("exists", f)),
        when(v >= 5, cat(i32(3), i16(1), arr([cat(str("k", f), str(null, f), bool(false), i8(5), bool(true), tags(f))], f))),
        tags(f),
      );
      checkGolden(CreateTopicsResponse, v, value, cat(when(v >= 2, i32(0)), arr([topic], f), tags(f)));
    }
  });
});

describe("DeleteTopics v0-6", () => {
  it("request: names up to v5, names or ids from v6", () => {
    const id = Buffer.alloc(16, 1);
    for (const v of versionsOf(DeleteTopicsRequest)) {
      const f = v >= 4;
      const value = v >= 6 ? { topics: [{ name: null, topicId: id }], timeoutMs: 100 } : { topicNames: ["a", "b"], timeoutMs: 100 };
      const golden =
        v >= 6
          ? cat(arr([cat(str(null, f), id, tags(f))], f), i32(100), tags(f))
          : cat(arr([str("a", f), str("b", f)], f), i32(100), tags(f));
      checkGolden(DeleteTopicsRequest, v, value, golden);
    }
  });

  it("response", () => {
    const id = Buffer.alloc(16, 2);
    const value = { throttleTimeMs: 7, responses: [{ name: "a", topicId: id, errorCode: 3, errorMessage: "no" }] };
    for (const v of versionsOf(DeleteTopicsResponse)) {
      const f = v >= 4;
      const r = cat(str("a", f), when(v >= 6, id), i16(3), when(v >= 5, str("no", f)), tags(f));
      checkGolden(DeleteTopicsResponse, v, value, cat(when(v >= 1, i32(7)), arr([r], f), tags(f)));
    }
  });
});

describe("CreatePartitions v0-3", () => {
  it("request and response", () => {
    for (const v of versionsOf(CreatePartitionsRequest)) {
      const f = v >= 2;
      checkGolden(
        CreatePartitionsRequest,
        v,
        { topics: [{ name: "t", count: 4, assignments: null }], timeoutMs: 10, validateOnly: false },
        cat(arr([cat(str("t", f), i32(4), arr(null, f), tags(f))], f), i32(10), bool(false), tags(f)),
      );
      checkGolden(
        CreatePartitionsResponse,
        v,
        { throttleTimeMs: 0, results: [{ name: "t", errorCode: 37, errorMessage: null }] },
        cat(i32(0), arr([cat(str("t", f), i16(37), str(null, f), tags(f))], f), tags(f)),
      );
    }
  });
});

describe("DeleteRecords v0-2", () => {
  it("request and response", () => {
    for (const v of versionsOf(DeleteRecordsRequest)) {
      const f = v >= 2;
      checkGolden(
        DeleteRecordsRequest,
        v,
        { topics: [{ name: "t", partitions: [{ partitionIndex: 1, offset: -1n }] }], timeoutMs: 30 },
        cat(arr([cat(str("t", f), arr([cat(i32(1), i64(-1n), tags(f))], f), tags(f))], f), i32(30), tags(f)),
      );
      checkGolden(
        DeleteRecordsResponse,
        v,
        { throttleTimeMs: 0, topics: [{ name: "t", partitions: [{ partitionIndex: 1, lowWatermark: 9n, errorCode: 0 }] }] },
        cat(i32(0), arr([cat(str("t", f), arr([cat(i32(1), i64(9n), i16(0), tags(f))], f), tags(f))], f), tags(f)),
      );
    }
  });
});

describe("ElectLeaders v0-2", () => {
  it("request and response", () => {
    for (const v of versionsOf(ElectLeadersRequest)) {
      const f = v >= 2;
      checkGolden(
        ElectLeadersRequest,
        v,
        { electionType: 0, topicPartitions: [{ topic: "t", partitions: [0, 1] }], timeoutMs: 60000 },
        cat(when(v >= 1, i8(0)), arr([cat(str("t", f), arr([i32(0), i32(1)], f), tags(f))], f), i32(60000), tags(f)),
      );
      checkGolden(
        ElectLeadersResponse,
        v,
        {
          throttleTimeMs: 0,
          errorCode: 0,
          replicaElectionResults: [{ topic: "t", partitionResult: [{ partitionId: 0, errorCode: 84, errorMessage: "x" }] }],
        },
        cat(
          i32(0),
          when(v >= 1, i16(0)),
          arr([cat(str("t", f), arr([cat(i32(0), i16(84), str("x", f), tags(f))], f), tags(f))], f),
          tags(f),
        ),
      );
    }
  });
});

describe("DescribeCluster v0-1", () => {
  it("request and response (flexible from v0)", () => {
    for (const v of versionsOf(DescribeClusterRequest)) {
      checkGolden(
        DescribeClusterRequest,
        v,
        { includeClusterAuthorizedOperations: true, endpointType: 1 },
        cat(bool(true), when(v >= 1, i8(1)), tags(true)),
      );
      checkGolden(
        DescribeClusterResponse,
        v,
        {
          throttleTimeMs: 0,
          errorCode: 0,
          errorMessage: null,
          endpointType: 1,
          clusterId: "c",
          controllerId: 1,
          brokers: [{ brokerId: 1, host: "h", port: 9092, rack: null }],
          clusterAuthorizedOperations: 384,
        },
        cat(
          i32(0),
          i16(0),
          str(null, true),
          when(v >= 1, i8(1)),
          str("c", true),
          i32(1),
          arr([cat(i32(1), str("h", true), i32(9092), str(null, true), tags(true))], true),
          i32(384),
          tags(true),
        ),
      );
    }
  });
});

// ---- configs --------------------------------------------------------------------------------------

describe("DescribeConfigs v0-4", () => {
  it("request", () => {
    for (const v of versionsOf(DescribeConfigsRequest)) {
      const f = v >= 4;
      checkGolden(
        DescribeConfigsRequest,
        v,
        { resources: [{ resourceType: 2, resourceName: "t", configurationKeys: null }], includeSynonyms: true, includeDocumentation: true },
        cat(arr([cat(i8(2), str("t", f), arr(null, f), tags(f))], f), when(v >= 1, bool(true)), when(v >= 3, bool(true)), tags(f)),
      );
    }
  });

  it("response: IsDefault in v0, ConfigSource and synonyms from v1, type and documentation from v3", () => {
    const value = {
      throttleTimeMs: 0,
      results: [
        {
          errorCode: 0,
          errorMessage: null,
          resourceType: 2,
          resourceName: "t",
          configs: [
            {
              name: "k",
              value: "v",
              readOnly: false,
              isDefault: true,
              configSource: 5,
              isSensitive: false,
              synonyms: [{ name: "k", value: "v", source: 5 }],
              configType: 5,
              documentation: "d",
            },
          ],
        },
      ],
    };
    for (const v of versionsOf(DescribeConfigsResponse)) {
      const f = v >= 4;
      const entry = cat(
        str("k", f),
        str("v", f),
        bool(false),
        when(v === 0, bool(true)),
        when(v >= 1, i8(5)),
        bool(false),
        when(v >= 1, arr([cat(str("k", f), str("v", f), i8(5), tags(f))], f)),
        when(v >= 3, cat(i8(5), str("d", f))),
        tags(f),
      );
      const result = cat(i16(0), str(null, f), i8(2), str("t", f), arr([entry], f), tags(f));
      checkGolden(DescribeConfigsResponse, v, value, cat(i32(0), arr([result], f), tags(f)));
    }
  });
});

describe("AlterConfigs v0-2 and IncrementalAlterConfigs v0-1", () => {
  const response = (f: boolean) => cat(i32(0), arr([cat(i16(40), str("bad", f), i8(2), str("t", f), tags(f))], f), tags(f));
  const responseValue = { throttleTimeMs: 0, responses: [{ errorCode: 40, errorMessage: "bad", resourceType: 2, resourceName: "t" }] };

  it("AlterConfigs", () => {
    for (const v of versionsOf(AlterConfigsRequest)) {
      const f = v >= 2;
      checkGolden(
        AlterConfigsRequest,
        v,
        { resources: [{ resourceType: 2, resourceName: "t", configs: [{ name: "k", value: null }] }], validateOnly: true },
        cat(arr([cat(i8(2), str("t", f), arr([cat(str("k", f), str(null, f), tags(f))], f), tags(f))], f), bool(true), tags(f)),
      );
      checkGolden(AlterConfigsResponse, v, responseValue, response(f));
    }
  });

  it("IncrementalAlterConfigs", () => {
    for (const v of versionsOf(IncrementalAlterConfigsRequest)) {
      const f = v >= 1;
      checkGolden(
        IncrementalAlterConfigsRequest,
        v,
        {
          resources: [{ resourceType: 2, resourceName: "t", configs: [{ name: "k", configOperation: 1, value: null }] }],
          validateOnly: false,
        },
        cat(arr([cat(i8(2), str("t", f), arr([cat(str("k", f), i8(1), str(null, f), tags(f))], f), tags(f))], f), bool(false), tags(f)),
      );
      checkGolden(IncrementalAlterConfigsResponse, v, responseValue, response(f));
    }
  });
});

// ---- SASL -----------------------------------------------------------------------------------------

describe("SaslHandshake v0-1 and SaslAuthenticate v0-2", () => {
  it("SaslHandshake (never flexible)", () => {
    for (const v of versionsOf(SaslHandshakeRequest)) {
      checkGolden(SaslHandshakeRequest, v, { mechanism: "PLAIN" }, str("PLAIN", false));
      checkGolden(
        SaslHandshakeResponse,
        v,
        { errorCode: 33, mechanisms: ["SCRAM-SHA-256"] },
        cat(i16(33), arr([str("SCRAM-SHA-256", false)], false)),
      );
    }
  });

  it("SaslAuthenticate: session lifetime from v1, compact from v2", () => {
    const token = Buffer.from("n,,n=u,r=x");
    for (const v of versionsOf(SaslAuthenticateRequest)) {
      const f = v >= 2;
      checkGolden(SaslAuthenticateRequest, v, { authBytes: token }, cat(bytes(token, f), tags(f)));
      checkGolden(
        SaslAuthenticateResponse,
        v,
        { errorCode: 58, errorMessage: "no", authBytes: Buffer.alloc(0), sessionLifetimeMs: 0n },
        cat(i16(58), str("no", f), bytes(Buffer.alloc(0), f), when(v >= 1, i64(0n)), tags(f)),
      );
    }
  });
});

// ---- ACLs -----------------------------------------------------------------------------------------

describe("CreateAcls, DescribeAcls, DeleteAcls v0-3", () => {
  const filterValue = {
    resourceTypeFilter: 2,
    resourceNameFilter: null,
    patternTypeFilter: 1,
    principalFilter: "User:a",
    hostFilter: null,
    operation: 1,
    permissionType: 1,
  };
  const filter = (v: number, f: boolean) =>
    cat(i8(2), str(null, f), when(v >= 1, i8(1)), str("User:a", f), str(null, f), i8(1), i8(1), tags(f));

  it("CreateAcls", () => {
    for (const v of versionsOf(CreateAclsRequest)) {
      const f = v >= 2;
      checkGolden(
        CreateAclsRequest,
        v,
        {
          creations: [
            { resourceType: 2, resourceName: "t", resourcePatternType: 3, principal: "User:a", host: "*", operation: 3, permissionType: 3 },
          ],
        },
        cat(arr([cat(i8(2), str("t", f), when(v >= 1, i8(3)), str("User:a", f), str("*", f), i8(3), i8(3), tags(f))], f), tags(f)),
      );
      checkGolden(
        CreateAclsResponse,
        v,
        { throttleTimeMs: 0, results: [{ errorCode: 0, errorMessage: null }] },
        cat(i32(0), arr([cat(i16(0), str(null, f), tags(f))], f), tags(f)),
      );
    }
  });

  it("DescribeAcls", () => {
    for (const v of versionsOf(DescribeAclsRequest)) {
      const f = v >= 2;
      checkGolden(DescribeAclsRequest, v, filterValue, filter(v, f));
      checkGolden(
        DescribeAclsResponse,
        v,
        {
          throttleTimeMs: 0,
          errorCode: 0,
          errorMessage: null,
          resources: [
            {
              resourceType: 2,
              resourceName: "t",
              patternType: 3,
              acls: [{ principal: "User:a", host: "*", operation: 3, permissionType: 3 }],
            },
          ],
        },
        cat(
          i32(0),
          i16(0),
          str(null, f),
          arr(
            [cat(i8(2), str("t", f), when(v >= 1, i8(3)), arr([cat(str("User:a", f), str("*", f), i8(3), i8(3), tags(f))], f), tags(f))],
            f,
          ),
          tags(f),
        ),
      );
    }
  });

  it("DeleteAcls", () => {
    for (const v of versionsOf(DeleteAclsRequest)) {
      const f = v >= 2;
      checkGolden(DeleteAclsRequest, v, { filters: [filterValue] }, cat(arr([filter(v, f)], f), tags(f)));
      const acl = cat(i16(0), str(null, f), i8(2), str("t", f), when(v >= 1, i8(3)), str("User:a", f), str("*", f), i8(3), i8(3), tags(f));
      checkGolden(
        DeleteAclsResponse,
        v,
        {
          throttleTimeMs: 0,
          filterResults: [
            {
              errorCode: 0,
              errorMessage: null,
              matchingAcls: [
                {
                  errorCode: 0,
                  errorMessage: null,
                  resourceType: 2,
                  resourceName: "t",
                  patternType: 3,
                  principal: "User:a",
                  host: "*",
                  operation: 3,
                  permissionType: 3,
                },
              ],
            },
          ],
        },
        cat(i32(0), arr([cat(i16(0), str(null, f), arr([acl], f), tags(f))], f), tags(f)),
      );
    }
  });
});

// ---- SCRAM users and quotas -----------------------------------------------------------------------

describe("DescribeUserScramCredentials v0 and AlterUserScramCredentials v0 (flexible)", () => {
  it("request and response layouts", () => {
    checkGolden(DescribeUserScramCredentialsRequest, 0, { users: null }, cat(arr(null, true), tags(true)));
    checkGolden(
      DescribeUserScramCredentialsResponse,
      0,
      {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: null,
        results: [{ user: "u", errorCode: 0, errorMessage: null, credentialInfos: [{ mechanism: 1, iterations: 4096 }] }],
      },
      cat(
        i32(0),
        i16(0),
        str(null, true),
        arr([cat(str("u", true), i16(0), str(null, true), arr([cat(i8(1), i32(4096), tags(true))], true), tags(true))], true),
        tags(true),
      ),
    );
    const salt = Buffer.from([1, 2]);
    const salted = Buffer.from([3]);
    checkGolden(
      AlterUserScramCredentialsRequest,
      0,
      {
        deletions: [{ name: "d", mechanism: 2 }],
        upsertions: [{ name: "u", mechanism: 1, iterations: 4096, salt, saltedPassword: salted }],
      },
      cat(
        arr([cat(str("d", true), i8(2), tags(true))], true),
        arr([cat(str("u", true), i8(1), i32(4096), bytes(salt, true), bytes(salted, true), tags(true))], true),
        tags(true),
      ),
    );
    checkGolden(
      AlterUserScramCredentialsResponse,
      0,
      { throttleTimeMs: 0, results: [{ user: "u", errorCode: 93, errorMessage: "x" }] },
      cat(i32(0), arr([cat(str("u", true), i16(93), str("x", true), tags(true))], true), tags(true)),
    );
  });
});

describe("DescribeClientQuotas and AlterClientQuotas v0-1", () => {
  it("request and response layouts", () => {
    for (const v of [0, 1]) {
      const f = v >= 1;
      const entity = arr([cat(str("user", f), str(null, f), tags(f))], f);
      checkGolden(
        DescribeClientQuotasRequest,
        v,
        { components: [{ entityType: "user", matchType: 1, match: null }], strict: true },
        cat(arr([cat(str("user", f), i8(1), str(null, f), tags(f))], f), bool(true), tags(f)),
      );
      checkGolden(
        DescribeClientQuotasResponse,
        v,
        {
          throttleTimeMs: 0,
          errorCode: 0,
          errorMessage: null,
          entries: [{ entity: [{ entityType: "user", entityName: null }], values: [{ key: "producer_byte_rate", value: 1024 }] }],
        },
        cat(
          i32(0),
          i16(0),
          str(null, f),
          arr([cat(entity, arr([cat(str("producer_byte_rate", f), f64(1024), tags(f))], f), tags(f))], f),
          tags(f),
        ),
      );
      checkGolden(
        AlterClientQuotasRequest,
        v,
        {
          entries: [
            { entity: [{ entityType: "user", entityName: null }], ops: [{ key: "producer_byte_rate", value: 1.5, remove: false }] },
          ],
          validateOnly: true,
        },
        cat(
          arr([cat(entity, arr([cat(str("producer_byte_rate", f), f64(1.5), bool(false), tags(f))], f), tags(f))], f),
          bool(true),
          tags(f),
        ),
      );
      checkGolden(
        AlterClientQuotasResponse,
        v,
        { throttleTimeMs: 0, entries: [{ errorCode: 0, errorMessage: null, entity: [{ entityType: "user", entityName: null }] }] },
        cat(i32(0), arr([cat(i16(0), str(null, f), entity, tags(f))], f), tags(f)),
      );
    }
  });
});
