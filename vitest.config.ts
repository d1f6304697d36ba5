import { BaseSequencer, type TestSpecification } from "vitest/node";
import { defineConfig } from "vitest/config";

/**
 * The suite runs in two groups, one after the other (CI has 2 cores):
 * 1. "shared": every file but the ones below, two at a time.
 * 2. "exclusive": files whose real clients, kill -9 faults or elections run against bounds that
 *    assume the machine to themselves, one at a time. (With everything two at a time, a librdkafka
 *    producer in kafka-failover once ran out of its bound while another file held the other core.)
 */
const exclusive = [
  "test/faults/faults.test.ts",
  "test/faults/txn-faults.test.ts",
  "test/integration/cluster-quorum.test.ts",
  "test/integration/kafka-failover.test.ts",
  "test/integration/kafka-txn-clients.test.ts",
];

/**
 * The longest files of the shared group, longest first, so that neither worker is left with a
 * long file at the end while the other idles (seconds of a serial CI run, 2026-12-06). A clean
 * clone has no vitest cache to order by; files not listed follow in vitest's own order.
 */
const longestFirst = [
  "test/soak/soak.test.ts", // 187 s
  "test/interop/cpp.test.ts", // 28
  "test/integration/quotas.test.ts", // 26
  "test/sim/cluster-sim/cluster-sim.test.ts", // 23
  "test/integration/client-cluster.test.ts", // 22
  "test/interop/python-tls.test.ts", // 21
  "test/sim/raft-sim.test.ts", // 21
  "test/integration/cli-cluster.test.ts", // 21
  "test/integration/kafka-admin-clients.test.ts", // 20
  "test/integration/cli-tools.test.ts", // 19
  "test/integration/cluster-bad-input.test.ts", // 16
  "test/integration/memory-limits.test.ts", // 14
  "test/integration/kafka-consume-clients.test.ts", // 13
  "test/interop/go.test.ts", // 13
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification): number => {
      const i = longestFirst.findIndex((p) => f.moduleId.endsWith(`/${p}`));
      return i < 0 ? longestFirst.length : i;
    };
    // Array.prototype.sort is stable: the base order (group first) holds among equal ranks.
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => {
        const group = a.f.project.config.sequence.groupOrder - b.f.project.config.sequence.groupOrder;
        return group !== 0 ? group : rank(a.f) - rank(b.f) || a.i - b.i;
      })
      .map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        extends: true,
        test: {
          name: "shared",
          include: ["test/**/*.test.ts"],
          exclude: ["**/node_modules/**", ...exclusive],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "exclusive",
          include: exclusive,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
