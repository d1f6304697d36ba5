/** Markdown tables of every configuration key, generated from the schema (for README.md). */
import { brokerKeys, envVarOf, renamedBrokerKeys, topicKeys, type ConfigKey } from "./schema.ts";

function table(keys: readonly ConfigKey[], envPrefix: boolean): string {
  const rows = keys.map((k) => {
    const def = String(k.default) === String(Number.MAX_SAFE_INTEGER) ? "2^53-1 (none)" : String(k.default);
    const name = envPrefix ? `\`${k.name}\` (\`${envVarOf(k.name)}\`)` : `\`${k.name}\``;
    return `| ${name} | ${k.type} | \`${def}\` | ${k.range} | ${k.doc} |`;
  });
  return ["| key | type | default | valid | meaning |", "|---|---|---|---|---|", ...rows].join("\n");
}

/** The README section body: broker keys, then topic keys. */
export function configDocsMarkdown(): string {
  return [
    "Broker settings (config file, `RILL_*` environment variable, or flag; flags win, then the environment, then the file):",
    "",
    table(brokerKeys, true),
    "",
    ...renamedBrokerKeys.map(
      (r) =>
        `Renamed: \`${r.from}\` (\`${envVarOf(r.from)}\`) is now \`${r.to}\` (\`${envVarOf(r.to)}\`); the old name is refused, because ${r.why}.`,
    ),
    "",
    "Topic settings (Kafka's names; set per topic with `rill topic create --config k=v` or `rill topic alter`):",
    "",
    table(topicKeys, false),
  ].join("\n");
}
