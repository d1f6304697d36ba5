/**
 * The broker's log: the few calls the shell and its runtimes make (pino's signature), so the
 * broker, its lifecycle and the controller runtime share one type without importing each other;
 * the pino logger of a running broker (`log.level`, `log.format`); and the operational lines an
 * operator greps for — one info line per change of the cluster's state, with its fields:
 *
 *   topic created / deleted, topic config changed          topic=, topicId=, configs=
 *   partition created / reassigned                         topic=, partition=, replicas=, isr=, leader=
 *   leader changed                                         topic=, partition=, leader=, previousLeader=, leaderEpoch=
 *   ISR shrunk / expanded                                  topic=, partition=, isr=, previousIsr=, leader=
 *   broker registered / fenced / unfenced / shutting down  broker=, address=
 *   ACL created / deleted                                  principal=, host=, resourceType=, resourceName=, patternType=, operation=, permission=
 *   user credential set / deleted                          user=, mechanism=
 *   client quota changed                                   user=, clientId=, quota=, value=
 *   group member joined / left, group rebalanced           group=, member=, clientId=, clientHost=, epoch=
 *
 * Metadata changes come from the metadata store's change listener (every node logs what it
 * applies), group-membership changes from the group runtime's writes (on the group's
 * coordinator). ISR shrinks and expands of partitions this node leads are also counted
 * (`rill_isr_shrinks_total`, `rill_isr_expands_total`), as Kafka's leader counts them.
 */
import { pino } from "pino";
import type { BrokerConfig } from "../config/schema.ts";
import type { GroupRecord } from "../coordinator/records.ts";
import type { MetadataImage } from "../metadata/image.ts";
import type { MetadataRecord } from "../metadata/records.ts";
import type { AclBinding } from "../metadata/security-types.ts";
import type { MetadataChange } from "../metadata/store.ts";

/** The few log calls the broker makes (pino's signature). */
export interface BrokerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A log that drops everything (the default when none is given). */
export const silentLog: BrokerLog = { info() {}, warn() {}, error() {} };

/**
 * The pino logger of a broker process: `log.level`, and `log.format` — JSON lines, or pino-pretty
 * (colored, one line per entry) when `pretty`, or when `auto` and stdout is a terminal.
 */
