/**
 * Interop with authentication and ACLs: the Python client of python.test.ts (stubs generated from
 * proto/ at test time, Debian's python3-grpcio) over TLS, against brokers with
 * authorizer.enable=true and super.users=User:admin, certificates made by /usr/bin/openssl in a
 * temporary folder:
 * - auth.methods=password, users from auth.bootstrap.users.file, Basic call credentials: the user
 *   the admin gave ALL on every topic runs the whole script (create, produce, fetch, list offsets,
 *   bad input); the same user with a wrong password is refused with UNAUTHENTICATED before any
 *   step succeeds;
 * - auth.methods=mtls, tls.client.auth=require: the principal is User:<CN> of the client
 *   certificate. ACLs allow User:python-app ALL on every topic and User:other-app only CREATE and
 *   DESCRIBE: a client with the python-app certificate runs the whole script, one with the
 *   other-app certificate (same CA) creates the topics and is refused at its first Produce with
 *   PERMISSION_DENIED / TOPIC_AUTHORIZATION_FAILED.
 * The client connects to 127.0.0.1 and names the server `localhost` (grpc.ssl_target_name_override).
 *
 * Missing protoc, plugin or Python packages FAIL the suite (never skip): run
 * scripts/install-test-deps.sh.
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import type { ClientCredentials, ClientTlsOptions } from "../../src/client/channel-security.ts";
import type { BrokerConfig } from "../../src/config/schema.ts";
import { type CertFiles, TestPki } from "../fixtures/test-pki.ts";
import { rmTmp, tmpDir } from "../integration/rpc-helpers.ts";
import { type RunResult, clientReportOf, expectFullTlsRun, prepareStubs, runPythonClient } from "./python-env.ts";

const PYTHON_TIMEOUT_MS = 60_000;

let dir: string;
let genDir: string;
let usersFile: string;
let ca: CertFiles;
let server: CertFiles;
let adminCert: CertFiles;
let pythonApp: CertFiles;
let otherApp: CertFiles;
const brokers: Broker[] = [];
const admins: Admin[] = [];
let setupError: Error | undefined;

beforeAll(async () => {
  try {
    dir = tmpDir("rill-pysec-");
    genDir = path.join(dir, "gen");
    await prepareStubs(genDir);
    const pki = new TestPki(path.join(dir, "pki"));
    ca = pki.ca("pysec-ca");
    server = pki.leaf(ca, { cn: "localhost", san: "DNS:localhost", serial: 601 });
    adminCert = pki.leaf(ca, { cn: "admin", serial: 602 });
    pythonApp = pki.leaf(ca, { cn: "python-app", serial: 603 });
    otherApp = pki.leaf(ca, { cn: "other-app", serial: 604 });
    usersFile = path.join(dir, "users");
    nodeFs.writeFileSync(usersFile, "admin:adm1n-secret\npy:py-s3cret\n", { mode: 0o600 });
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
}, 120_000);

afterAll(async () => {
  for (const a of admins) await a.close();
  for (const b of brokers) await b.close();
  if (dir) rmTmp(dir);
});

const SECURED: Partial<BrokerConfig> = { authorizerEnable: true, superUsers: "User:admin" };

async function startBroker(config: Partial<BrokerConfig>): Promise<string> {
  const b = await Broker.start({ dataDir: tmpDir("rill-pysec-data-"), listen: "127.0.0.1:0", shutdownGraceMs: 1000, config });
  brokers.push(b);
  return b.address;
}

/** The super user's Admin over TLS (as `credentials`, or by its certificate when none). */
function adminOf(address: string, credentials?: ClientCredentials): Admin {
  const tls: ClientTlsOptions = credentials
    ? { ca: ca.cert, serverName: "localhost" }
    : { ca: ca.cert, cert: adminCert.cert, key: adminCert.key, serverName: "localhost" };
  const a = new Admin({ bootstrap: address, tls, credentials, retry: { retries: 2 } });
  admins.push(a);
  return a;
}

