import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { configFromEnv, readConfigFile, resolveConfig } from "../../../src/broker/run.ts";

const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-cfg-"));
afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  nodeFs.writeFileSync(p, text);
  return p;
}

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).kind.name).toBe("INVALID_CONFIG");
    return (e as Error).message;
  }
  throw new Error("expected INVALID_CONFIG");
}

describe("broker configuration layers", () => {
  it("defaults < file < environment < flags", () => {
    const props = file(
      "server.properties",
      "# comment\ndata.dir = /from/file\nlisten=127.0.0.1:7000\nlog.tail.cache.bytes=1024\nnum.partitions=3\n",
    );
    const cfg = resolveConfig({
      configFile: props,
      env: { RILL_LISTEN: "127.0.0.1:7001", RILL_NUM_PARTITIONS: "5" },
      listen: "127.0.0.1:7002",
    });
    expect(cfg.dataDir).toBe("/from/file");
    expect(cfg.tailCacheBytes).toBe(1024);
    expect(cfg.numPartitions).toBe(5);
    expect(cfg.listen).toBe("127.0.0.1:7002");
    expect(cfg.retentionCheckIntervalMs).toBe(300_000);
    const json = file("c.json", JSON.stringify({ "data.dir": "/j", "node.id": 4 }));
    expect(resolveConfig({ configFile: json, env: {} })).toMatchObject({ dataDir: "/j", nodeId: 4 });
  });

  it("names the key and where a bad value came from", () => {
    expect(message(() => resolveConfig({ configFile: file("bad.properties", "num.partitions=lots\n"), env: {} }))).toMatch(
      /bad\.properties: num\.partitions: must be an integer/,
    );
    expect(message(() => resolveConfig({ env: { RILL_LISTEN: "nowhere" } }))).toMatch(/^environment: listen: HOST:PORT/);
    expect(message(() => resolveConfig({ env: {}, nodeId: "x" }))).toMatch(/^flags: node\.id: must be an integer/);
    expect(message(() => resolveConfig({ configFile: file("unknown.properties", "no.such.key=1\n"), env: {} }))).toMatch(
      /no\.such\.key: unknown broker config key/,
    );
    expect(message(() => readConfigFile(file("broken.json", "{nope")))).toMatch(/is not valid JSON/);
    expect(message(() => readConfigFile(file("line.properties", "just words\n")))).toMatch(/line\.properties:1: expected key=value/);
    expect(message(() => readConfigFile(path.join(dir, "missing.properties")))).toMatch(/cannot read/);
  });

  it("reads only RILL_ variables that name broker keys", () => {
    expect(configFromEnv({ RILL_DATA_DIR: "/d", RILL_LOG_TAIL_CACHE_BYTES: "9", RILL_BOOTSTRAP: "x", PATH: "/bin" })).toEqual({
      "data.dir": "/d",
      "log.tail.cache.bytes": "9",
    });
  });

  it("request.max.bytes from any layer; message.max.bytes (its old name) is refused naming both", () => {
    expect(resolveConfig({ env: { RILL_REQUEST_MAX_BYTES: "4096" } }).requestBytesMax).toBe(4096);
    expect(resolveConfig({ env: {}, set: ["request.max.bytes=8192"] }).requestBytesMax).toBe(8192);
    expect(message(() => resolveConfig({ configFile: file("old.properties", "message.max.bytes=4096\n"), env: {} }))).toMatch(
      /old\.properties: message\.max\.bytes: renamed request\.max\.bytes/,
    );
    expect(message(() => resolveConfig({ env: {}, set: ["message.max.bytes=4096"] }))).toMatch(
      /^flags: message\.max\.bytes: renamed request\.max\.bytes/,
    );
    expect(message(() => resolveConfig({ env: { RILL_MESSAGE_MAX_BYTES: "4096" } }))).toMatch(
      /^environment: RILL_MESSAGE_MAX_BYTES: renamed RILL_REQUEST_MAX_BYTES/,
    );
  });
});
