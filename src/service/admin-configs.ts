/**
 * Configuration requests of the admin service, as pure helpers of `AdminHandlers`
 * (`src/service/admin.ts`): the entries DescribeConfigs answers for a topic or a broker, and the
 * reading of AlterConfigs operations into the keys to set and to remove.
 *
 * Topic configs are the schema's topic keys (`topicKeys`), each with its effective value and
 * where it comes from (an override set on the topic, or the default). Broker configs are the
 * node's static configuration: read-only, and only this node's own (a broker answers for itself).
 * Nothing here writes; `decideAlterConfigs` (src/metadata/controller.ts) validates the result of
 * an alteration as a whole.
 */
import { type RillError, rillError } from "../base/errors.ts";
import { type BrokerConfig, type ConfigKey, brokerKeys, describeTopicConfig, topicKeys } from "../config/schema.ts";
import { effectiveConfig } from "../metadata/controller.ts";
import type { TopicState } from "../metadata/image.ts";
import type { AlterConfigOp, ConfigEntry, ConfigResource } from "./admin-types.ts";

/** The entries of topic `t`: every topic key, overridden ones marked as set on the topic. */
export function topicConfigEntries(t: TopicState, includeDocumentation: boolean): ConfigEntry[] {
  const effective = describeTopicConfig(effectiveConfig(t.configs));
  return topicKeys.map((k) => ({
    name: k.name,
    value: effective[k.name]!,
    source: k.name in t.configs ? "dynamic-topic" : "default",
    readOnly: false,
    sensitive: false,
    documentation: includeDocumentation ? k.doc : "",
  }));
}

/** The entries of this node's static configuration: every broker key, read-only. */
export function brokerConfigEntries(config: Readonly<BrokerConfig>, includeDocumentation: boolean): ConfigEntry[] {
  const values = config as unknown as Record<string, unknown>;
  return (brokerKeys as readonly ConfigKey[]).map((k) => ({
    name: k.name,
    value: k.sensitive === true ? "" : String(values[k.prop]),
    source: "static-broker",
    readOnly: true,
    sensitive: k.sensitive === true,
    documentation: includeDocumentation ? k.doc : "",
  }));
}

/**
 * Refuses a broker resource that names another node: INVALID_REQUEST naming `resources[i].name`.
 * "" means this node.
 */
export function checkOwnBroker(resource: ConfigResource, index: number, nodeId: number): void {
  if (resource.name !== "" && resource.name !== String(nodeId)) {
    throw rillError("INVALID_REQUEST", `resources[${index}].name: broker "${resource.name}" is not this node (${nodeId})`);
  }
}

/** The error for a resource type that is neither topic nor broker. */
export function unknownResourceType(resource: ConfigResource, index: number): RillError {
  const value = typeof resource.type === "string" ? resource.type : resource.type.unrecognized;
  return rillError(
    "INVALID_REQUEST",
    `resources[${index}].type: ${value} is not CONFIG_RESOURCE_TYPE_TOPIC or CONFIG_RESOURCE_TYPE_BROKER`,
  );
}

/** `entries` restricted to the keys named in `want` (all of them when `want` is empty). */
export function pickEntries(entries: readonly ConfigEntry[], want: ReadonlySet<string>): ConfigEntry[] {
  return want.size === 0 ? [...entries] : entries.filter((e) => want.has(e.name));
}

/** The keys an alteration sets (with their values) and removes. */
export interface ConfigChanges {
  readonly set: Readonly<Record<string, string>>;
  readonly remove: readonly string[];
}

/**
 * The operations on resource `index` as keys to set and to remove, or INVALID_REQUEST naming the
 * first operation that is neither "set" nor "delete".
 */
export function configChanges(operations: readonly AlterConfigOp[], index: number): ConfigChanges | RillError {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const [j, op] of operations.entries()) {
    if (op.operation === "set") set[op.name] = op.value;
    else if (op.operation === "delete") remove.push(op.name);
    else
      return rillError(
        "INVALID_REQUEST",
        `resources[${index}].operations[${j}].operation: ${op.operation.unrecognized} is not SET or DELETE`,
      );
  }
  return { set, remove };
}
