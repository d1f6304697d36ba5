/**
 * The Kafka codec framework (src/kafka/wire.ts, schema.ts): primitives, flexible and
 * non-flexible layouts, tagged fields, nullability by version, and decoding that never trusts a
 * length. ApiVersions' bytes are checked against layouts written out by hand from Kafka's
 * message definitions.
 */
import { describe, expect, it } from "vitest";
import { ApiVersionsRequest, ApiVersionsResponse } from "../../../src/kafka/apis/api-versions.ts";
import { decode, encode, int16, int32, message, records, string, structs, uuid } from "../../../src/kafka/schema.ts";
import { KafkaDecodeError, KafkaReader, KafkaWriter } from "../../../src/kafka/wire.ts";

const hex = (b: Buffer) => b.toString("hex");
const enc = <M extends Parameters<typeof encode>[0]>(m: M, v: Parameters<typeof encode>[1], version: number) => {
  const w = new KafkaWriter();
  encode(m, v as never, version, w);
  return w.toBuffer();
};

describe("wire primitives", () => {
  it("round-trips varints, strings, bytes and counts in both layouts", () => {
    const w = new KafkaWriter();
    w.uvarint(0).uvarint(127).uvarint(128).uvarint(0xffffffff).varint(-1).varint(63).varint(-64);
    w.string("héllo", false).string(null, false).string("x", true).string(null, true);
    w.bytes(Buffer.from([1, 2, 3]), true)
      .bytes(null, false)
      .count(3, true);
    const r = new KafkaReader(w.toBuffer());
    expect([r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint(), r.varint(), r.varint(), r.varint()]).toEqual([
      0, 127, 128, 0xffffffff, -1, 63, -64,
    ]);
    expect([r.string(false), r.string(false), r.string(true), r.string(true)]).toEqual(["héllo", null, "x", null]);
    expect([...(r.bytes(true) as Buffer)]).toEqual([1, 2, 3]);
    expect(r.bytes(false)).toBeNull();
    expect(r.remaining).toBe(1);
  });

  it("passes large byte fields on as their own chunk, without a copy", () => {
    const big = Buffer.alloc(4096, 7);
    const w = new KafkaWriter();
    w.int32(1).bytes(big, false).int16(2);
    const chunks = w.finish();
    expect(chunks.some((c) => c === big)).toBe(true);
    expect(Buffer.concat(chunks).length).toBe(4 + 4 + 4096 + 2);
  });

  it("refuses lengths past the end, negative lengths and over-long varints", () => {
    expect(() => new KafkaReader(Buffer.from([0, 5, 0x61])).string(false)).toThrow(KafkaDecodeError);
    expect(() => new KafkaReader(Buffer.from([0xff, 0xfe])).string(false)).toThrow(/negative/);
    expect(() => new KafkaReader(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).uvarint()).toThrow(/longer than 5 bytes/);
    // An array that claims 2^31-1 elements in 4 bytes is refused before anything is allocated.
    expect(() => new KafkaReader(Buffer.from([0x7f, 0xff, 0xff, 0xff])).count(false)).toThrow(/cannot fit/);
  });
});

describe("schema-derived codecs", () => {
  const M = message("TestRequest", "0-3", "2+", {
    name: string(),
    id: uuid().since(1),
    items: structs({ partition: int32(), note: string().nullable("0+") }).nullable("1+"),
    extra: int16().tagged(0, "2+").default(-1),
    data: records(),
  });

  it("writes each version's layout: fields by version, compact forms and tagged fields when flexible", () => {
    const v = { name: "a", id: Buffer.alloc(16, 1), items: [{ partition: 7, note: null }], extra: 5, data: null };
    // v0: STRING, ARRAY(INT32 count) of {INT32, nullable STRING}, BYTES null; no uuid, no tags.
    expect(hex(enc(M, v, 0))).toBe("0001" + "61" + "00000001" + "00000007" + "ffff" + "ffffffff");
    // v2: COMPACT_STRING, uuid, COMPACT_ARRAY, element tag section, COMPACT_BYTES null, tags {0: int16 5}.
    expect(hex(enc(M, v, 2))).toBe("02" + "61" + "01".repeat(16) + "02" + "00000007" + "00" + "00" + "00" + "01" + "00" + "02" + "0005");
    for (const version of [0, 1, 2, 3]) {
      const back = decode(M, new KafkaReader(enc(M, v, version)), version);
      expect(back.name).toBe("a");
      expect(back.items).toEqual([{ partition: 7, note: null }]);
      expect(back.extra).toBe(version >= 2 ? 5 : -1);
      expect(hex(back.id)).toBe(version >= 1 ? "01".repeat(16) : "00".repeat(16));
    }
  });

  it("leaves a tagged field at its default out, skips unknown tags, and refuses a tag whose size lies", () => {
    const v = { name: "", items: [], extra: -1 };
    const bytes = enc(M, v, 2);
    expect(bytes[bytes.length - 1]).toBe(0); // no tagged fields
    // Unknown tag 9 with 2 bytes of payload is skipped.
    const withUnknown = Buffer.concat([bytes.subarray(0, bytes.length - 1), Buffer.from([1, 9, 2, 0xaa, 0xbb])]);
    expect(decode(M, new KafkaReader(withUnknown), 2).extra).toBe(-1);
    // Tag 0 says 3 bytes but an int16 takes 2.
    const lying = Buffer.concat([bytes.subarray(0, bytes.length - 1), Buffer.from([1, 0, 3, 0, 1, 0])]);
    expect(() => decode(M, new KafkaReader(lying), 2)).toThrow(/says 3 bytes but holds 2/);
  });

  it("refuses null where the version does not allow it, both ways", () => {
    expect(() => enc(M, { name: "", items: null }, 0)).toThrow(/may not be null in version 0/);
    const nullItems = Buffer.from("0000" + "ffffffff" + "ffffffff", "hex");
    expect(() => decode(M, new KafkaReader(nullItems), 0)).toThrow(/items is null/);
  });
});

describe("ApiVersions (key 18), from Kafka's message definitions", () => {
  it("request v3 carries the client software name and version as compact strings and a tag section", () => {
    const b = enc(ApiVersionsRequest, { clientSoftwareName: "rdkafka", clientSoftwareVersion: "2.0.2" }, 3);
    expect(hex(b)).toBe("08" + Buffer.from("rdkafka").toString("hex") + "06" + Buffer.from("2.0.2").toString("hex") + "00");
    expect(hex(enc(ApiVersionsRequest, {}, 0))).toBe("");
  });

  it("response v0, v1 and v3 layouts", () => {
    const v = { errorCode: 0, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 4 }], throttleTimeMs: 0 };
    expect(hex(enc(ApiVersionsResponse, v, 0))).toBe("0000" + "00000001" + "0012" + "0000" + "0004");
    expect(hex(enc(ApiVersionsResponse, v, 1))).toBe("0000" + "00000001" + "0012" + "0000" + "0004" + "00000000");
    expect(hex(enc(ApiVersionsResponse, v, 3))).toBe("0000" + "02" + "0012" + "0000" + "0004" + "00" + "00000000" + "00");
  });
});
