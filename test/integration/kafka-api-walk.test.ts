/**
 * Every (API key, version) the listener advertises in ApiVersions is answered: the test walks
 * ApiVersions' answer and sends, for each pair, a request built from that API's own message
 * description (src/kafka/apis/*: every field at its default, unless SAMPLES says otherwise for
 * an API whose defaults would not be answered at all — Produce with acks 0), then checks the
 * response decodes as that version with no byte left over and the connection stays open.
 * APIs added later are covered as soon as they are in KAFKA_APIS.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { ApiVersionsRequest, ApiVersionsResponse } from "../../src/kafka/apis/api-versions.ts";
import { KAFKA_APIS } from "../../src/kafka/apis/index.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

/** Requests whose all-default form gets no answer, by API key. */
const SAMPLES: Readonly<Record<number, (version: number) => object>> = {
  // Produce: acks 0 is answered with nothing; -1 with no topics is answered at once.
  0: () => ({ acks: -1, timeoutMs: 1000, topicData: [] }),
};

let broker: Broker;
let dir: string;

beforeAll(async () => {
  dir = tmpDir("rill-kafka-walk-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { kafkaListen: "127.0.0.1:0" }, shutdownGraceMs: 500 });
});

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

describe("every advertised (API key, version)", () => {
  it("is answered in its own layout", { timeout: 120_000 }, async () => {
    const c = await RawKafka.connect(broker.kafkaAddress as string);
    const advertised = await c.request(18, 3, ApiVersionsRequest, {}, ApiVersionsResponse);
    expect(advertised.errorCode).toBe(0);
    // What ApiVersions advertises is exactly the registry.
    expect(advertised.apiKeys).toEqual(KAFKA_APIS.map((a) => ({ apiKey: a.key, minVersion: a.versions[0], maxVersion: a.versions[1] })));
    const answered: string[] = [];
    for (const { apiKey, minVersion, maxVersion } of advertised.apiKeys) {
      const api = KAFKA_APIS.find((a) => a.key === apiKey);
      expect(api, `API ${apiKey}`).toBeDefined();
      if (!api) continue;
      for (let v = minVersion; v <= maxVersion; v++) {
        const req = SAMPLES[apiKey]?.(v) ?? {};
        const res = await c.request(apiKey, v, api.request, req as never, api.response);
        expect(res, `${api.name} v${v}`).toBeTypeOf("object");
        answered.push(`${apiKey}v${v}`);
      }
    }
    // The walk covered at least the APIs of this branch, every version.
    for (const [key, lo, hi] of [
      [0, 3, 11],
      [2, 1, 9],
      [3, 0, 12],
      [18, 0, 4],
      [22, 0, 5],
    ] as const) {
      for (let v = lo; v <= hi; v++) expect(answered).toContain(`${key}v${v}`);
    }
    c.close();
  });
});
