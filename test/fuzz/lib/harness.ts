/**
 * The fuzz harness: runs one target's property over `cases` generated inputs from one seed with
 * fast-check, and on a failure reports the seed, the replay command and the shrunk (minimal)
 * input as the target prints it. Used by test/fuzz/*.test.ts (CI budget) and scripts/fuzz.ts.
 *
 * A target's `check` throws on a property violation; `expectCatalogError` is the rule every
 * target shares for what it may throw: a RillError whose code is in the catalog (src/base/
 * errors.ts), or an error class the target names (a wire codec's WireFormatError). An
 * AssertionError is always a failure: it means a bug.
 */
import fc from "fast-check";
import { AssertionError } from "../../../src/base/assert.ts";
import { errorKindByCode, RillError } from "../../../src/base/errors.ts";

/** What a target needs across cases (a world it opened once), closed after the run. */
export interface FuzzContext {
  close(): Promise<void> | void;
}

/** One fuzz target: inputs, the property over one input, and how to print an input. */
export interface FuzzTarget<T, C extends FuzzContext | null = null> {
  readonly name: string;
  /** One line: what is fuzzed and which properties are checked. */
  readonly doc: string;
  /** Cases the CI run gives it (test/fuzz/fuzz.test.ts); its share of "a few thousand". */
  readonly ciCases: number;
  readonly arbitrary: fc.Arbitrary<T>;
  /** Opens what the cases share (once per run); null when nothing is shared. */
  open(): Promise<C> | C;
  /** Throws when the property does not hold for `input`. */
  check(input: T, ctx: C): Promise<void> | void;
  /** The input as a reproduction: short, exact (buffers as hex). */
  show(input: T): string;
}

/** A type-erased target, for registries. */
// biome-ignore lint/suspicious/noExplicitAny: registries hold targets of every input type
export type AnyTarget = FuzzTarget<any, any>;

/** Options of one run. */
export interface FuzzOptions {
  readonly cases: number;
  readonly seed: number;
  /** fast-check's replay path of a failure (printed with it), to rerun just that case. */
  readonly path?: string | undefined;
}

/** The outcome of one run. */
export interface FuzzResult {
  readonly target: string;
  readonly seed: number;
  readonly cases: number;
  readonly ms: number;
  /** null when every case held; else the report to print (seed, replay command, reproduction). */
  readonly failure: string | null;
}

/** Runs `target` for `opts.cases` cases from `opts.seed`. */
export async function fuzz(target: AnyTarget, opts: FuzzOptions): Promise<FuzzResult> {
  const ctx = await target.open();
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };
  process.on("unhandledRejection", onUnhandled);
  const t0 = performance.now();
  let cases = 0;
  try {
    const prop = fc.asyncProperty(target.arbitrary, async (input: unknown) => {
      cases++;
      await target.check(input, ctx);
      // A rejection nobody awaited surfaces on the next turns of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      if (unhandled.length > 0) {
        const e = unhandled.splice(0)[0];
        throw new Error(`unhandled rejection: ${describeError(e)}`);
      }
    });
    const details = await fc.check(prop, {
      numRuns: opts.cases,
      seed: opts.seed,
      ...(opts.path !== undefined ? { path: opts.path } : {}),
    });
    const ms = performance.now() - t0;
    if (!details.failed) return { target: target.name, seed: opts.seed, cases: details.numRuns, ms, failure: null };
    return { target: target.name, seed: opts.seed, cases, ms, failure: formatFailure(target, opts, details) };
  } finally {
    process.off("unhandledRejection", onUnhandled);
    await ctx?.close();
  }
}

function formatFailure(target: AnyTarget, opts: FuzzOptions, d: fc.RunDetails<[unknown]>): string {
  const input = d.counterexample?.[0];
  const err = d.errorInstance;
  return [
    `fuzz target "${target.name}" FAILED at case ${d.numRuns} of ${opts.cases} (seed ${d.seed}; shrunk ${d.numShrinks} times)`,
    `replay: npm run fuzz -- --target ${target.name} --seed ${d.seed} --path ${d.counterexamplePath ?? ""} --cases ${opts.cases}`,
    `minimal reproduction: ${input === undefined ? "(none)" : safeShow(target, input)}`,
    `error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  ].join("\n");
}

function safeShow(target: AnyTarget, input: unknown): string {
  try {
    return target.show(input);
  } catch (e) {
    return `${showJson(input)} (show failed: ${describeError(e)})`;
  }
}

/** "Name: message" of anything thrown. */
export function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** A violated property: thrown by checks, with the cause attached. */
export class PropertyFailure extends Error {
  override name = "PropertyFailure";
}

/**
 * Passes when `e` is a RillError of a catalog code, or an instance of one of `also` (never an
 * AssertionError); otherwise throws a PropertyFailure saying what was thrown instead.
 */
export function expectCatalogError(e: unknown, also: ReadonlyArray<abstract new (...args: never[]) => Error> = []): RillError | Error {
  if (e instanceof AssertionError) throw new PropertyFailure(`an assertion failed (a bug): ${e.message}`, { cause: e });
  if (e instanceof RillError) {
    if (errorKindByCode(e.code) !== e.kind) throw new PropertyFailure(`RillError with code ${e.code} outside the catalog`, { cause: e });
    return e;
  }
  for (const c of also) if (e instanceof c) return e;
  throw new PropertyFailure(`threw ${describeError(e)}, not a RillError of the catalog`, { cause: e });
}

/** Runs `f`; returns its value, or the accepted error it threw (see expectCatalogError). */
export function attempt<R>(f: () => R, also: ReadonlyArray<abstract new (...args: never[]) => Error> = []): { ok: R } | { err: Error } {
  try {
    return { ok: f() };
  } catch (e) {
    return { err: expectCatalogError(e, also) };
  }
}

/** Throws a PropertyFailure with `message` unless `cond`. */
export function holds(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new PropertyFailure(typeof message === "string" ? message : message());
}

/** Bytes as hex, cut in the middle past `max` bytes. */
export function hex(b: Uint8Array, max = 4096): string {
  const h = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
  return h.length <= 2 * max ? h : `${h.slice(0, max)}…(${b.length} bytes)…${h.slice(-max)}`;
}

/** JSON with buffers as {hex}, bigints as strings: for `show`. */
export function showJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === "bigint") return `${x}n`;
    if (x instanceof Uint8Array) return { hex: hex(x, 512) };
    if (x !== null && typeof x === "object" && (x as { type?: unknown }).type === "Buffer") {
      return { hex: Buffer.from((x as { data: number[] }).data).toString("hex") };
    }
    return x;
  });
}
