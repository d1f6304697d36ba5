/**
 * The command line of a repository script (scripts/*.ts, bench/*.ts, bench/peers/*.ts,
 * test/faults/run.ts), built with commander so that every one behaves alike:
 *
 * - `--help` (or `-h`) prints the usage and exits 0. The usage is the doc comment at the top of
 *   the script — where each script already describes what it does and how to run it, so the two
 *   cannot drift — followed by the options commander lists, with their defaults.
 * - An unknown option or a bad value prints one line, `<script>: <what is wrong> (see --help)`,
 *   on stderr and exits 2; nothing has run yet.
 *
 *   const o = scriptCommand(import.meta.url).option("--seed <n>", "seed", integer(0)).parse(argv, { from: "user" }).opts();
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";

/** The repository root (this file is scripts/lib/command-line.ts). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Exit code of a command line that cannot be parsed (as the `rill` command's usage errors). */
export const USAGE_EXIT_CODE = 2;

/**
 * The text of the first doc comment of the file at `moduleUrl` (the script's own description),
 * without the comment markers; "" when it has none.
 */
export function docComment(moduleUrl: string): string {
  const source = nodeFs.readFileSync(fileURLToPath(moduleUrl), "utf8");
  const match = /\/\*\*([\s\S]*?)\*\//.exec(source);
  if (match === null) return "";
  return match[1]!
    .split("\n")
    .map((line) => line.replace(/^\s*\* ?/, ""))
    .join("\n")
    .trim();
}

/**
 * A commander program for the script at `moduleUrl`, named by its path in the repository, whose
 * help is the script's doc comment; see the module comment for `--help` and errors.
 */
export function scriptCommand(moduleUrl: string): Command {
  const name = path.relative(ROOT, fileURLToPath(moduleUrl));
  return (
    new Command(name)
      .description(docComment(moduleUrl))
      .helpOption("-h, --help", "print this usage and exit")
      // The doc comment is laid out already: commander must not wrap it at the terminal's width.
      .configureHelp({ helpWidth: Number.MAX_SAFE_INTEGER })
      .allowExcessArguments(false)
      .configureOutput({
        outputError: (message, write) => write(`${name}: ${message.replace(/^error: /, "").trimEnd()} (see --help)\n`),
      })
      .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : USAGE_EXIT_CODE))
  );
}

/** An option-value parser: an integer in [min, max]. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER ? `expected an integer >= ${min}` : `expected an integer in [${min}, ${max}]`,
      );
    }
    return n;
  };
}

/** An option-value parser: one of `choices`. */
export function choice<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(", ")}`);
    return value as T;
  };
}

/** A key of an options object in camelCase as a command-line flag: `recordSize` -> `--record-size`. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Adds to `command` one option per key of `defaults` (`recordSize` -> `--record-size <n>`):
 * numbers parsed as numbers, booleans given as `true` or `false`, anything else as a string;
 * `--help` lists each with its default.
 */
export function addOptions(command: Command, defaults: object): Command {
  for (const [key, value] of Object.entries(defaults)) {
    const flag = flagOf(key);
    if (typeof value === "number") command.option(`${flag} <n>`, "", finiteNumber, value);
    else if (typeof value === "boolean") command.option(`${flag} <true|false>`, "", trueOrFalse, value);
    else command.option(`${flag} <value>`, "", (v: string) => v, value);
  }
  return command;
}

/** The options of `keys` given on the command line (not defaulted), as `--flag value` pairs again. */
export function givenArgs(command: Command, keys: readonly string[]): string[] {
  return keys.filter((k) => command.getOptionValueSource(k) === "cli").flatMap((k) => [flagOf(k), String(command.getOptionValue(k))]);
}

/**
 * Parses `--kebab-case value` pairs into a copy of `defaults` (see `addOptions`); `--help` prints
 * the doc comment of the script at `moduleUrl` and every option with its default.
 */
export function parseWithDefaults<T extends object>(argv: readonly string[], defaults: T, moduleUrl: string): T {
  const command = addOptions(scriptCommand(moduleUrl), defaults);
  command.parse([...argv], { from: "user" });
  return { ...defaults, ...command.opts() } as T;
}

function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
}

function trueOrFalse(value: string): boolean {
  if (value !== "true" && value !== "false") throw new InvalidArgumentError("expected true or false");
  return value === "true";
}
