/**
 * npm packages that `@rill/client` (the SDK's npm package) treats as optional: the native codecs
 * (lz4-napi, snappy), zstd's WebAssembly (@bokuweb/zstd-wasm) and the hardware CRC32C
 * (@node-rs/crc32). The broker has them all as dependencies; an application that installs only
 * the SDK gets none, gzip and a pure-JavaScript CRC32C, and adds a codec's package to read or write
 * batches of that codec (packages/client/README.md, "Compression").
 *
 * CommonJS packages are loaded synchronously on first use with `require` (createRequire: Node, Bun
 * and Deno all provide it), resolved from this file — inside an installed `@rill/client`, that is
 * the application's node_modules. A package that is not installed is remembered as missing (no
 * second lookup on the hot path).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** What loading an optional package gave: the module, or why it is not available. */
export type OptionalPackage<T> = { readonly module: T; readonly missing: null } | { readonly module: null; readonly missing: string };

const loaded = new Map<string, OptionalPackage<unknown>>();

/** Loads the CommonJS package `name` once; `missing` says why it could not be loaded. */
export function optionalPackage<T>(name: string): OptionalPackage<T> {
  let p = loaded.get(name);
  if (p === undefined) {
    try {
      p = { module: require(name) as unknown, missing: null };
    } catch (e: unknown) {
      const code = (e as { code?: unknown }).code;
      p = {
        module: null,
        missing:
          code === "MODULE_NOT_FOUND" || code === "ERR_MODULE_NOT_FOUND"
            ? `the npm package ${name} is not installed (npm install ${name})`
            : `the npm package ${name} does not load: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
    loaded.set(name, p);
  }
  return p as OptionalPackage<T>;
}

/** Whether `name` can be resolved from here (without loading it); the reason when it cannot. */
export function optionalPackageMissing(name: string): string | null {
  const p = loaded.get(name);
  if (p !== undefined) return p.missing;
  try {
    require.resolve(name);
    return null;
  } catch {
    return `the npm package ${name} is not installed (npm install ${name})`;
  }
}
