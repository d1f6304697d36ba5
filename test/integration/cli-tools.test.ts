/**
 * What people script `rill` with (issue 18), as users run it (bin/rill, under the package's Bun)
 * against one real broker on 127.0.0.1: consume format strings (`-f`), exit at the end (`-e`),
 * relative and time offsets (`-o -2`, `-o +1`, `-o @-1h`, `-o @ISO`), several topics and
 * `--regex`, binary keys and values (base64, hex); produce from JSON lines with per-record
 * headers, tombstones (`--null-value`, `-Z`), where each record went (`--print-offsets`,
 * `--json`); topic add-partitions, elect-leaders and every effective config in describe;
 * `--json` on each command; `--version`; `completion bash|zsh`; profiles.
 */
import { spawn, spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(".");
const RILL = path.join(ROOT, "bin/rill");

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let dir: string;
let broker: Broker;
let bootstrap: string;
/** The profiles file of this file's runs (never the user's own). */
let config: string;

/** Runs `bin/rill args` with `stdin`, killed after 20 s; RILL_BOOTSTRAP is the test broker unless `env` says otherwise. */
function rill(args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, RILL_BOOTSTRAP: bootstrap, RILL_CONFIG: config, ...opts.env };
    delete env["RILL_RUNTIME"];
    delete env["RILL_PROFILE"];
    for (const [k, v] of Object.entries(opts.env ?? {})) if (v === undefined) delete env[k];
    const proc = spawn(RILL, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    proc.stdin.end(opts.stdin ?? "");
  });
}

/** Runs and expects exit 0 with nothing on stderr; answers stdout. */
async function ok(args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<string> {
  const r = await rill(args, opts);
  expect({ code: r.code, stderr: r.stderr }, args.join(" ")).toEqual({ code: 0, stderr: "" });
  return r.stdout;
}

function expectOneErrorLine(r: Result, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^rill: /);
  expect(lines[0]).toMatch(pattern);
}

const lines = (s: string): string[] => s.trimEnd().split("\n");

beforeAll(async () => {
  dir = tmpDir("rill-cli-tools-");
  config = path.join(dir, "config", "rill.json");
  broker = await Broker.start({ dataDir: path.join(dir, "data"), listen: "127.0.0.1:0" });
  bootstrap = broker.address;
});

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

