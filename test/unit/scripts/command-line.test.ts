/** scripts/lib/command-line.ts: the option parsing every repository script shares. */
import { describe, expect, it } from "vitest";
import { addOptions, docComment, flagOf, givenArgs, integer, parseWithDefaults, scriptCommand } from "../../../scripts/lib/command-line.ts";

const SIM = new URL("../../../scripts/sim.ts", import.meta.url).href;

describe("parseWithDefaults", () => {
  const defaults = { records: 1000, throughput: -1, quick: false, label: "latest", json: null as string | null };

  it("keeps the defaults for options not given", () => {
    expect(parseWithDefaults([], defaults, SIM)).toEqual(defaults);
  });

  it("parses numbers (negative too), true/false and strings, in either spelling", () => {
    expect(
      parseWithDefaults(["--records", "5", "--throughput", "-1", "--quick", "true", "--label=x", "--json", "out.json"], defaults, SIM),
    ).toEqual({
      records: 5,
      throughput: -1,
      quick: true,
      label: "x",
      json: "out.json",
    });
    expect(parseWithDefaults(["--throughput", "2.5e5", "--quick", "false"], defaults, SIM)).toMatchObject({
      throughput: 250_000,
      quick: false,
    });
  });
});

describe("the pieces", () => {
  it("flagOf spells a camelCase key as a kebab-case flag", () => {
    expect(flagOf("recordSize")).toBe("--record-size");
    expect(flagOf("inFlightPerPartition")).toBe("--in-flight-per-partition");
  });

  it("givenArgs passes on only what the command line gave", () => {
    const command = addOptions(scriptCommand(SIM), { records: 1, mode: "batches", partitions: 1 });
    command.parse(["--mode", "records", "--partitions", "4"], { from: "user" });
    expect(givenArgs(command, ["records", "mode", "partitions"])).toEqual(["--mode", "records", "--partitions", "4"]);
  });

  it("integer refuses what is not an integer in range", () => {
    expect(integer(1, 5)("5")).toBe(5);
    for (const bad of ["0", "6", "1.5", "", "x"]) expect(() => integer(1, 5)(bad)).toThrow("expected an integer in [1, 5]");
    expect(() => integer(0)("-1")).toThrow("expected an integer >= 0");
  });

  it("docComment is the script's first doc comment without the markers", () => {
    const doc = docComment(SIM);
    expect(doc.split("\n")[0]).toBe("Replays one seed of the Raft cluster simulator, or sweeps many.");
    expect(doc).toContain("npx tsx scripts/sim.ts --seed N");
    expect(doc).not.toMatch(/^\s*\*/m);
  });

  it("the help shows the usage line, the doc comment and the options", () => {
    const help = scriptCommand(SIM).option("--seed <n>", "replay this seed").helpInformation();
    expect(help).toMatch(/^Usage: scripts\/sim\.ts \[options\]\n\nReplays one seed/);
    expect(help).toContain("--seed <n>");
    expect(help).toContain("-h, --help");
  });
});
