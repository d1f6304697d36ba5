/** Parsers of option values for commander: each throws InvalidArgumentError naming what it wanted. */

import { InvalidArgumentError } from "commander";

/** An integer in [min, max]. */
export function intIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in [${min}, ${max}], got "${value}"`);
    }
    return n;
  };
}

/** Appends `value` to the list (repeatable options). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** "key=value" pairs into an object; throws InvalidArgumentError for a pair without "=". */
export function keyValues(pairs: readonly string[], option: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`${option}: expected key=value, got "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** One of `choices`. */
export function oneOf<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value))
      throw new InvalidArgumentError(`expected one of ${choices.join(", ")}, got "${value}"`);
    return value as T;
  };
}

/** A separator given on the command line, with \t and \n escapes understood. */
export function separator(value: string): string {
  const sep = value.replace(/\\t/g, "\t").replace(/\\n/g, "\n");
  if (sep === "") throw new InvalidArgumentError("must not be empty");
  return sep;
}
