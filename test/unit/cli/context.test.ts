/**
 * The CLI's security flags (src/cli/context.ts): `--tls-*` into the SDK's `tls` option, and the
 * user and password from `--user`/RILL_USER and `--password-file`/RILL_PASSWORD, with one clear
 * error for each half-given pair.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientOptions, credentialsOf, tlsOf } from "../../../src/cli/context.ts";
import { CliError } from "../../../src/cli/output.ts";

let dir: string;
beforeAll(() => {
  dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-cli-ctx-"));
});
afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

describe("tlsOf", () => {
  it("is undefined without --tls-* flags, and passes the files and server name otherwise", () => {
    expect(tlsOf({})).toBeUndefined();
    expect(tlsOf({ tlsCa: "/ca.pem" })).toEqual({ ca: "/ca.pem", cert: undefined, key: undefined, serverName: undefined });
    expect(tlsOf({ tlsCert: "/c", tlsKey: "/k", tlsServerName: "broker-1" })).toMatchObject({
      cert: "/c",
      key: "/k",
      serverName: "broker-1",
    });
  });

  it("refuses --tls-cert without --tls-key and the reverse", () => {
    expect(() => tlsOf({ tlsCert: "/c" })).toThrow(new CliError("--tls-cert and --tls-key go together"));
    expect(() => tlsOf({ tlsKey: "/k" })).toThrow(CliError);
  });
});

describe("credentialsOf", () => {
  it("reads the first line of --password-file, or RILL_PASSWORD; the user from --user or RILL_USER", () => {
    const file = path.join(dir, "pw");
    nodeFs.writeFileSync(file, "s3cret pass\nignored\n");
    expect(credentialsOf({ user: "alice", passwordFile: file }, {})).toEqual({ user: "alice", password: "s3cret pass" });
    expect(credentialsOf({ passwordFile: file }, { RILL_USER: "bob", RILL_PASSWORD: "other" })).toEqual({
      user: "bob",
      password: "s3cret pass",
    });
    expect(credentialsOf({}, { RILL_USER: "bob", RILL_PASSWORD: "envpw" })).toEqual({ user: "bob", password: "envpw" });
    expect(credentialsOf({ user: "carol" }, { RILL_USER: "bob", RILL_PASSWORD: "envpw" })).toEqual({ user: "carol", password: "envpw" });
    expect(credentialsOf({}, {})).toBeUndefined();
  });

  it("refuses half a pair and an unreadable or empty password file", () => {
    expect(() => credentialsOf({ user: "alice" }, {})).toThrow(/^--user alice needs a password: give --password-file or RILL_PASSWORD$/);
    expect(() => credentialsOf({}, { RILL_PASSWORD: "pw" })).toThrow(/^a password needs a user/);
    expect(() => credentialsOf({ user: "a", passwordFile: path.join(dir, "none") }, {})).toThrow(/^--password-file: cannot read .*none/);
    const empty = path.join(dir, "empty");
    nodeFs.writeFileSync(empty, "\nsecond line\n");
    expect(() => credentialsOf({ user: "a", passwordFile: empty }, {})).toThrow(
      /^--password-file: .* holds no password on its first line$/,
    );
  });

  it("reach the client options", () => {
    const io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: {} };
    const o = clientOptions({ io, bootstrap: "localhost:1", tls: { ca: "/ca" }, credentials: { user: "u", password: "p" } });
    expect(o).toMatchObject({ bootstrap: "localhost:1", tls: { ca: "/ca" }, credentials: { user: "u", password: "p" } });
  });
});
