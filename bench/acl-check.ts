/**
 * The cost of one cached authorization check on the produce path (Access.check of
 * ProduceService/Produce with 1001 ACL bindings), in nanoseconds per request. A benchmark, not
 * a test: `bun bench/acl-check.ts [--checks N]`.
 */
import { MetadataImage } from "../src/metadata/image.ts";
import { Authorizer } from "../src/security/acl.ts";
import type { AclBinding } from "../src/metadata/security-types.ts";
import { Access } from "../src/service/access.ts";
import { parseArgs } from "./lib.ts";

const o = parseArgs(process.argv.slice(2), { checks: 2_000_000 }, import.meta.url);
const bindings = [
  {
    principal: "User:ANONYMOUS",
    host: "*",
    resourceType: "TOPIC",
    resourceName: "perf-",
    patternType: "PREFIXED",
    operation: "WRITE",
    permission: "ALLOW",
  },
  ...Array.from({ length: 1000 }, (_, i) => ({
    principal: `User:o${i}`,
    host: "*",
    resourceType: "TOPIC",
    resourceName: `t-${i}`,
    patternType: "LITERAL",
    operation: "READ",
    permission: "ALLOW",
  })),
] as AclBinding[];
const a = new Access({
  enabled: true,
  superUsers: [],
  store: { image: new MetadataImage(), onChange: () => () => {} },
  bindings: () => bindings,
  touchesAcls: () => false,
  authorizer: (b, s) => new Authorizer(b, new Set(s)),
});
const r = { principal: "User:ANONYMOUS" as const, host: "127.0.0.1", clientId: "" };
const N = o.checks;
for (let i = 0; i < 10000; i++) a.check(r, "ProduceService/Produce", { TOPIC: ["perf-1"] });
const t = performance.now();
for (let i = 0; i < N; i++) a.check(r, "ProduceService/Produce", { TOPIC: ["perf-1"] });
console.log(`cached Produce check: ${(((performance.now() - t) * 1e6) / N).toFixed(0)} ns per request`);