/** ALLOW `principal` each of `operations` on every topic. */
async function allowOnEveryTopic(admin: Admin, principal: string, operations: readonly string[]): Promise<void> {
  await admin.createAcls(
    operations.map((operation) => ({
      principal,
      host: "*",
      resourceType: "TOPIC",
      resourceName: "*",
      patternType: "LITERAL",
      operation,
      permission: "ALLOW",
    })) as Parameters<Admin["createAcls"]>[0],
  );
}

function python(address: string, flags: string[]): Promise<RunResult> {
  if (setupError) throw setupError;
  return runPythonClient(address, genDir, flags, PYTHON_TIMEOUT_MS);
}

const TLS_FLAGS = () => ["--tls-ca", ca.cert, "--server-name", "localhost"];

describe("interop: a Python client generated from proto/, with authentication and ACLs over TLS", () => {
  it("Basic credentials of a user allowed on every topic: the whole script passes; a wrong password is UNAUTHENTICATED", async () => {
    if (setupError) throw setupError;
    const address = await startBroker({
      ...SECURED,
      tlsCertFile: server.cert,
      tlsKeyFile: server.key,
      authMethods: ["password"],
      authBootstrapUsersFile: usersFile,
    });
    await allowOnEveryTopic(adminOf(address, { user: "admin", password: "adm1n-secret" }), "User:py", ["ALL"]);

    const wrong = await python(address, [...TLS_FLAGS(), "--basic", "py:not-the-password"]);
    expect(wrong.code, wrong.stderr).toBe(1);
    expect(wrong.stderr).toMatch(/^python_client: FAILED at CreateTopics: RPC error UNAUTHENTICATED: /m);
    expect(wrong.stderr).toContain("key='rill-error-name', value='SASL_AUTHENTICATION_FAILED'");
    const unknownUser = await python(address, [...TLS_FLAGS(), "--basic", "nobody:py-s3cret"]);
    // The same answer for an unknown user as for a wrong password.
    const withoutDate = (stderr: string) => stderr.replace(/, _Metadatum\(key='date', value='[^']*'\)/, "");
    expect(withoutDate(unknownUser.stderr)).toBe(withoutDate(wrong.stderr));
    expect(withoutDate(wrong.stderr)).not.toContain("'date'");

    const report = clientReportOf(await python(address, [...TLS_FLAGS(), "--basic", "py:py-s3cret"]));
    expectFullTlsRun(report);
    expect(report.client_cert).toBe(false);
  });

  it("mutual TLS: the principal is User:<CN>; the CN with WRITE runs the whole script, another CN is refused at Produce", async () => {
    if (setupError) throw setupError;
    const mtls: Partial<BrokerConfig> = {
      ...SECURED,
      tlsCertFile: server.cert,
      tlsKeyFile: server.key,
      tlsCaFile: ca.cert,
      tlsClientAuth: "require",
      authMethods: ["mtls"],
    };
    const certFlags = (c: CertFiles) => [...TLS_FLAGS(), "--tls-cert", c.cert, "--tls-key", c.key];
    const grant = async (address: string): Promise<void> => {
      const admin = adminOf(address); // User:admin by its certificate's CN
      await allowOnEveryTopic(admin, "User:python-app", ["ALL"]);
      await allowOnEveryTopic(admin, "User:other-app", ["CREATE", "DESCRIBE"]);
    };
    // One broker per run: each run creates the script's topics.
    const first = await startBroker(mtls);
    await grant(first);
    const report = clientReportOf(await python(first, certFlags(pythonApp)));
    expectFullTlsRun(report);
    expect(report.client_cert).toBe(true);

    const second = await startBroker(mtls);
    await grant(second);
    const refused = await python(second, certFlags(otherApp));
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/^python_client: FAILED at Produce records: RPC error PERMISSION_DENIED: /m);
    expect(refused.stderr).toContain("User:other-app");
    expect(refused.stderr).toContain("key='rill-error-name', value='TOPIC_AUTHORIZATION_FAILED'");
    // It got as far as creating the topics (CREATE and DESCRIBE are its), and wrote nothing.
    const [orders] = await adminOf(second).describeTopics(["orders"]);
    expect(orders!.partitions.map((p) => p.highWatermark)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
