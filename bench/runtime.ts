/** Which JavaScript runtime runs this process, with its version: "bun 1.4.5", "node 20.20.2", "deno 2.9.6". */
export function runtimeName(): string {
  const v = process.versions as Record<string, string | undefined>;
  if (v["bun"]) return `bun ${v["bun"]}`;
  if (v["deno"]) return `deno ${v["deno"]}`;
  return `node ${process.versions.node}`;
}
