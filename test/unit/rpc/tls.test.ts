/**
 * src/rpc/tls.ts and src/protocol/pem-watcher.ts with certificates made by /usr/bin/openssl:
 * the cross-key rules of `tls.*` and `internal.tls.*`; unusable files refused with INVALID_CONFIG
 * naming the key; internal mutual TLS between a real grpc-js server and channel on 127.0.0.1
 * (a peer without a certificate of the cluster CA is refused, a member is served and seen by its
 * certificate); the watcher taking a changed set only when it is complete.
 */
import { X509Certificate } from "node:crypto";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerConfig, defaultBrokerConfig, parseBrokerConfig, validateBrokerConfig } from "../../../src/config/schema.ts";
import { PemWatcher } from "../../../src/protocol/pem-watcher.ts";
import {
  BrokerTls,
  channelCredentials,
  internalChannelCredentials,
  internalServerCredentials,
  serverCredentials,
} from "../../../src/rpc/tls.ts";
import { type CertFiles, TestPki, rotate } from "../../fixtures/test-pki.ts";

let dir: string;
let pki: TestPki;
let ca: CertFiles;
let otherCa: CertFiles;
let node1: CertFiles;
let node2: CertFiles;
let outsider: CertFiles;

beforeAll(() => {
  dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-tls-unit-"));
  pki = new TestPki(dir);
  ca = pki.ca("cluster-ca");
  otherCa = pki.ca("other-ca");
  node1 = pki.leaf(ca, { cn: "node-1", san: "DNS:localhost", serial: 11 });
  node2 = pki.leaf(ca, { cn: "node-2", san: "DNS:localhost", serial: 12 });
  outsider = pki.leaf(otherCa, { cn: "outsider", san: "DNS:localhost", serial: 13 });
});

afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

const config = (raw: Record<string, string>): BrokerConfig => parseBrokerConfig(raw, defaultBrokerConfig);
const invalid = (fn: () => unknown, message: RegExp): void => {
  expect(fn).toThrow(
    expect.objectContaining({ kind: expect.objectContaining({ name: "INVALID_CONFIG" }), message: expect.stringMatching(message) }),
  );
};

describe("tls.* and internal.tls.* keys", () => {
  it("default to plaintext", () => {
    expect(defaultBrokerConfig).toMatchObject({
      tlsCertFile: "",
      tlsKeyFile: "",
      tlsCaFile: "",
      tlsClientAuth: "none",
      internalTlsCaFile: "",
    });
    expect(() => validateBrokerConfig(config({}))).not.toThrow();
  });

  it("refuse a bad tls.client.auth value, naming the key", () => {
    invalid(() => config({ "tls.client.auth": "always" }), /^tls\.client\.auth: must be one of none, request, require/);
  });

  it("go together: each missing partner is named", () => {
    invalid(() => validateBrokerConfig(config({ "tls.cert.file": "/c" })), /^tls\.key\.file: must be set with tls\.cert\.file/);
    invalid(() => validateBrokerConfig(config({ "tls.key.file": "/k" })), /^tls\.cert\.file: must be set with tls\.key\.file/);
    invalid(
      () => validateBrokerConfig(config({ "tls.cert.file": "/c", "tls.key.file": "/k", "tls.client.auth": "require" })),
      /^tls\.client\.auth: require needs tls\.ca\.file/,
    );
    invalid(
      () => validateBrokerConfig(config({ "tls.client.auth": "request", "tls.ca.file": "/ca" })),
      /^tls\.client\.auth: request needs TLS/,
    );
    invalid(
      () => validateBrokerConfig(config({ "internal.tls.cert.file": "/c", "internal.tls.key.file": "/k" })),
      /^internal\.tls\.ca\.file: internal mutual TLS needs all of/,
    );
    expect(() =>
      validateBrokerConfig(config({ "tls.cert.file": "/c", "tls.key.file": "/k", "tls.ca.file": "/ca", "tls.client.auth": "require" })),
    ).not.toThrow();
  });

  it("name the key of an unusable file when the broker loads them", () => {
    const missing = path.join(dir, "nope.pem");
    const load = (raw: Record<string, string>) => () => new BrokerTls(config(raw)).load();
    invalid(load({ "tls.cert.file": missing, "tls.key.file": node1.key }), /^tls\.cert\.file: cannot read .*nope\.pem/);
    invalid(load({ "tls.cert.file": node1.key, "tls.key.file": node1.key }), /^tls\.cert\.file: not a PEM certificate/);
    invalid(load({ "tls.cert.file": node1.cert, "tls.key.file": node1.cert }), /^tls\.key\.file: not a PEM private key/);
    invalid(
      load({ "tls.cert.file": node1.cert, "tls.key.file": node2.key }),
      /^tls\.key\.file: the private key .* does not match the certificate of tls\.cert\.file/,
    );
    invalid(
      load({ "tls.cert.file": node1.cert, "tls.key.file": node1.key, "tls.ca.file": node1.key, "tls.client.auth": "require" }),
      /^tls\.ca\.file: not a PEM certificate/,
    );
    invalid(
      load({ "internal.tls.cert.file": node1.cert, "internal.tls.key.file": node1.key, "internal.tls.ca.file": missing }),
      /^internal\.tls\.ca\.file: cannot read/,
    );
    expect(() => new BrokerTls(config({ "tls.cert.file": node1.cert, "tls.key.file": node1.key })).load()).not.toThrow();
  });
});

