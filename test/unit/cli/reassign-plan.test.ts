import { describe, expect, it } from "vitest";
import { reassignmentJson } from "../../../src/cli/balance-commands.ts";
import { parsePlan } from "../../../src/cli/reassign-commands.ts";
import { CliError } from "../../../src/cli/output.ts";

describe("rill partitions reassign --plan FILE", () => {
  it("reads Kafka's reassignment JSON", () => {
    const plan = parsePlan(
      '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[4,2,3]},{"topic":"u","partition":2,"replicas":[1]}]}',
    );
    expect(plan).toEqual([
      { topic: "t", partition: 0, replicas: [4, 2, 3] },
      { topic: "u", partition: 2, replicas: [1] },
    ]);
  });

  it("names the field at fault", () => {
    const bad = (text: string) => {
      try {
        parsePlan(text, "plan.json");
      } catch (e) {
        expect(e).toBeInstanceOf(CliError);
        return (e as Error).message;
      }
      throw new Error("accepted");
    };
    expect(bad("{")).toMatch(/^plan.json: not JSON/);
    expect(bad('{"partitions":[]}')).toMatch(/"partitions" must be a non-empty list/);
    expect(bad('{"partitions":[{"partition":0,"replicas":[1]}]}')).toMatch(/partitions\[0\]\.topic/);
    expect(bad('{"partitions":[{"topic":"t","partition":-1,"replicas":[1]}]}')).toMatch(/partitions\[0\]\.partition/);
    expect(bad('{"partitions":[{"topic":"t","partition":0,"replicas":[1,"x"]}]}')).toMatch(/partitions\[0\]\.replicas/);
  });
});

describe("rill cluster rebalance --plan FILE", () => {
  it("writes the planned moves as the reassignment JSON that partitions reassign --plan reads back", () => {
    const moves = [
      { topic: "orders", partition: 3, replicas: [4, 1, 2] },
      { topic: "__consumer_offsets", partition: 17, replicas: [5, 3, 1] },
    ];
    const text = reassignmentJson(moves);
    expect(JSON.parse(text)).toEqual({ version: 1, partitions: moves });
    expect(parsePlan(text, "plan.json")).toEqual(moves);
  });
});
