/**
 * The CI share of the fuzzer (test/fuzz/README.md): every target for its `ciCases` cases from
 * one seed — 14 unless FUZZ_SEED says otherwise — printed with the run. A failure prints the
 * seed, the replay command and the shrunk input.
 */
import { describe, expect, it } from "vitest";
import { fuzz } from "./lib/harness.ts";
import { TARGETS } from "./targets/index.ts";

const seed = Number(process.env.FUZZ_SEED ?? 14);

describe(`fuzz (seed ${seed}; FUZZ_SEED=<n> to change it)`, () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${target.ciCases} cases hold`, async () => {
      const r = await fuzz(target, { cases: target.ciCases, seed });
      console.log(`fuzz ${target.name}: ${r.cases} cases, seed ${seed}, ${(r.ms / 1000).toFixed(2)} s`);
      if (r.failure !== null) console.error(r.failure);
      expect(r.failure).toBeNull();
    });
  }
});
