import * as nodeFs from "node:fs";
import { describe, expect, it } from "vitest";
import { configDocsMarkdown } from "../../../src/config/docs.ts";
import { brokerKeys, topicKeys } from "../../../src/config/schema.ts";

describe("README config tables", () => {
  it("are generated from the schema and up to date (npx tsx scripts/gen-config-docs.ts)", () => {
    const readme = nodeFs.readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const body = readme.slice(
      readme.indexOf("<!-- config:begin -->") + "<!-- config:begin -->".length,
      readme.indexOf("<!-- config:end -->"),
    );
    expect(body.trim()).toBe(configDocsMarkdown().trim());
    for (const k of [...brokerKeys, ...topicKeys]) expect(body).toContain(`\`${k.name}\``);
  });

  it("starts with exactly the two set-up commands", () => {
    const readme = nodeFs.readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const block = /```sh\n([\s\S]*?)```/.exec(readme)![1]!.trim().split("\n");
    expect(block.map((l) => l.split("#")[0]!.trim())).toEqual(["npm ci && npm start", "npm ci && npm test"]);
    const ci = nodeFs.readFileSync(new URL("../../../.ci/run", import.meta.url), "utf8");
    expect(ci).toContain("npm ci\nnpm test");
  });
});
