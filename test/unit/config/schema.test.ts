import { describe, expect, it } from "vitest";
import { Errors, RillError } from "../../../src/base/errors.ts";
import {
  brokerConfigFromEnv,
  brokerKeys,
  defaultBrokerConfig,
  defaultTopicConfig,
  envVarOf,
  describeTopicConfig,
  parseBrokerConfig,
  parseTopicConfig,
  renamedBrokerKeys,
  topicKeys,
} from "../../../src/config/schema.ts";

function configError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).code).toBe(Errors.INVALID_CONFIG.code);
    return (e as Error).message;
  }
  throw new Error("expected INVALID_CONFIG");
}

describe("config schema", () => {
  it("every key has a doc, a default that parses, and a unique name", () => {
    const names = new Set<string>();
    for (const k of [...topicKeys, ...brokerKeys]) {
      expect(k.doc.length).toBeGreaterThan(10);
      expect(names.has(k.name)).toBe(false);
      names.add(k.name);
      expect(k.schema.safeParse(k.default).success, k.name).toBe(true);
    }
  });

  it("parses strings from config maps into typed values", () => {
    const c = parseTopicConfig({
      "segment.bytes": "4096",
      "cleanup.policy": "compact",
      "unclean.leader.election.enable": "true",
      "min.cleanable.dirty.ratio": "0.25",
    });
    expect(c.segmentBytes).toBe(4096);
    expect(c.cleanupPolicy).toBe("compact");
    expect(c.uncleanLeaderElectionEnable).toBe(true);
    expect(c.minCleanableDirtyRatio).toBe(0.25);
    expect(c.retentionMs).toBe(defaultTopicConfig.retentionMs);
  });

  it("names the key and the problem for each kind of bad value", () => {
    expect(configError(() => parseTopicConfig({ "segment.bytes": "12abc" }))).toMatch(/^segment\.bytes: must be an integer/);
    expect(configError(() => parseTopicConfig({ "segment.bytes": "1" }))).toMatch(/^segment\.bytes: must be >= 128/);
    expect(configError(() => parseTopicConfig({ "retention.ms": "-2" }))).toMatch(/^retention\.ms: must be >= -1/);
    expect(configError(() => parseTopicConfig({ "retention.ms": 1.5 }))).toMatch(/^retention\.ms: must be an integer/);
    expect(configError(() => parseTopicConfig({ "cleanup.policy": "shred" }))).toMatch(/^cleanup\.policy: must be one of/);
    expect(configError(() => parseTopicConfig({ "unclean.leader.election.enable": "yes" }))).toMatch(/must be true or false/);
    expect(configError(() => parseTopicConfig({ "no.such.key": "1" }))).toMatch(/^no\.such\.key: unknown topic config key/);
    expect(configError(() => parseBrokerConfig({ listen: "nowhere" }))).toMatch(/^listen: HOST:PORT/);
    expect(configError(() => parseBrokerConfig({ "log.tail.cache.bytes": true }))).toMatch(/^log\.tail\.cache\.bytes/);
  });

  it("checks cross-field rules", () => {
    expect(
      configError(() => parseTopicConfig({ "cleanup.policy": "compact,delete", "retention.ms": "1000", "min.compaction.lag.ms": "5000" })),
    ).toMatch(/min\.compaction\.lag\.ms/);
  });

  it("describes a config back as strings under Kafka's names", () => {
    const d = describeTopicConfig(parseTopicConfig({ "retention.ms": "-1" }));
    expect(d["retention.ms"]).toBe("-1");
    expect(d["cleanup.policy"]).toBe("delete");
    expect(Object.keys(d).length).toBe(topicKeys.length);
  });
});

describe("renamed broker keys", () => {
  it("request.max.bytes (was message.max.bytes) sets the gRPC message limit", () => {
    expect(parseBrokerConfig({ "request.max.bytes": "1048576" }).requestBytesMax).toBe(1 << 20);
    expect(defaultBrokerConfig.requestBytesMax).toBe(64 << 20);
  });

  it("refuses message.max.bytes with INVALID_CONFIG naming both keys and why, never as an alias", () => {
    const m = configError(() => parseBrokerConfig({ "message.max.bytes": "1048576" }));
    expect(m).toMatch(/^message\.max\.bytes: renamed request\.max\.bytes; the old name is refused, not aliased, because in Kafka /);
    expect(m).toContain("max.message.bytes");
    // Refused even next to the new key, and whatever its value.
    expect(configError(() => parseBrokerConfig({ "request.max.bytes": "2048", "message.max.bytes": "x" }))).toMatch(
      /^message\.max\.bytes: renamed/,
    );
  });

  it("a renamed key's old name is no key, and is not a topic key either", () => {
    const names = new Set([...brokerKeys, ...topicKeys].map((k) => k.name));
    for (const r of renamedBrokerKeys) {
      expect(names.has(r.from), r.from).toBe(false);
      expect(names.has(r.to), r.to).toBe(true);
    }
    expect(configError(() => parseTopicConfig({ "message.max.bytes": "1" }))).toMatch(/unknown topic config key/);
  });

  it("environment: RILL_REQUEST_MAX_BYTES is read; RILL_MESSAGE_MAX_BYTES is refused naming both variables", () => {
    expect(envVarOf("request.max.bytes")).toBe("RILL_REQUEST_MAX_BYTES");
    expect(brokerConfigFromEnv({ RILL_REQUEST_MAX_BYTES: "2048", RILL_DATA_DIR: "/d", RILL_BOOTSTRAP: "x", PATH: "/bin" })).toEqual({
      "request.max.bytes": "2048",
      "data.dir": "/d",
    });
    expect(configError(() => brokerConfigFromEnv({ RILL_MESSAGE_MAX_BYTES: "2048" }))).toMatch(
      /^RILL_MESSAGE_MAX_BYTES: renamed RILL_REQUEST_MAX_BYTES; the old name is refused/,
    );
    expect(brokerConfigFromEnv({ RILL_MESSAGE_MAX_BYTES: "" })).toEqual({});
  });
});
