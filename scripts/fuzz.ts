/**
 * The seeded, structure-aware fuzzer (test/fuzz/README.md): runs each target — or one — for N
 * cases from one seed, prints each target's cases per second, and on a failure the seed, the
 * replay command and the shrunk input; exits 1 when a property failed.
 *
 *   npm run fuzz -- [--cases N] [--seed S] [--target batch|produce|wire|raft|consume]
 *   npm run fuzz -- --target T --seed S --path P     (replay one failure as printed)
 *   --lenient: the produce target no longer requires every stored batch to decode record by
 *             record (required by default: produce.validation=full refuses poisoned batches)
 *
 * Without --seed the seed is drawn at random and printed first.
 */
import { fuzz } from "../test/fuzz/lib/harness.ts";
import { TARGETS, targetNamed } from "../test/fuzz/targets/index.ts";
import { produceOptions } from "../test/fuzz/targets/produce.ts";
import { choice, integer, scriptCommand } from "./lib/command-line.ts";

interface Args {
  cases: number;
  seed: number;
  target: string | undefined;
  path: string | undefined;
  strict: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const command = scriptCommand(import.meta.url)
    .option("--cases <n>", "cases per target", integer(1), 1000)
    .option("--seed <n>", "the seed (default: random, printed)", integer(0, 2 ** 31 - 1))
    .option("--target <name>", "one target only", choice(TARGETS.map((t) => t.name)))
    .option("--path <path>", "fast-check replay path of a printed failure (with --target and --seed)")
    .option("--lenient", "produce: do not require every stored batch to decode (strict is the default since produce.validation=full)");
  command.parse([...argv], { from: "user" });
  const o = command.opts<{ cases: number; seed?: number; target?: string; path?: string; lenient?: boolean }>();
  if (o.path !== undefined && (o.target === undefined || o.seed === undefined)) command.error("--path needs --target and --seed");
  return {
    cases: o.cases,
    seed: o.seed ?? Math.floor(Math.random() * 2 ** 31),
    target: o.target,
    path: o.path,
    strict: o.lenient !== true,
  };
}

async function main(a: Args): Promise<number> {
  produceOptions.strictStored = a.strict;
  const targets = a.target === undefined ? TARGETS : [targetNamed(a.target)!];
  console.log(`fuzz: seed ${a.seed}, ${a.cases} cases per target${a.strict ? "" : ", lenient"}`);
  let failed = 0;
  for (const t of targets) {
    const r = await fuzz(t, { cases: a.cases, seed: a.seed, path: a.path });
    const rate = r.cases / (r.ms / 1000);
    console.log(
      `${t.name.padEnd(8)} ${r.failure === null ? "ok    " : "FAILED"} ${r.cases} cases in ${(r.ms / 1000).toFixed(2)} s (${rate.toFixed(0)} cases/s)`,
    );
    if (r.failure !== null) {
      failed++;
      console.log(r.failure);
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main(parseArgs(process.argv.slice(2)));