export function createBrokerLog(
  config: Pick<BrokerConfig, "logLevel" | "logFormat" | "nodeId">,
  isTty: boolean = process.stdout.isTTY === true,
): pino.Logger {
  const pretty = config.logFormat === "pretty" || (config.logFormat === "auto" && isTty);
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    base: { node: config.nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (!pretty) return pino(options);
  return pino({
    ...options,
    transport: {
      target: "pino-pretty",
      options: { colorize: isTty, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname", singleLine: true },
    },
  });
}

/** ISR changes of the partitions this node leads, counted as the metadata applies them. */
export interface IsrCounters {
  shrinks: number;
  expands: number;
}

interface PartitionSeen {
  leader: number;
  isr: readonly number[];
  replicas: readonly number[];
}

/** The store's side the change log reads. */
export interface ChangeSource {
  readonly image: MetadataImage;
  onChange(fn: (c: MetadataChange) => void): () => void;
}

/**
 * Logs every metadata change `store` applies (see the module comment) and counts the ISR
 * changes of partitions `nodeId` leads in `isr`. Returns the function that stops it.
 */
export function logMetadataChanges(store: ChangeSource, log: BrokerLog, nodeId: number, isr: IsrCounters): () => void {
  const seen = new Map<string, PartitionSeen>();
  const acls = new Map<string, AclBinding>();
  const remember = (image: MetadataImage): void => {
    seen.clear();
    acls.clear();
    for (const t of image.topics.values())
      t.partitions.forEach((p, i) => seen.set(`${t.name}\u0000${i}`, { leader: p.leader, isr: p.isr, replicas: p.replicas }));
    for (const [id, b] of image.acls) acls.set(id, b);
  };
  remember(store.image);
  const changes = { log, nodeId, isr, seen, acls };
  return store.onChange((c) => {
    if (c.snapshot === true) {
      remember(store.image);
      log.info({ offset: c.offset, topics: store.image.topics.size }, "metadata snapshot applied");
      return;
    }
    for (const r of c.records) logRecord(changes, r);
  });
}

interface Changes {
  readonly log: BrokerLog;
  readonly nodeId: number;
  readonly isr: IsrCounters;
  readonly seen: Map<string, PartitionSeen>;
  readonly acls: Map<string, AclBinding>;
}

/** One metadata record's line (none for producer-id bookkeeping). */
function logRecord(s: Changes, r: MetadataRecord): void {
  const { log } = s;
  switch (r.type) {
    case "topic":
      return log.info({ topic: r.name, topicId: r.topicId, configs: r.configs }, "topic created");
    case "remove-topic":
      for (const k of [...s.seen.keys()]) if (k.startsWith(`${r.name}\u0000`)) s.seen.delete(k);
      return log.info({ topic: r.name, topicId: r.topicId }, "topic deleted");
    case "config":
      return log.info({ topic: r.topic, configs: r.configs }, "topic config changed");
    case "partition":
      return logPartition(s, r);
    case "partition-change":
      return logPartitionChange(s, r);
    case "broker":
      return log.info({ broker: r.nodeId, address: r.address, roles: r.roles, fenced: r.fenced }, "broker registered");
    case "broker-fence":
      return log.info({ broker: r.nodeId, brokerEpoch: r.brokerEpoch }, r.fenced ? "broker fenced" : "broker unfenced");
    case "broker-shutdown":
      return log.info({ broker: r.nodeId, brokerEpoch: r.brokerEpoch }, "broker shutting down");
    case "acl":
      s.acls.set(r.id, r.binding);
      return log.info({ aclId: r.id, ...r.binding }, "ACL created");
    case "remove-acl": {
      const b = s.acls.get(r.id);
      s.acls.delete(r.id);
      return log.info({ aclId: r.id, ...(b ?? {}) }, "ACL deleted");
    }
    case "scram-credential":
      return log.info({ user: r.name, mechanism: r.credential.mechanism }, "user credential set");
    case "remove-scram-credential":
      return log.info({ user: r.name, mechanism: r.mechanism }, "user credential deleted");
    case "client-quota":
      return log.info(
        { user: r.entity.user ?? null, clientId: r.entity.clientId ?? null, quota: r.key, value: r.value },
        "client quota changed",
      );
    // cordoned brokers (issue 21)
    case "broker-cordon":
      return log.info({ broker: r.nodeId }, r.cordoned ? "broker cordoned: no new replicas go there" : "broker uncordoned");
    default:
      return;
  }
}

function logPartition(s: Changes, r: Extract<MetadataRecord, { type: "partition" }>): void {
  const key = `${r.topic}\u0000${r.partition}`;
  const before = s.seen.get(key);
  s.seen.set(key, { leader: r.leader, isr: r.isr, replicas: r.replicas });
  const fields = { topic: r.topic, partition: r.partition, replicas: r.replicas, isr: r.isr, leader: r.leader, leaderEpoch: r.leaderEpoch };
  if (!before) return s.log.info(fields, "partition created");
  s.log.info({ ...fields, previousReplicas: before.replicas, previousLeader: before.leader }, "partition reassigned");
}

function logPartitionChange(s: Changes, r: Extract<MetadataRecord, { type: "partition-change" }>): void {
  const key = `${r.topic}\u0000${r.partition}`;
  const before = s.seen.get(key) ?? { leader: -1, isr: [], replicas: [] };
  s.seen.set(key, { leader: r.leader, isr: r.isr, replicas: before.replicas });
  const where = { topic: r.topic, partition: r.partition };
  if (r.leader !== before.leader)
    s.log.info({ ...where, leader: r.leader, previousLeader: before.leader, leaderEpoch: r.leaderEpoch }, "leader changed");
  const lost = before.isr.filter((id) => !r.isr.includes(id));
  const joined = r.isr.filter((id) => !before.isr.includes(id));
  const leads = r.leader === s.nodeId;
  if (lost.length > 0) {
    if (leads) s.isr.shrinks++;
    s.log.info({ ...where, isr: r.isr, previousIsr: before.isr, removed: lost, leader: r.leader }, "ISR shrunk");
  }
  if (joined.length > 0) {
    if (leads) s.isr.expands++;
    s.log.info({ ...where, isr: r.isr, previousIsr: before.isr, added: joined, leader: r.leader }, "ISR expanded");
  }
}

/**
 * Logs group-membership changes from the records a group coordinator writes: a member's first
 * record (joined), its tombstone (left), a new group epoch (rebalanced), a group's tombstone
 * (deleted). Returns the function to call with each write's records.
 */
export function groupChangeLogger(log: BrokerLog): (records: readonly GroupRecord[]) => void {
  const members = new Set<string>();
  return (records) => {
    for (const r of records) {
      switch (r.type) {
        case "member": {
          const key = `${r.groupId}\u0000${r.memberId}`;
          if (members.has(key)) break;
          members.add(key);
          log.info(
            {
              group: r.groupId,
              member: r.memberId,
              instanceId: r.instanceId,
              clientId: r.clientId,
              clientHost: r.clientHost,
              topics: r.subscribedTopics,
            },
            "group member joined",
          );
          break;
        }
        case "member-tombstone":
          members.delete(`${r.groupId}\u0000${r.memberId}`);
          log.info({ group: r.groupId, member: r.memberId }, "group member left");
          break;
        case "group":
          log.info({ group: r.groupId, epoch: r.epoch, assignor: r.assignor }, "group rebalanced");
          break;
        case "group-tombstone":
          log.info({ group: r.groupId }, "group deleted");
          break;
        default:
          break;
      }
    }
  };
}
