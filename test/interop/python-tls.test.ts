/**
 * Interop over TLS: the Python client of python.test.ts (stubs generated from proto/ at test time,
 * Debian's python3-grpcio) runs its whole script — create topics, produce, fetch, list offsets,
 * a bad-input status — against brokers whose client listener serves TLS, with certificates made
 * by /usr/bin/openssl in a temporary folder:
 * - TLS with Basic call credentials (`grpc.ssl_channel_credentials` + `metadata_call_credentials`),
 *   against `tls.client.auth=none`;
 * - mutual TLS with a client certificate, against `tls.client.auth=require`;
 * - plaintext against the TLS listener, and TLS without a client certificate against `require`:
 *   both fail to connect.
 * The client connects to 127.0.0.1 and names the server `localhost` (grpc.ssl_target_name_override).
 *
 * Missing protoc, plugin or Python packages FAIL the suite (never skip): run
 * scripts/install-test-deps.sh.
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import type { BrokerConfig } from "../../src/config/schema.ts";
import { type CertFiles, TestPki } from "../fixtures/test-pki.ts";
import { rmTmp, tmpDir } from "../integration/rpc-helpers.ts";
import { type RunResult, clientReportOf, expectFullTlsRun, prepareStubs, runPythonClient } from "./python-env.ts";

const PYTHON_TIMEOUT_MS = 60_000;

let dir: string;
let genDir: string;
let ca: CertFiles;
let server: CertFiles;
let client: CertFiles;
const brokers: Broker[] = [];
let setupError: Error | undefined;

beforeAll(async () => {
  try {
    dir = tmpDir("rill-pytls-");
    genDir = path.join(dir, "gen");
    await prepareStubs(genDir);
    const pki = new TestPki(path.join(dir, "pki"));
    ca = pki.ca("py-ca");
    server = pki.leaf(ca, { cn: "localhost", san: "DNS:localhost", serial: 501 });
    client = pki.leaf(ca, { cn: "python-app", serial: 502 });
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
}, 120_000);

afterAll(async () => {
  for (const b of brokers) await b.close();
  if (dir) rmTmp(dir);
});

async function startBroker(config: Partial<BrokerConfig>): Promise<string> {
  const b = await Broker.start({ dataDir: tmpDir("rill-pytls-data-"), listen: "127.0.0.1:0", shutdownGraceMs: 1000, config });
  brokers.push(b);
  return b.address;
}

function python(address: string, flags: string[]): Promise<RunResult> {
  if (setupError) throw setupError;
  return runPythonClient(address, genDir, flags, PYTHON_TIMEOUT_MS);
}

describe("interop: a Python client generated from proto/, over TLS", () => {
  it("with Basic call credentials produces and fetches through a TLS listener; in plaintext it cannot connect", async () => {
    if (setupError) throw setupError;
    const address = await startBroker({ tlsCertFile: server.cert, tlsKeyFile: server.key });
    const report = clientReportOf(
      await python(address, ["--tls-ca", ca.cert, "--server-name", "localhost", "--basic", "alice:alice-secret"]),
    );
    expectFullTlsRun(report);
    expect(report.client_cert).toBe(false);
    const plaintext = await python(address, []);
    expect(plaintext.code).toBe(1);
    expect(plaintext.stderr).toMatch(/python_client: FAILED at connect: could not connect/);
  });

  it("with a client certificate produces and fetches through tls.client.auth=require; without one it cannot connect", async () => {
    if (setupError) throw setupError;
    const address = await startBroker({ tlsCertFile: server.cert, tlsKeyFile: server.key, tlsCaFile: ca.cert, tlsClientAuth: "require" });
    const report = clientReportOf(
      await python(address, ["--tls-ca", ca.cert, "--tls-cert", client.cert, "--tls-key", client.key, "--server-name", "localhost"]),
    );
    expectFullTlsRun(report);
    expect(report.client_cert).toBe(true);
    const noCert = await python(address, ["--tls-ca", ca.cert, "--server-name", "localhost"]);
    expect(noCert.code).toBe(1);
    expect(noCert.stderr).toMatch(/python_client: FAILED at connect: could not connect/);
  });
});
