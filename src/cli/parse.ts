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

/**
 * A parser for a repeatable `--flag key=value` option: adds each pair to the object built so far.
 * A value without "=" (or with nothing before it) throws InvalidArgumentError naming `option` and
 * the form it expects, so commander prints it as a usage error.
 */
export function keyValue(option: string): (value: string, previous?: Record<string, string>) => Record<string, string> {
  return (value, previous = {}) => {
    const eq = value.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`expected ${option} key=value`);
    return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
  };
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
