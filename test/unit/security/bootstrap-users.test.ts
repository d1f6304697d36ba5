import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { bootstrapUserRecords, parseBootstrapUsers } from "../../../src/security/bootstrap-users.ts";
import { verifyPassword } from "../../../src/security/scram.ts";

function failure(text: string): string {
  try {
    parseBootstrapUsers(text, "/etc/rill/users");
  } catch (e) {
    if (e instanceof RillError) return `${e.kind.name}: ${e.message}`;
    throw e;
  }
  return "parsed";
}

describe("auth.bootstrap.users.file", () => {
  it("reads name:password lines, skipping blanks and comments; the password may hold ':' and spaces", () => {
    const users = parseBootstrapUsers("# admins\nadmin:s3cret\r\n\n  \nsvc-orders:pa:ss word\n", "f");
    expect(users).toEqual([
      { name: "admin", password: "s3cret" },
      { name: "svc-orders", password: "pa:ss word" },
    ]);
    expect(parseBootstrapUsers("", "f")).toEqual([]);
  });

  it("names the line of a bad entry with INVALID_CONFIG, never echoing its password", () => {
    const cases: [string, RegExp][] = [
      ["ok:pw\nno-colon-here-pw123\n", /line 2: not of the form name:password/],
      ["ok:pw\n:hunter2\n", /line 2: the user name is empty/],
      ["ok:pw\n# c\nuser:\n", /line 3: password is empty/],
      [" alice:hunter2\n", /line 1: the user name has leading or trailing spaces/],
      ["*:hunter2\n", /line 1: the user name '\*' is the wildcard/],
      ["a:hunter2\nb:x\na:hunter3\n", /line 3: user "a" is already on line 1/],
    ];
    for (const [text, message] of cases) {
      const err = failure(text);
      expect(err, text).toMatch(/^INVALID_CONFIG: auth\.bootstrap\.users\.file: \/etc\/rill\/users line \d+: /);
      expect(err, text).toMatch(message);
      expect(err, text).not.toMatch(/hunter|pw123/);
    }
  });

  it("turns each user into a SCRAM-SHA-256 and a SCRAM-SHA-512 credential, each with its own salt", () => {
    let n = 0;
    const records = bootstrapUserRecords([{ name: "admin", password: "s3cret" }], () => Buffer.from(`salt-${n++}`));
    expect(records.map((r) => [r.type, r.name, r.credential.mechanism, r.credential.iterations])).toEqual([
      ["scram-credential", "admin", "SCRAM-SHA-256", 4096],
      ["scram-credential", "admin", "SCRAM-SHA-512", 4096],
    ]);
    expect(records[0]!.credential.salt).not.toBe(records[1]!.credential.salt);
    for (const r of records) expect(verifyPassword(r.credential, "s3cret")).toBe(true);
    expect(JSON.stringify(records)).not.toContain("s3cret");
  });
});
