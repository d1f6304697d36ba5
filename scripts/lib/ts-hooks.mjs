/**
 * Module hooks (node:module `register`) that compile the project's TypeScript as tsx does —
 * esbuild, ESM, for this Node — but without tsx's `keepNames`, which wraps every named closure
 * in an Object.defineProperty call each time one is made: 6% of a cluster simulator run
 * (scripts/sim.ts registers these before it loads the simulator; tsx still resolves the modules).
 * A plain per-file transform renames nothing, so every name stays as it was without keepNames.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";

const options = {
  loader: "ts",
  format: "esm",
  target: `node${process.versions.node}`,
  sourcemap: "inline",
  sourcesContent: false,
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
};

export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts") || url.includes("/node_modules/")) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const { code } = await transform(await readFile(file, "utf8"), { ...options, sourcefile: file });
  return { format: "module", source: code, shortCircuit: true };
}