describe("rill produce", () => {
  beforeAll(async () => {
    await ok(["topic", "create", "log", "--partitions", "2"]);
  });

  it("prints where each record went, in input order (--print-offsets, --json); tombstones from --null-value and -Z", async () => {
    const out = await ok(["produce", "log", "--partition", "0", "--key-separator", ":", "--print-offsets", "--null-value", "DEL"], {
      stdin: "a:1\nb:DEL\nc:3\n",
    });
    expect(out).toBe("log 0 0\nlog 0 1\nlog 0 2\n");
    const json = await ok(["produce", "log", "--partition", "1", "--key-separator", ":", "-Z", "--json"], { stdin: "d:\ne:5\n" });
    expect(lines(json).map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      { topic: "log", partition: 1, offset: 0, timestamp: expect.any(Number) },
      { topic: "log", partition: 1, offset: 1, timestamp: expect.any(Number) },
    ]);
    // %S is the value's length, -1 for null: b and d are tombstones.
    const consumed = await ok(["consume", "log", "-o", "beginning", "-e", "-f", "%p %o %k %S %v\\n"]);
    expect(lines(consumed)).toEqual(["0 0 a 1 1", "0 1 b -1 ", "0 2 c 1 3", "1 0 d -1 ", "1 1 e 1 5"]);
  });

  it("reads JSON lines with per-record headers, partitions, timestamps and binary values; copies a topic through consume --json", async () => {
    await ok(["topic", "create", "bin", "--partitions", "2"]);
    const input = [
      { key: "k1", value: "AAEC/w==", headers: [{ key: "trace", value: "t1" }], partition: 1, timestamp: 1700000000000 },
      { key: "k2", value: null, headers: { trace: "t2", empty: null } },
      { value: "aGk=" },
    ]
      .map((r) => JSON.stringify(r))
      .join("\n");
    await ok(["produce", "bin", "--format", "json", "--value-format", "base64", "--header", "src=cli"], { stdin: `${input}\n` });
    const hex = await ok(["consume", "bin", "--partition", "1", "-o", "0", "-n", "1", "--value-format", "hex", "-f", "%k %v %h %T %d\\n"]);
    expect(hex).toBe("k1 000102ff src=cli,trace=t1 1700000000000 2023-11-14T22:13:20.000Z\n");
    // consume --json | produce --format json: the same keys, values (base64 both ways) and headers elsewhere.
    await ok(["topic", "create", "bin-copy", "--partitions", "2"]);
    const dump = await ok(["consume", "bin", "-o", "beginning", "-e", "--json", "--value-format", "base64"]);
    expect(lines(dump)).toHaveLength(3);
    await ok(["produce", "bin-copy", "--format", "json", "--value-format", "base64"], { stdin: dump });
    const strip = (s: string): unknown[] =>
      lines(s)
        .map((l) => JSON.parse(l) as { topic: string; offset: number; timestamp: number; key: string; value: string; headers: unknown })
        .map(({ key, value, headers, timestamp }) => ({ key, value, headers, timestamp }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(strip(await ok(["consume", "bin-copy", "-o", "beginning", "-e", "--json", "--value-format", "base64"]))).toEqual(strip(dump));
  });

  it("refuses bad lines with one error naming the line", async () => {
    expectOneErrorLine(
      await rill(["produce", "log", "--format", "json"], { stdin: '{"value":"x"}\nnot json\n' }),
      1,
      /stdin line 2: not JSON/,
    );
    expectOneErrorLine(
      await rill(["produce", "log", "--format", "json"], { stdin: '{"vale":"x"}\n' }),
      1,
      /stdin line 1: unknown field "vale"/,
    );
    expectOneErrorLine(await rill(["produce", "log", "--value-format", "hex"], { stdin: "abc\n" }), 1, /stdin line 1: value: not hex/);
    expectOneErrorLine(
      await rill(["produce", "log", "--format", "json"], { stdin: '{"value":"x","partition":9}\n' }),
      1,
      /--partition: 9 is not in \[0, 2\)/,
    );
  });
});

describe("rill consume", () => {
  beforeAll(async () => {
    await ok(["topic", "create", "nums", "--partitions", "2"]);
    await ok(["produce", "nums", "--partition", "0"], { stdin: "a0\na1\na2\na3\na4\n" });
    await ok(["produce", "nums", "--partition", "1"], { stdin: "b0\nb1\n" });
  });

  it("-f prints kcat-style fields; -e exits at the end of every partition", async () => {
    const out = await ok(["consume", "nums", "--from-beginning", "-e", "-f", "%t/%p/%o=%s (%K,%S) %%\\n"]);
    expect(lines(out).sort()).toEqual(
      ["nums/0/0=a0 (-1,2) %", "nums/0/1=a1 (-1,2) %", "nums/0/2=a2 (-1,2) %", "nums/0/3=a3 (-1,2) %", "nums/0/4=a4 (-1,2) %"]
        .concat(["nums/1/0=b0 (-1,2) %", "nums/1/1=b1 (-1,2) %"])
        .sort(),
    );
    // At the end already: -e exits at once with nothing printed.
    expect(await ok(["consume", "nums", "-e"])).toBe("");
    const usage = await rill(["consume", "nums", "-f", "%q"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^rill: .*unknown field %q/);
  });

  it("-o: N, -N before the end (not before the start), +N after the start, beginning, end", async () => {
    const f = ["-e", "-f", "%v "];
    expect(await ok(["consume", "nums", "--partition", "0", "-o", "-2", ...f])).toBe("a3 a4 ");
    expect(await ok(["consume", "nums", "--partition", "1", "-o", "-10", ...f])).toBe("b0 b1 ");
    expect(await ok(["consume", "nums", "--partition", "0", "-o", "+3", ...f])).toBe("a3 a4 ");
    expect(await ok(["consume", "nums", "--partition", "0", "-o", "4", ...f])).toBe("a4 ");
    expect(await ok(["consume", "nums", "--partition", "1", "-o", "beginning", ...f])).toBe("b0 b1 ");
    expect(await ok(["consume", "nums", "-o", "end", ...f])).toBe("");
    const per = await ok(["consume", "nums", "-o", "-1", ...f]);
    expect(per.trim().split(" ").sort()).toEqual(["a4", "b1"]);
    const bad = await rill(["consume", "nums", "-o", "soon"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^rill: .*expected N, -N \(before the end\)/);
  });

  it("-o @TIME: a duration before now, an ISO date, ms since the epoch", async () => {
    const all = (await ok(["consume", "nums", "-o", "@-1h", "-e", "-f", "%v\\n"])).trim().split("\n").sort();
    expect(all).toEqual(["a0", "a1", "a2", "a3", "a4", "b0", "b1"]);
    expect(await ok(["consume", "nums", "-o", "@2999-01-01T00:00:00Z", "-e"])).toBe("");
    expect(await ok(["consume", "nums", "-o", "@0", "-e", "-n", "1", "--partition", "1"])).toBe("b0\n");
    expect((await rill(["consume", "nums", "-o", "@yesterday"])).code).toBe(2);
  });

  it("several topics, and --regex matching whole names", async () => {
    await ok(["topic", "create", "nums-extra"]);
    await ok(["produce", "nums-extra"], { stdin: "x0\n" });
    const two = await ok(["consume", "nums", "nums-extra", "-o", "beginning", "-e", "-f", "%t:%v\\n"]);
    expect(lines(two)).toHaveLength(8);
    expect(lines(two)).toContain("nums-extra:x0");
    const byRegex = await ok(["consume", "nums-.*", "--regex", "-o", "beginning", "-e", "-f", "%t:%v\\n"]);
    expect(byRegex).toBe("nums-extra:x0\n");
    expectOneErrorLine(await rill(["consume", "nope-.*", "--regex", "-e"]), 1, /no topic matches "nope-\.\*"/);
    expectOneErrorLine(await rill(["consume", "nums", "nums-extra", "--partition", "0"]), 1, /--partition needs exactly one topic/);
  });
});

describe("rill topic", () => {
  it("add-partitions raises the count; elect-leaders reports each partition; describe shows every effective config", async () => {
    await ok(["topic", "create", "grow", "--partitions", "1", "--config", "retention.ms=600000"]);
    expect(await ok(["topic", "add-partitions", "grow", "--count", "3"])).toBe("Topic grow now has 3 partitions (was 1).\n");
    expect(JSON.parse(await ok(["topic", "add-partitions", "grow", "--count", "4", "--validate-only", "--json"]))).toEqual({
      topic: "grow",
      partitions: 4,
      previous: 3,
      validateOnly: true,
    });
    expectOneErrorLine(await rill(["topic", "add-partitions", "grow", "--count", "2"]), 1, /has 3 partitions; --count must be more/);

    const elected = lines(await ok(["topic", "elect-leaders", "grow"]));
    expect(elected[0]!.split(/\s+/)).toEqual(["TOPIC", "PARTITION", "LEADER", "RESULT"]);
    expect(elected.slice(1).map((l) => l.split(/\s+/))).toEqual([0, 1, 2].map((p) => ["grow", String(p), "1", "ELECTION_NOT_NEEDED"]));
    expect(JSON.parse(await ok(["topic", "elect-leaders", "grow", "--partition", "1", "--json"]))).toEqual([
      { topic: "grow", partition: 1, leader: 1, result: "ELECTION_NOT_NEEDED", error: expect.stringMatching(/grow-1/) },
    ]);

    const described = lines(await ok(["topic", "describe", "grow"]));
    expect(described[0]).toBe("Topic: grow\tPartitions: 3\tReplicationFactor: 1\tConfigs: retention.ms=600000");
    const table = described.slice(described.indexOf("") + 1).map((l) => l.split(/\s+/));
    expect(table[0]).toEqual(["CONFIG", "VALUE", "SOURCE"]);
    expect(table).toContainEqual(["retention.ms", "600000", "dynamic-topic"]);
    expect(table).toContainEqual(["cleanup.policy", "delete", "default"]);
    const json = JSON.parse(await ok(["topic", "describe", "grow", "--json"])) as {
      configs: Record<string, string>;
      allConfigs: { name: string; value: string; source: string }[];
    };
    expect(json.configs).toEqual({ "retention.ms": "600000" });
    expect(json.allConfigs.find((c) => c.name === "segment.bytes")).toMatchObject({ source: "default" });
    expect(json.allConfigs.length).toBe(table.length - 1);
  });

  it("--json on the commands that print a sentence (topic, quota, user, acl)", async () => {
    expect(JSON.parse(await ok(["topic", "create", "js", "--partitions", "2", "--json"]))).toEqual({
      created: true,
      name: "js",
      partitions: 2,
      replicationFactor: 1,
    });
    expect(JSON.parse(await ok(["topic", "create", "js", "--if-not-exists", "--json"]))).toEqual({ created: false, name: "js" });
    expect(JSON.parse(await ok(["topic", "alter", "js", "--config", "retention.ms=1000", "--json"]))).toEqual({
      altered: "js",
      set: { "retention.ms": "1000" },
      deleted: [],
    });
    await ok(["produce", "js", "--partition", "0"], { stdin: "x\ny\n" });
    expect(JSON.parse(await ok(["topic", "delete-records", "js", "--partition", "0", "--offset", "1", "--json"]))).toEqual([
      { topic: "js", partition: 0, lowWatermark: 1 },
    ]);
    expect(JSON.parse(await ok(["quota", "set", "--for-user", "u", "--producer-byte-rate", "1000", "--json"]))).toMatchObject({
      entity: { user: "u" },
      set: { producer_byte_rate: 1000 },
    });
    const pw = path.join(dir, "carol.pw");
    nodeFs.writeFileSync(pw, "carol-secret\n");
    const user = ["user", "add", "carol", "--new-password-file", pw, "--mechanism", "SCRAM-SHA-256", "--json"];
    expect(JSON.parse(await ok(user))).toEqual({ user: "carol", set: ["SCRAM-SHA-256"] });
    expect(JSON.parse(await ok(["user", "remove", "carol", "--json"]))).toEqual({ user: "carol", removed: ["SCRAM-SHA-256"] });
    const acl = ["--allow-principal", "User:carol", "--operation", "read", "--topic", "js", "--json"];
    const binding = {
      principal: "User:carol",
      host: "*",
      resourceType: "TOPIC",
      resourceName: "js",
      operation: "READ",
      permission: "ALLOW",
    };
    expect(JSON.parse(await ok(["acl", "add", ...acl]))).toEqual({ added: [expect.objectContaining(binding)] });
    expect(JSON.parse(await ok(["acl", "remove", ...acl]))).toEqual({ removed: [expect.objectContaining(binding)] });
    expect(JSON.parse(await ok(["topic", "delete", "js", "--json"]))).toEqual({ deleted: "js" });
  });
});

describe("rill itself", () => {
  it("--version prints the package's version", async () => {
    const pkg = JSON.parse(nodeFs.readFileSync("package.json", "utf8")) as { version: string };
    expect(await ok(["--version"])).toBe(`rill ${pkg.version}\n`);
  });

  it("completion bash|zsh: scripts the shells accept, offering subcommands and options", async () => {
    const bash = await ok(["completion", "bash"]);
    const complete = (words: string[]): string[] => {
      const script = `${bash}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _rill; echo "\${COMPREPLY[@]}"`;
      const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      return r.stdout.trim().split(" ");
    };
    expect(complete(["rill", "top"])).toEqual(["topic"]);
    expect(complete(["rill", "topic", ""])).toEqual(expect.arrayContaining(["create", "add-partitions", "elect-leaders", "describe"]));
    // Past an option's value (--bootstrap x) and a topic name: consume's own options.
    expect(complete(["rill", "--bootstrap", "h:1", "consume", "t", "--fo"])).toEqual(["--format", "--format-string"]);
    const zsh = await ok(["completion", "zsh"]);
    expect(zsh.startsWith("#compdef rill\n")).toBe(true);
    const check = spawnSync("zsh", ["-n"], { input: zsh, encoding: "utf8" });
    expect({ status: check.status, stderr: check.stderr }).toEqual({ status: 0, stderr: "" });
    expect((await rill(["completion", "fish"])).code).toBe(2);
  });

  it("profiles: create, list, use and --profile pick the broker, TLS and user; flags and RILL_BOOTSTRAP win", async () => {
    const unreachable = "127.0.0.1:1";
    const noBootstrap = { RILL_BOOTSTRAP: undefined };
    expect(await ok(["profile", "list"], { env: noBootstrap })).toBe("");
    expect(await ok(["profile", "create", "local", "--bootstrap", bootstrap], { env: noBootstrap })).toBe(
      `Saved profile local in ${config} (current).\n`,
    );
    expect((nodeFs.statSync(config).mode & 0o777).toString(8)).toBe("600");
    const pw = path.join(dir, "pw");
    nodeFs.writeFileSync(pw, "secret\n");
    await ok(
      [
        "profile",
        "create",
        "far",
        "--bootstrap",
        unreachable,
        "--tls-server-name",
        "broker.example",
        "--user",
        "bob",
        "--password-file",
        pw,
      ],
      {
        env: noBootstrap,
      },
    );
    expect(await ok(["profile", "list"], { env: noBootstrap })).toBe(`* local\t${bootstrap}\n  far\t${unreachable}\ttls\tuser bob\n`);
    expect(JSON.parse(await ok(["profile", "list", "--json"], { env: noBootstrap }))).toEqual({
      file: config,
      current: "local",
      profiles: { local: { bootstrap }, far: { bootstrap: unreachable, tlsServerName: "broker.example", user: "bob", passwordFile: pw } },
    });
    // The current profile's broker is used without --bootstrap or RILL_BOOTSTRAP.
    expect(lines(await ok(["topic", "list"], { env: noBootstrap }))).toContain("nums");
    // --profile picks another: its broker (not running) is the one named in the error.
    expectOneErrorLine(await rill(["--profile", "far", "topic", "list"], { env: noBootstrap }), 1, /127\.0\.0\.1:1/);
    expect(await ok(["profile", "use", "far"], { env: noBootstrap })).toBe("Using profile far.\n");
    expectOneErrorLine(await rill(["topic", "list"], { env: noBootstrap }), 1, /127\.0\.0\.1:1/);
    // --bootstrap and RILL_BOOTSTRAP win over the profile's broker.
    await ok(["profile", "use", "local"], { env: noBootstrap });
    await ok(["--profile", "local", "topic", "list", "--bootstrap", bootstrap], { env: { RILL_BOOTSTRAP: unreachable } });
    expectOneErrorLine(await rill(["topic", "list"], { env: { RILL_BOOTSTRAP: unreachable } }), 1, /127\.0\.0\.1:1/);
    expectOneErrorLine(await rill(["--profile", "ghost", "topic", "list"]), 1, /no profile "ghost"/);
    expectOneErrorLine(await rill(["profile", "create", "local"]), 1, /"local" exists/);
    expectOneErrorLine(await rill(["profile", "create", "bad name"]), 1, /not a profile name/);
    expect(await ok(["profile", "delete", "far"])).toBe("Deleted profile far.\n");
    expect(Object.keys((JSON.parse(nodeFs.readFileSync(config, "utf8")) as { profiles: object }).profiles)).toEqual(["local"]);
  });
});
