/**
 * Who a node is, from its data directory and configuration: the cluster id in
 * `<dataDir>/meta.properties` (written on first start, as Kafka's), the id a quorum derives when
 * none is configured, and the single-node metadata a data dir may hold from before the quorum.
 */
import * as crypto from "node:crypto";
import type { Clock } from "../base/clock.ts";
import { rillError } from "../base/errors.ts";
import type { QuorumVoter } from "../config/schema.ts";
import { snapshotRecords } from "../metadata/image.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import { LocalMetadataStore } from "../metadata/store.ts";
import type { FileSystem } from "../storage/fs.ts";

/**
 * The cluster id, from `<dataDir>/meta.properties` (created on first start, as Kafka's): it ties
 * the data to its cluster and node. `expected` (configured, or derived from the quorum) must
 * match what the data dir holds; a fresh single node picks a random id.
 */
export function clusterIdOf(fs: FileSystem, dataDir: string, nodeId: number, expected: string | null): string {
  const path = fs.join(dataDir, "meta.properties");
  if (fs.exists(path)) {
    const props = Object.fromEntries(
      Buffer.from(fs.readFile(path))
        .toString("utf8")
        .split("\n")
        .filter((l) => l.includes("=") && !l.startsWith("#"))
        .map((l) => [l.slice(0, l.indexOf("=")).trim(), l.slice(l.indexOf("=") + 1).trim()]),
    );
    if (props["node.id"] !== undefined && Number(props["node.id"]) !== nodeId) {
      throw rillError("INVALID_CONFIG", `node.id: ${nodeId} does not match node.id=${props["node.id"]} in ${path}`);
    }
    const stored = props["cluster.id"];
    if (stored) {
      if (expected !== null && stored !== expected) {
        throw rillError(
          "INCONSISTENT_CLUSTER_ID",
          `cluster.id: the data in ${dataDir} belongs to cluster ${stored}, not ${expected} (check controller.quorum.voters / cluster.id, or use another data.dir)`,
        );
      }
      return stored;
    }
  }
  const id = expected ?? crypto.randomBytes(16).toString("base64url");
  fs.writeFileAtomic(path, Buffer.from(`# written by rill on first start\nversion=1\ncluster.id=${id}\nnode.id=${nodeId}\n`));
  return id;
}

/** The cluster id every voter of a quorum computes alike when none is configured. */
export function derivedClusterId(voters: readonly QuorumVoter[]): string {
  const canonical = [...voters]
    .sort((a, b) => a.id - b.id)
    .map((v) => `${v.id}@${v.address}`)
    .join(",");
  return crypto.createHash("sha256").update(`rill-cluster:${canonical}`).digest("base64url").slice(0, 22);
}

/** Metadata a single node wrote before the Raft quorum: its records, and `retire` to rename the old log. */
export interface LegacyMetadata {
  readonly records: MetadataRecord[];
  retire(): void;
}

/**
 * Metadata of a data dir written before the Raft quorum (a local metadata log): its records,
 * to be committed once as the quorum's first change, and `retire` to rename the old log.
 */
export async function legacyMetadata(fs: FileSystem, dataDir: string, clock: Clock, voterCount: number): Promise<LegacyMetadata | null> {
  const dir = fs.join(dataDir, "metadata", "__cluster_metadata-0");
  if (!fs.exists(dir) || fs.exists(fs.join(dataDir, "metadata", "raft"))) return null;
  if (voterCount !== 1)
    throw rillError(
      "INVALID_CONFIG",
      `controller.quorum.voters: ${dir} holds single-node metadata; start it once as a single node to carry it over, or use a fresh data.dir`,
    );
  const old = LocalMetadataStore.open(fs, dataDir, clock);
  const records = snapshotRecords(old.image).filter((r) => r.type !== "broker");
  await old.close();
  return { records, retire: () => fs.rename(dir, `${dir}.migrated`) };
}

/**
 * This data directory's id (issue 21): a random uuid kept as `directory.id` in
 * `<dataDir>/meta.properties`, added on first use. A controller voter is known by its node id and
 * this id, so a node whose disk was wiped (a new id) cannot rejoin the quorum as itself.
 */
export function directoryIdOf(fs: FileSystem, dataDir: string): string {
  const path = fs.join(dataDir, "meta.properties");
  const text = fs.exists(path) ? Buffer.from(fs.readFile(path)).toString("utf8") : "";
  const line = text.split("\n").find((l) => l.startsWith("directory.id="));
  if (line !== undefined) return line.slice("directory.id=".length).trim();
  const id = crypto.randomUUID();
  fs.writeFileAtomic(path, Buffer.from(`${text}${text === "" || text.endsWith("\n") ? "" : "\n"}directory.id=${id}\n`));
  return id;
}
