import { describe, expect, it } from "vitest";
import { Errors, RillError } from "../../../src/base/errors.ts";
import {
  brokerKeys,
  defaultTopicConfig,
  describeTopicConfig,
  parseBrokerConfig,
  parseTopicConfig,
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
