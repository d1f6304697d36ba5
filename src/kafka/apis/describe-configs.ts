/**
 * DescribeConfigs (key 32), v0-4 (v4 flexible): the admin service's DescribeConfigs
 * (src/service/admin.ts) for each resource — a topic's effective configuration, or this broker's
 * static one (a broker answers for itself; another node's id is that resource's error).
 *
 * Kafka's resource types TOPIC (2) and BROKER (4) are the domain's "topic" and "broker"; any
 * other is refused by the service, by number. Each resource needs DESCRIBE_CONFIGS
 * (src/service/authorize.ts); a denied one is answered with its authorization error and the
 * others are described. Synonyms are not kept (every answer's list is empty); v3+ answers each
 * key's type and, when asked, its documentation.
 */
import { type ConfigKey, brokerKeys, topicKeys } from "../../config/schema.ts";
import type { ConfigEntry, ConfigResource, ConfigSource } from "../../service/admin-types.ts";
import { api } from "../api.ts";
import { authorizeEach, errorFields, kafkaAdmin } from "../admin.ts";
import { arrayOf, bool, int8, int16, int32, message, string, structs } from "../schema.ts";

export const DescribeConfigsRequest = message("DescribeConfigsRequest", "0-4", "4+", {
  resources: structs({ resourceType: int8(), resourceName: string(), configurationKeys: arrayOf(string()).nullable("0+") }),
  includeSynonyms: bool().since(1),
  includeDocumentation: bool().since(3),
});

export const DescribeConfigsResponse = message("DescribeConfigsResponse", "0-4", "4+", {
  throttleTimeMs: int32(),
  results: structs({
    errorCode: int16(),
    errorMessage: string().nullable("0+").default(null),
    resourceType: int8(),
    resourceName: string(),
    configs: structs({
      name: string(),
      value: string().nullable("0+"),
      readOnly: bool(),
      isDefault: bool().versions("0"),
      configSource: int8().since(1).default(-1),
      isSensitive: bool(),
      synonyms: structs({ name: string(), value: string().nullable("0+"), source: int8() }).since(1),
      configType: int8().since(3),
      documentation: string().since(3).nullable("0+").default(null),
    }),
  }),
});

/** Kafka's config resource types. */
export const RESOURCE_TOPIC = 2;
export const RESOURCE_BROKER = 4;

/** A Kafka config resource as the domain's. */
export function configResource(type: number, name: string): ConfigResource {
  if (type === RESOURCE_TOPIC) return { type: "topic", name };
  if (type === RESOURCE_BROKER) return { type: "broker", name };
  return { type: { unrecognized: type }, name };
}

/** Kafka's ConfigSource numbers. */
const SOURCES: Record<ConfigSource, number> = {
  "dynamic-topic": 1,
  "dynamic-broker": 2,
  "dynamic-default-broker": 3,
  "static-broker": 4,
  default: 5,
};

/** Kafka's number of a config source. */
export function configSourceCode(source: ConfigSource): number {
  return SOURCES[source];
}

/** Kafka's ConfigType of each key (BOOLEAN 1, STRING 2, LONG 5, DOUBLE 6, LIST 7, PASSWORD 9). */
const TYPES = new Map<string, number>();
for (const k of [...topicKeys, ...brokerKeys] as readonly ConfigKey[]) {
  const t = { int: 5, number: 6, boolean: 1, string: 2, enum: 2, list: 7 }[k.type];
  TYPES.set(k.name, k.sensitive === true ? 9 : t);
}

function configOf(e: ConfigEntry, version: number) {
  return {
    name: e.name,
    value: e.sensitive ? null : e.value,
    readOnly: e.readOnly,
    isDefault: e.source === "default",
    configSource: version >= 1 ? configSourceCode(e.source) : -1,
    isSensitive: e.sensitive,
    synonyms: [],
    configType: TYPES.get(e.name) ?? 0,
    documentation: e.documentation === "" ? null : e.documentation,
  };
}

export const describeConfigs = api(32, "0-4", DescribeConfigsRequest, DescribeConfigsResponse, async (req, ctx) => {
  const { admin, access } = kafkaAdmin(ctx.deps);
  const who = ctx.session.requester;
  const includeDocumentation = req.includeDocumentation;
  const resources = req.resources.map((r) => configResource(r.resourceType, r.resourceName));
  const refusals = authorizeEach(resources, (resource) =>
    access.describeConfigs(who, { resources: [resource], names: [], includeDocumentation }),
  );
  return {
    throttleTimeMs: 0,
    results: req.resources.map((r, i) => {
      const head = { resourceType: r.resourceType, resourceName: r.resourceName };
      const refusal = refusals[i];
      if (refusal) return { ...head, ...errorFields(refusal), configs: [] };
      const res = admin.describeConfigs({
        resources: [resources[i] as ConfigResource],
        names: r.configurationKeys ?? [],
        includeDocumentation,
      }).results[0];
      if (res === undefined || res.error) return { ...head, ...errorFields(res?.error), configs: [] };
      return { ...head, errorCode: 0, errorMessage: null, configs: res.entries.map((e) => configOf(e, ctx.apiVersion)) };
    }),
  };
});
