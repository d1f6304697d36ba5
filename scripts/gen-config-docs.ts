/**
 * Writes the configuration tables into README.md between the `<!-- config:begin -->` and
 * `<!-- config:end -->` markers, from the schema in src/config/schema.ts. `--check` exits 1 if
 * README.md is not up to date (the test suite runs it).
 *
 *   npx tsx scripts/gen-config-docs.ts [--check]
 */
import * as nodeFs from "node:fs";
import { configDocsMarkdown } from "../src/config/docs.ts";
import { scriptCommand } from "./lib/command-line.ts";

const { check } = scriptCommand(import.meta.url)
  .option("--check", "exit 1 if README.md is not up to date; write nothing")
  .parse(process.argv.slice(2), { from: "user" })
  .opts<{ check?: boolean }>();

const BEGIN = "<!-- config:begin -->";
const END = "<!-- config:end -->";
const path = new URL("../README.md", import.meta.url).pathname;
const readme = nodeFs.readFileSync(path, "utf8");
const a = readme.indexOf(BEGIN);
const b = readme.indexOf(END);
if (a < 0 || b < a) {
  console.error(`README.md has no ${BEGIN} ... ${END} section`);
  process.exit(1);
}
const next = `${readme.slice(0, a + BEGIN.length)}\n${configDocsMarkdown()}\n${readme.slice(b)}`;
if (check) {
  if (next !== readme) {
    console.error("README.md config tables are stale: run npx tsx scripts/gen-config-docs.ts");
    process.exit(1);
  }
} else {
  nodeFs.writeFileSync(path, next);
}
