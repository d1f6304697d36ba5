/**
 * Builds the SDK's npm package, `@rill/client` (packages/client): compiles src/client/index.ts and
 * what it imports of src/base, src/protocol and src/gen to plain ES modules with `.d.ts` files in
 * packages/client/dist (tsc -p packages/client/tsconfig.json; rewriteRelativeImportExtensions turns
 * the sources' `./x.ts` imports into `./x.js`), then:
 *
 * - writes `./x.js` for `./x.ts` in the `.d.ts` files too (tsc keeps `.ts` there, which only
 *   TypeScript ≥ 5.0 resolves), so any TypeScript that reads `exports` types the package;
 * - checks that the output is what the package may ship: only dist/{client,base,protocol,gen}
 *   (the SDK's boundary: never the broker's layers), and no `.ts` specifier left in a `.js` file.
 *
 * Run by `npm run build -w @rill/client` and by `npm pack` there (prepack).
 *
 *   npx tsx scripts/build-client.ts
 */
import { spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { scriptCommand } from "./lib/command-line.ts";

scriptCommand(import.meta.url).parse(process.argv.slice(2), { from: "user" });

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PACKAGE = path.join(ROOT, "packages/client");
const DIST = path.join(PACKAGE, "dist");
/** The source folders (under src/) the package is built from. */
const ALLOWED = new Set(["client", "base", "protocol", "gen"]);
/** A relative module specifier ending in `.ts`, in quotes. */
const TS_SPECIFIER = /(["'])(\.\.?\/[^"'\n]*?)\.ts\1/g;

function filesUnder(dir: string): string[] {
  return nodeFs.readdirSync(dir, { recursive: true, encoding: "utf8" }).map((f) => path.join(dir, f));
}

const started = Date.now();
nodeFs.rmSync(DIST, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", path.join(PACKAGE, "tsconfig.json")], {
  stdio: "inherit",
});
if (tsc.status !== 0) {
  console.error(`build-client: tsc failed (exit ${tsc.status ?? tsc.signal})`);
  process.exit(1);
}

const problems: string[] = [];
for (const top of nodeFs.readdirSync(DIST)) {
  if (!ALLOWED.has(top)) problems.push(`dist/${top}: src/${top} is not part of the SDK (it may import only base, protocol and gen)`);
}
let files = 0;
let bytes = 0;
for (const file of filesUnder(DIST)) {
  if (!nodeFs.statSync(file).isFile()) continue;
  const rel = path.relative(PACKAGE, file);
  let text = nodeFs.readFileSync(file, "utf8");
  if (file.endsWith(".d.ts")) {
    const next = text.replace(TS_SPECIFIER, (_m, q: string, spec: string) => `${q}${spec}.js${q}`);
    if (next !== text) nodeFs.writeFileSync(file, next);
    text = next;
  } else if (file.endsWith(".js")) {
    for (const m of text.matchAll(/(?:from\s*|import\s*\(\s*)(["'])(\.\.?\/[^"']*?\.ts)\1/g)) problems.push(`${rel}: imports ${m[2]}`);
  }
  files++;
  bytes += Buffer.byteLength(text);
}
if (problems.length > 0) {
  console.error(`build-client: the output cannot be shipped:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
// On stderr: `npm pack --json` (which runs this as prepack) keeps stdout for its JSON.
console.error(`build-client: ${files} files, ${(bytes / 1024).toFixed(0)} KiB in packages/client/dist (${Date.now() - started} ms)`);