// A one-method service answering the CN of the caller's verified certificate ("" without one).
const id = (b: Buffer): Buffer => b;
const WHO = {
  who: {
    path: "/test.Who/Who",
    requestStream: false,
    responseStream: false,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  },
} as const;
const WhoClient = grpc.makeGenericClientConstructor(WHO, "Who");

async function serve(credentials: grpc.ServerCredentials): Promise<{ port: number; close: () => void }> {
  const server = new grpc.Server();
  server.addService(WHO, {
    who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const cn = call.getAuthContext().sslPeerCertificate?.subject?.CN ?? "";
      cb(null, Buffer.from(String(cn)));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { port, close: () => server.forceShutdown() };
}

/** "ok:<CN the server saw>" or the failure's details. */
function who(port: number, credentials: grpc.ChannelCredentials): Promise<string> {
  const c = new WhoClient(`127.0.0.1:${port}`, credentials, { "grpc.ssl_target_name_override": "localhost" }) as unknown as grpc.Client & {
    who(req: Buffer, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void;
  };
  return new Promise((resolve) => {
    c.who(Buffer.alloc(0), { deadline: Date.now() + 5_000 }, (e, r) => {
      c.close();
      resolve(e ? `${grpc.status[e.code]}: ${e.details}` : `ok:${r!.toString()}`);
    });
  });
}

const internalCfg = (node: CertFiles, caFiles: CertFiles = ca) =>
  config({ "internal.tls.cert.file": node.cert, "internal.tls.key.file": node.key, "internal.tls.ca.file": caFiles.cert });

describe("internal mutual TLS", () => {
  it("serves a member of the cluster CA and sees its certificate; refuses a peer without one, of another CA, or in plaintext", async () => {
    const s = await serve(internalServerCredentials(internalCfg(node1)));
    try {
      expect(await who(s.port, internalChannelCredentials(internalCfg(node2)))).toBe("ok:node-2");
      expect(await who(s.port, channelCredentials({ caFile: ca.cert }))).toMatch(/^UNAVAILABLE: .*certificate required/);
      expect(await who(s.port, internalChannelCredentials(internalCfg(outsider, otherCa)))).toMatch(/^UNAVAILABLE/);
      expect(await who(s.port, channelCredentials({ caFile: ca.cert, certFile: outsider.cert, keyFile: outsider.key }))).toMatch(
        /^UNAVAILABLE/,
      );
      expect(await who(s.port, grpc.credentials.createInsecure())).toMatch(/^UNAVAILABLE/);
    } finally {
      s.close();
    }
  });

  it("is plaintext on both sides when internal.tls.* is not set", async () => {
    const s = await serve(internalServerCredentials(config({})));
    try {
      expect(await who(s.port, internalChannelCredentials(config({})))).toBe("ok:");
    } finally {
      s.close();
    }
  });

  it("a client listener with clientAuth request serves callers with and without a certificate, knowing only verified ones", async () => {
    const s = await serve(serverCredentials({ certFile: node1.cert, keyFile: node1.key, caFile: ca.cert }, "request"));
    try {
      expect(await who(s.port, channelCredentials({ caFile: ca.cert }))).toBe("ok:");
      expect(await who(s.port, channelCredentials({ caFile: ca.cert, certFile: node2.cert, keyFile: node2.key }))).toBe("ok:node-2");
      // Another CA's certificate is not refused under `request`, but the caller is not known by it.
      expect(await who(s.port, channelCredentials({ caFile: ca.cert, certFile: outsider.cert, keyFile: outsider.key }))).toBe("ok:");
    } finally {
      s.close();
    }
  });
});

describe("PemWatcher", () => {
  it("takes a changed set only once the certificate and key match again, and tells its listeners", async () => {
    const live = { cert: path.join(dir, "w.pem"), key: path.join(dir, "w.key") };
    rotate(live, node1);
    const errors: string[] = [];
    let reloads = 0;
    const w = new PemWatcher({
      cert: { file: live.cert },
      key: { file: live.key },
      ca: { file: ca.cert },
      names: { cert: "tls.cert.file", key: "tls.key.file" },
      onError: (e) => errors.push(e.message),
      onReload: () => reloads++,
    });
    const seen: string[] = [];
    w.addIdentityCertificateListener((u) => seen.push(u === null ? "none" : new X509Certificate(u.certificate).serialNumber));
    await new Promise((r) => process.nextTick(r));
    expect(seen).toEqual(["0B"]);
    expect(w.refresh()).toBe(false); // nothing changed

    nodeFs.copyFileSync(node2.cert, live.cert); // the key is still node-1's
    expect(w.refresh()).toBe(false);
    expect(errors).toEqual([expect.stringMatching(/^tls\.key\.file: the private key .* does not match/)]);
    expect(w.certificate?.serialNumber).toBe("0B");
    expect(w.refresh()).toBe(false);
    expect(errors).toHaveLength(1); // the same failure is told once

    nodeFs.copyFileSync(node2.key, live.key);
    expect(w.refresh()).toBe(true);
    expect(seen).toEqual(["0B", "0C"]);
    expect(w.certificate?.serialNumber).toBe("0C");
    expect(reloads).toBe(1);

    nodeFs.rmSync(live.cert);
    expect(w.refresh()).toBe(false);
    expect(errors[1]).toMatch(/^tls\.cert\.file: cannot read/);
    expect(w.certificate?.serialNumber).toBe("0C");
  });

  it("refuses a certificate without its key, naming the missing one", () => {
    invalid(() => new PemWatcher({ cert: { file: node1.cert }, names: { key: "tls.key" } }), /^tls\.key: must be set with cert/);
  });
});
