/**
 * `rill acl` and `rill user` against a real broker on 127.0.0.1 (the CLI run in-process with its
 * own streams, plus one run of bin/rill): kafka-acls-style flags, the one-line errors of bad
 * input, and a password that only ever travels on stdin or in a file.
 */
import { spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import type { Io } from "../../src/cli/output.ts";
import type { MetadataImage } from "../../src/metadata/image.ts";
import { run } from "../../src/cli/program.ts";
import { verifyPassword } from "../../src/security/scram.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let broker: Broker;

async function rill(args: string[], stdinText = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const stdin = new PassThrough();
  stdin.end(stdinText);
  const io: Io = { stdout, stderr, stdin, env: {} };
  const outcome = await run(["node", "rill", "--bootstrap", broker.address, ...args], io);
  return { code: outcome.exitCode, stdout: out, stderr: err };
}

/**
 * A credential as the broker's metadata image holds it (read from the broker's private parts:
 * checking a password over the wire is the authentication layer's job, tested there).
 */
function credential(user: string, mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512") {
  const parts = (broker as unknown as { parts: { meta: { store: { image: MetadataImage } } } }).parts;
  return parts.meta.store.image.scramCredential(user, mechanism);
}

beforeAll(async () => {
  dir = tmpDir("rill-cli-sec-");
  broker = await Broker.start({ dataDir: path.join(dir, "data"), listen: "127.0.0.1:0" });
});

afterAll(async () => {
  await broker.close().catch(() => {});
  rmTmp(dir);
});

describe("rill acl", () => {
  it("adds every principal × operation × resource, lists and removes them", async () => {
    const add = await rill([
      "acl",
      "add",
      "--allow-principal",
      "User:alice",
      "--allow-principal",
      "User:bob",
      "--operation",
      "read",
      "--operation",
      "describe",
      "--topic",
      "orders",
    ]);
    expect(add).toMatchObject({ code: 0, stderr: "" });
    expect(add.stdout.split("\n").filter(Boolean)).toHaveLength(4);
    expect(add.stdout).toContain("Added ACL: ALLOW User:alice READ TOPIC:orders from *\n");
    const deny = await rill([
      "acl",
      "add",
      "--deny-principal",
      "User:*",
      "--operation",
      "WRITE",
      "--topic",
      "audit-",
      "--resource-pattern-type",
      "prefixed",
      "--host",
      "10.0.0.7",
    ]);
    expect(deny.stdout).toBe("Added ACL: DENY User:* WRITE TOPIC:audit-* from 10.0.0.7\n");
    const cluster = await rill(["acl", "add", "--principal", "User:ops", "--permission", "allow", "--operation", "alter", "--cluster"]);
    expect(cluster.stdout).toBe("Added ACL: ALLOW User:ops ALTER CLUSTER:kafka-cluster from *\n");

    const all = await rill(["acl", "list"]);
    expect(all.stdout.split("\n").filter(Boolean)).toHaveLength(6);
    const match = await rill(["acl", "list", "--topic", "audit-2026", "--resource-pattern-type", "match"]);
    expect(match.stdout).toBe("DENY User:* WRITE TOPIC:audit-* from 10.0.0.7\n");
    const bob = JSON.parse((await rill(["acl", "list", "--principal", "User:bob", "--json"])).stdout) as unknown[];
    expect(bob).toHaveLength(2);

    const removed = await rill(["acl", "remove", "--allow-principal", "User:bob", "--topic", "orders"]);
    expect(removed.stdout.split("\n").filter(Boolean)).toEqual([
      "Removed ACL: ALLOW User:bob READ TOPIC:orders from *",
      "Removed ACL: ALLOW User:bob DESCRIBE TOPIC:orders from *",
    ]);
    expect((await rill(["acl", "list", "--topic", "orders"])).stdout.split("\n").filter(Boolean)).toHaveLength(2);
    expect((await rill(["acl", "remove", "--principal", "User:nobody", "--topic", "orders"])).stdout).toBe("No ACL matched.\n");
  });

  it("refuses bad input with one line, and stores nothing", async () => {
    const before = (await rill(["acl", "list"])).stdout;
    const cases: [string[], RegExp][] = [
      [
        ["acl", "add", "--allow-principal", "alice", "--operation", "read", "--topic", "t"],
        /principal "alice" is not of the form User:<name>/,
      ],
      [["acl", "add", "--allow-principal", "User:a", "--operation", "fly", "--topic", "t"], /--operation.*expected one of READ/],
      [["acl", "add", "--allow-principal", "User:a", "--operation", "write", "--group", "g"], /WRITE does not apply to GROUP/],
      [["acl", "add", "--allow-principal", "User:a", "--operation", "read"], /give a resource/],
      [["acl", "add", "--allow-principal", "User:a", "--operation", "read", "--topic", "t", "--host", "example.com"], /not an IP address/],
      [["acl", "remove", "--principal", "User:a"], /give a resource/],
    ];
    for (const [args, message] of cases) {
      const r = await rill(args);
      expect(r.code, args.join(" ")).toBeGreaterThan(0);
      const lines = r.stderr.split("\n").filter(Boolean);
      expect(lines, args.join(" ")).toHaveLength(1);
      expect(lines[0]).toMatch(/^rill: /);
      expect(lines[0]).toMatch(message);
    }
    expect((await rill(["acl", "list"])).stdout).toBe(before);
  });
});

describe("rill user", () => {
  it("adds a user from stdin or a file, lists it without secrets, and removes it", async () => {
    const add = await rill(["user", "add", "alice"], "s3cret-from-stdin\nignored\n");
    expect(add).toMatchObject({ code: 0, stdout: "Set SCRAM-SHA-256 and SCRAM-SHA-512 credentials of user alice.\n" });
    expect(verifyPassword(credential("alice", "SCRAM-SHA-512")!, "s3cret-from-stdin")).toBe(true);
    const file = path.join(dir, "pw");
    nodeFs.writeFileSync(file, "fr0m-a-file\n");
    const fromFile = await rill([
      "user",
      "add",
      "bob",
      "--mechanism",
      "scram-sha-256",
      "--iterations",
      "8192",
      "--new-password-file",
      file,
    ]);
    expect(fromFile.stdout).toBe("Set SCRAM-SHA-256 credentials of user bob.\n");
    expect(verifyPassword(credential("bob", "SCRAM-SHA-256")!, "fr0m-a-file")).toBe(true);

    const list = await rill(["user", "list"]);
    expect(list.stdout).toBe(
      "alice\tSCRAM-SHA-256 (4096 iterations), SCRAM-SHA-512 (4096 iterations)\nbob\tSCRAM-SHA-256 (8192 iterations)\n",
    );
    expect(await rill(["user", "list", "--json"]).then((r) => r.stdout)).not.toMatch(/salt|Key|s3cret/);

    expect((await rill(["user", "remove", "alice"])).stdout).toBe("Removed SCRAM-SHA-256 and SCRAM-SHA-512 credentials of user alice.\n");
    expect((await rill(["user", "list"])).stdout).toBe("bob\tSCRAM-SHA-256 (8192 iterations)\n");
  });

  it("refuses bad input with one line: empty password, bad name, unknown user, unknown mechanism, --password on the command line", async () => {
    const cases: [string[], string, RegExp][] = [
      [["user", "add", "carol"], "", /the password is empty/],
      [["user", "add", "a:b"], "pw\n", /user name "a:b": has a ':'/],
      [["user", "remove", "nobody"], "", /users: "nobody" has no SCRAM credential/],
      [["user", "add", "x", "--mechanism", "SCRAM-SHA-1"], "pw\n", /expected one of SCRAM-SHA-256, SCRAM-SHA-512/],
      [["user", "add", "x", "--password", "pw"], "", /unknown option '--password'/],
      [["user", "add", "x", "--iterations", "100"], "pw\n", /--iterations.*4096, 16384/],
    ];
    for (const [args, stdin, message] of cases) {
      const r = await rill(args, stdin);
      expect(r.code, args.join(" ")).toBeGreaterThan(0);
      const lines = r.stderr.split("\n").filter(Boolean);
      expect(lines, args.join(" ")).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
    expect((await rill(["user", "list"])).stdout).toBe("bob\tSCRAM-SHA-256 (8192 iterations)\n");
  });

  it("works through bin/rill, the password piped on stdin", async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const env: NodeJS.ProcessEnv = { ...process.env, RILL_BOOTSTRAP: broker.address };
      delete env["RILL_RUNTIME"];
      const proc = spawn(path.resolve("bin/rill"), ["user", "add", "piped"], { env, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
      proc.on("error", reject);
      proc.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      proc.stdin.end("p1ped-pw\n");
    });
    expect(r).toEqual({ code: 0, stdout: "Set SCRAM-SHA-256 and SCRAM-SHA-512 credentials of user piped.\n", stderr: "" });
    expect(verifyPassword(credential("piped", "SCRAM-SHA-256")!, "p1ped-pw")).toBe(true);
  });
});
