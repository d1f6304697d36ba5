import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { parseDurationMs, parseOffsetSpec, parseTime } from "../../../src/cli/offset-spec.ts";
import { compileFormat, decodeBytes, encodeBytes, formatRecord } from "../../../src/cli/record-format.ts";

const NOW = Date.parse("2026-12-06T12:00:00Z");

describe("offset specs (consume -o)", () => {
  it("reads offsets, relative counts, names and times", () => {
    expect(parseOffsetSpec("42", NOW)).toEqual({ kind: "offset", offset: 42 });
    expect(parseOffsetSpec("-10", NOW)).toEqual({ kind: "fromEnd", count: 10 });
    expect(parseOffsetSpec("+3", NOW)).toEqual({ kind: "fromStart", count: 3 });
    for (const s of ["beginning", "start", "earliest", "oldest"]) expect(parseOffsetSpec(s, NOW)).toEqual({ kind: "earliest" });
    for (const s of ["end", "latest", "newest"]) expect(parseOffsetSpec(s, NOW)).toEqual({ kind: "latest" });
    expect(parseOffsetSpec("@-1h", NOW)).toEqual({ kind: "time", timestampMs: NOW - 3_600_000 });
    expect(parseOffsetSpec("@-1h30m", NOW)).toEqual({ kind: "time", timestampMs: NOW - 5_400_000 });
    expect(parseOffsetSpec("@2026-12-06T10:00:00Z", NOW)).toEqual({ kind: "time", timestampMs: NOW - 7_200_000 });
    expect(parseOffsetSpec("@1700000000000", NOW)).toEqual({ kind: "time", timestampMs: 1_700_000_000_000 });
  });

  it("refuses anything else with a usage error naming the forms", () => {
    for (const bad of ["", "ten", "-", "1.5", "@", "@-1y", "@tomorrow", "@-h", "99999999999999999999"]) {
      expect(() => parseOffsetSpec(bad, NOW), bad).toThrow(InvalidArgumentError);
    }
    expect(parseDurationMs("250ms")).toBe(250);
    expect(parseDurationMs("2d")).toBe(172_800_000);
    expect(parseDurationMs("1hour")).toBeNull();
    expect(parseTime("-10s", NOW)).toBe(NOW - 10_000);
  });
});

describe("record formats (consume -f, --value-format)", () => {
  const r = {
    topic: "t",
    partition: 2,
    offset: 7,
    timestampMs: 1_700_000_000_000,
    key: null,
    value: Buffer.from([0, 1, 0xff]),
    headers: [{ key: "h", value: Buffer.from("v") }],
  };
  const base = { format: "text" as const, keySeparator: "\t", keyFormat: "text" as const, valueFormat: "hex" as const };

  it("expands every field and escape", () => {
    const out = formatRecord(r, { ...base, formatString: "%t|%p|%o|%k|%v|%s|%h|%T|%d|%K|%S|%%\\t\\n" });
    expect(out).toBe("t|2|7||0001ff|0001ff|h=v|1700000000000|2023-11-14T22:13:20.000Z|-1|3|%\t\n");
    expect(() => compileFormat("%x")).toThrow(/unknown field %x/);
    expect(() => compileFormat("50%")).toThrow(/unknown field %/);
  });

  it("encodes and decodes base64 and hex, refusing malformed input", () => {
    expect(encodeBytes(Buffer.from("hi"), "base64")).toBe("aGk=");
    expect(decodeBytes("aGk=", "base64", "v").toString()).toBe("hi");
    expect(decodeBytes("0001ff", "hex", "v")).toEqual(Buffer.from([0, 1, 255]));
    expect(() => decodeBytes("abc", "hex", "value")).toThrow(/value: not hex/);
    expect(() => decodeBytes("a$==", "base64", "value")).toThrow(/value: not base64/);
    expect(formatRecord(r, { ...base, format: "json" })).toBe(
      '{"topic":"t","partition":2,"offset":7,"timestamp":1700000000000,"key":null,"value":"0001ff","headers":[{"key":"h","value":"v"}]}\n',
    );
  });
});
