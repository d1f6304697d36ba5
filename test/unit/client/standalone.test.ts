/**
 * The SDK stands alone (published as `@rill/client`): everything src/client/index.ts reaches,
 * import by import, lies in src/client, src/base, src/protocol or src/gen; and src/protocol, which
 * the broker and the SDK share, imports neither side nor the generated code.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(".");
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"/g;

/** The relative imports of `file`, as paths from the repository root. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  return [...text.matchAll(IMPORT)].map((m) => path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), m[1]!)));
}

/** Every file `entry` reaches through relative imports, itself included. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    todo.push(...importsOf(file));
  }
  return seen;
}

describe("the SDK stands alone", () => {
  it("reaches only src/client, src/base, src/protocol and src/gen from its entry point", () => {
    const files = [...reachable("src/client/index.ts")];
    expect(files.length).toBeGreaterThan(30);
    expect(files.filter((f) => !/^src\/(client|base|protocol|gen)\//.test(f))).toEqual([]);
    expect(files).toContain("src/protocol/grpc-errors.ts");
  });

  it("src/protocol imports only src/base", () => {
    const protocol = fs.readdirSync(path.join(ROOT, "src/protocol")).filter((f) => f.endsWith(".ts"));
    const outside = protocol.flatMap((f) => importsOf(`src/protocol/${f}`)).filter((f) => !/^src\/(base|protocol)\//.test(f));
    expect(outside).toEqual([]);
  });

  it("imports at run time only the npm packages @rill/client depends on (codecs and native CRC are loaded on demand)", () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "packages/client/package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const packageOf = (spec: string): string =>
      spec
        .split("/")
        .slice(0, spec.startsWith("@") ? 2 : 1)
        .join("/");
    const used = new Set<string>();
    for (const file of reachable("src/client/index.ts")) {
      const text = fs.readFileSync(path.join(ROOT, file), "utf8");
      // Value imports only: `import type` and `typeof import("x")` vanish from the JavaScript.
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s(?!type\s)[^;]*?from\s+"([^".][^"]*)"/g)) {
        if (!m[1]!.startsWith("node:")) used.add(packageOf(m[1]!));
      }
      for (const m of text.matchAll(/\bimport\(\s*"([^".][^"]*)"\s*\)/g)) {
        if (!text.slice(Math.max(0, m.index - 7), m.index).includes("typeof")) used.add(`${packageOf(m[1]!)} (dynamic)`);
      }
    }
    expect([...used].sort()).toEqual([...Object.keys(manifest.dependencies), "@bokuweb/zstd-wasm (dynamic)"].sort());
  });
});
