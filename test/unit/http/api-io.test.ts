/**
 * The JSON API's plumbing (src/http/api/http-io.ts, messages.ts `showBytes`): bodies read within
 * their bound (refused on the declared length before a byte is read, or once a streamed body
 * passes it, without reading the rest), the content type, JSON and shape checks with messages
 * naming the problem, query integers, and bytes shown as text, JSON, hex or base64.
 */
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ApiProblem, intParam, readBody, readJson } from "../../../src/http/api/http-io.ts";
import { showBytes } from "../../../src/http/api/messages.ts";

/** A request whose body is `chunks`, counting the chunks read. */
function request(chunks: Buffer[], headers: Record<string, string> = {}) {
  let read = 0;
  const stream = Readable.from(
    (function* () {
      for (const c of chunks) {
        read++;
        yield c;
      }
    })(),
  );
  return { req: Object.assign(stream, { headers }) as unknown as IncomingMessage, read: () => read };
}

async function problem(p: Promise<unknown>): Promise<ApiProblem> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApiProblem);
  return e as ApiProblem;
}

describe("readBody", () => {
  it("reads a body within the bound", async () => {
    const { req } = request([Buffer.from("ab"), Buffer.from("cd")]);
    expect((await readBody(req, 4)).toString()).toBe("abcd");
  });

  it("refuses a declared length over the bound before reading a byte", async () => {
    const r = request([Buffer.alloc(10)], { "content-length": "11" });
    const p = await problem(readBody(r.req, 10));
    expect(p.status).toBe(413);
    expect(p.error.kind.name).toBe("RECORD_LIST_TOO_LARGE");
    expect(p.error.message).toBe("request body: larger than 10 bytes, the most this API reads");
    expect(p.headers).toEqual({ connection: "close" });
    expect(r.read()).toBe(0);
  });

  it("stops reading a streamed body once it passes the bound", async () => {
    const r = request(Array.from({ length: 100 }, () => Buffer.alloc(4)));
    const p = await problem(readBody(r.req, 10));
    expect(p.status).toBe(413);
    expect(r.read()).toBeLessThan(10);
  });
});

describe("readJson", () => {
  const Schema = z.object({ name: z.string(), n: z.number().int().optional() }).strict();
  const json = { "content-type": "application/json; charset=utf-8" };

  it("answers the checked value", async () => {
    expect(await readJson(request([Buffer.from('{"name":"a","n":2}')], json).req, Schema)).toEqual({ name: "a", n: 2 });
  });

  it("refuses another content type with 415, bad JSON and a wrong shape with 400", async () => {
    const t = await problem(readJson(request([Buffer.from("{}")], { "content-type": "text/plain" }).req, Schema));
    expect([t.status, t.error.message]).toEqual([415, "request body: content-type must be application/json, not text/plain"]);
    const none = await problem(readJson(request([Buffer.from("{}")]).req, Schema));
    expect(none.error.message).toBe("request body: content-type must be application/json, not none");
    const bad = await problem(readJson(request([Buffer.from("{nope")], json).req, Schema));
    expect(bad.status).toBe(400);
    expect(bad.error.kind.name).toBe("INVALID_REQUEST");
    expect(bad.error.message).toMatch(/^request body: not valid JSON \(.+\)$/);
    const shape = await problem(readJson(request([Buffer.from('{"name":1,"n":1.5}')], json).req, Schema));
    expect(shape.error.message).toBe(
      "request body: name: Invalid input: expected string, received number; n: Invalid input: expected int, received number",
    );
    const extra = await problem(readJson(request([Buffer.from('{"name":"a","x":1}')], json).req, Schema));
    expect(extra.error.message).toMatch(/"x"/);
  });
});

describe("intParam", () => {
  const q = new URLSearchParams("a=5&b=-1&c=1.5&d=x&e=");
  it("answers the integer, the fallback when absent or empty, a 400 naming the parameter otherwise", () => {
    expect(intParam(q, "a", 0, 0, 10)).toBe(5);
    expect(intParam(q, "missing", 7, 0, 10)).toBe(7);
    expect(intParam(q, "e", 7, 0, 10)).toBe(7);
    for (const name of ["b", "c", "d"]) {
      let e: unknown = null;
      try {
        intParam(q, name, 0, 0, 10);
      } catch (err) {
        e = err;
      }
      expect(e).toBeInstanceOf(ApiProblem);
      expect((e as ApiProblem).error.message).toBe(`${name}: "${q.get(name)}" is not an integer in [0, 10]`);
    }
  });
});

describe("showBytes", () => {
  const bytes = (s: string | number[]) => (typeof s === "string" ? new TextEncoder().encode(s) : Uint8Array.from(s));
  it("shows bytes as text, JSON, hex or base64; null stays null", () => {
    expect(showBytes(null, "text")).toBeNull();
    expect(showBytes(bytes("héllo"), "text")).toEqual({ text: "héllo" });
    expect(showBytes(bytes('{"a":[1,2]}'), "json")).toEqual({ json: { a: [1, 2] } });
    expect(showBytes(bytes("not json"), "json")).toEqual({ text: "not json", json: false });
    expect(showBytes(bytes([0xde, 0xad]), "hex")).toEqual({ hex: "dead" });
    expect(showBytes(bytes([0xff, 0x00]), "base64")).toEqual({ base64: "/wA=" });
  });

  it("marks bytes that are not UTF-8 as binary", () => {
    expect(showBytes(bytes([0xff, 0x41]), "text")).toEqual({ text: "\u00ffA", binary: true });
    expect(showBytes(bytes([0xff, 0x41]), "json")).toEqual({ text: "\u00ffA", json: false });
  });

  it("reads a view, not the whole buffer under it", () => {
    const whole = bytes("xxabcxx");
    expect(showBytes(whole.subarray(2, 5), "text")).toEqual({ text: "abc" });
  });
});
