/**
 * Configuration as a schema. Every key has a doc, a type, a default and bounds; values arrive as
 * strings (gRPC config maps, env, CLI) or typed (config file) and are parsed by zod. A bad value
 * is rejected with INVALID_CONFIG and a message that names the key. The README's config table is
 * generated from these tables (scripts/gen-config-docs.ts), never kept by hand.
 *
 * Topic keys keep Kafka's names so that people who know Kafka recognise them.
 */
import { z } from "zod";
import { rillError } from "../base/errors.ts";

/** One documented key. `prop` is the camelCase property the code reads. */
export interface ConfigKey<P extends string = string> {
  readonly name: string;
  readonly prop: P;
  readonly doc: string;
  readonly type: "int" | "number" | "boolean" | "string" | "enum" | "list";
  readonly schema: z.ZodType;
  readonly default: unknown;
  /** Human-readable bounds or choices, for docs. */
  readonly range: string;
  /** A secret: its value is never shown (errors, DescribeConfigs, logs). */
  readonly sensitive?: boolean;
}

/** Milliseconds or bytes that mean "no limit". */
export const UNLIMITED = -1;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/**
 * `gc.memory.soft.limit.bytes`'s default: none. At 240 MiB (issue 14's 60-minute Bun soak,
 * session 9) it did not keep RSS under 300 MiB (max 348) and added ~80 collections per 5 minutes
 * late in the hour: what stood above the limit was mostly live (test/soak/README.md).
 */
const SOFT_LIMIT_DEFAULT = 0;

/** Parses an integer from a number or a decimal string, strictly (no "12abc", no 1.5). */
const intLike = z.union(
  [
    z.number(),
    z
      .string()
      .trim()
      .regex(/^-?\d+$/, "must be an integer")
      .transform((s) => Number(s)),
  ],
  { error: "must be an integer" },
);

function int(name: string, prop: string, doc: string, def: number, min: number, max: number) {
  const schema = intLike.pipe(z.number().int("must be an integer").min(min, `must be >= ${min}`).max(max, `must be <= ${max}`));
  return { name, prop, doc, type: "int" as const, schema, default: def, range: `[${min}, ${max === MAX_SAFE ? "2^53-1" : max}]` };
}

function num(name: string, prop: string, doc: string, def: number, min: number, max: number) {
  const numLike = z.union(
    [
      z.number(),
      z
        .string()
        .trim()
        .regex(/^-?\d+(\.\d+)?$/, "must be a number")
        .transform(Number),
    ],
    { error: "must be a number" },
  );
  const schema = numLike.pipe(z.number().min(min, `must be >= ${min}`).max(max, `must be <= ${max}`));
  return { name, prop, doc, type: "number" as const, schema, default: def, range: `[${min}, ${max}]` };
}

function bool(name: string, prop: string, doc: string, def: boolean) {
  const schema = z.union([z.boolean(), z.enum(["true", "false"]).transform((s) => s === "true")], { error: "must be true or false" });
  return { name, prop, doc, type: "boolean" as const, schema, default: def, range: "true, false" };
}

function choice<const T extends readonly [string, ...string[]]>(name: string, prop: string, doc: string, def: T[number], values: T) {
  const schema = z.enum(values, { message: `must be one of ${values.join(", ")}` });
  return { name, prop, doc, type: "enum" as const, schema, default: def, range: values.join(", ") };
}

function str(name: string, prop: string, doc: string, def: string, pattern?: RegExp, what?: string) {
  const schema = pattern ? z.string().regex(pattern, what ?? `must match ${pattern}`) : z.string().min(1, "must not be empty");
  return { name, prop, doc, type: "string" as const, schema, default: def, range: what ?? "non-empty string" };
}

/** A comma-separated list whose items are each one of `values` (an array is taken as is); empty = none. */
function listOf<const T extends readonly [string, ...string[]]>(name: string, prop: string, doc: string, values: T) {
  const item = z.enum(values, { message: `each item must be one of ${values.join(", ")}` });
  const fromString = z.string().transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x !== ""),
  );
  const schema = z.union([z.array(z.string()), fromString]).pipe(z.array(item));
  return { name, prop, doc, type: "list" as const, schema, default: [] as T[number][], range: `list of ${values.join(", ")}` };
}

/**
 * Per-topic keys (Kafka names), with Rill's defaults. A topic's overrides apply on top of these
 * defaults; unlike Kafka, no broker key (`log.`-prefixed there) changes them.
 */
export const topicKeys = [
  choice(
    "cleanup.policy",
    "cleanupPolicy",
    "How old segments are discarded: `delete` removes whole segments past retention, `compact` keeps the latest record per key, `compact,delete` does both.",
    "delete",
    ["delete", "compact", "compact,delete", "delete,compact"] as const,
  ),
  choice(
    "compression.type",
    "compressionType",
    "Codec of batches the broker builds from plain `records` (thin clients). `producer` stores them uncompressed (`uncompressed` is Kafka's name for `none`); batches sent as `record_batch` are always stored as the producer compressed them.",
    "producer",
    ["producer", "none", "uncompressed", "gzip", "snappy", "lz4", "zstd"] as const,
  ),
  int(
    "delete.retention.ms",
    "deleteRetentionMs",
    "How long a tombstone (null value) survives in a compacted topic, measured from its segment's max timestamp.",
    86_400_000,
    0,
    MAX_SAFE,
  ),
  int(
    "flush.messages",
    "flushMessages",
    "fsync the partition after this many unflushed records (one fsync covers every append waiting for it). The maximum means no count-based fsync.",
    MAX_SAFE,
    1,
    MAX_SAFE,
  ),
  int(
    "flush.ms",
    "flushMs",
    "fsync the partition when its oldest unflushed append is this old. Rill's default fsyncs every second (Kafka's default never fsyncs and relies on replication).",
    1000,
    0,
    MAX_SAFE,
  ),
  int("index.interval.bytes", "indexIntervalBytes", "Bytes of log between entries of the sparse offset index.", 4096, 0, 1 << 30),
  int("max.message.bytes", "maxMessageBytes", "Largest record batch the topic accepts, in bytes.", 8 * 1024 * 1024, 64, 1 << 30),
  choice(
    "message.timestamp.type",
    "timestampType",
    "`CreateTime` keeps the producer's timestamps; `LogAppendTime` stamps batches with the broker's clock on append.",
    "CreateTime",
    ["CreateTime", "LogAppendTime"] as const,
  ),
  num(
    "min.cleanable.dirty.ratio",
    "minCleanableDirtyRatio",
    "Compaction starts when the uncompacted share of the cleanable log is at least this.",
    0.5,
    0,
    1,
  ),
  int("min.compaction.lag.ms", "minCompactionLagMs", "Records younger than this are never compacted.", 0, 0, MAX_SAFE),
  int(
    "min.insync.replicas",
    "minInsyncReplicas",
    "With acks=ALL, the fewest in-sync replicas that must have a batch before it is acknowledged.",
    1,
    1,
    1000,
  ),
  int(
    "retention.bytes",
    "retentionBytes",
    "Largest size a partition may keep before its oldest segments are deleted; -1 for no limit.",
    UNLIMITED,
    -1,
    MAX_SAFE,
  ),
  int(
    "retention.ms",
    "retentionMs",
    "Age (by a segment's max timestamp) after which a segment is deleted; -1 for no limit.",
    604_800_000,
    -1,
    MAX_SAFE,
  ),
  int("segment.bytes", "segmentBytes", "Size at which the active segment rolls.", 1 << 30, 128, 2 ** 31 - 1),
  int("segment.ms", "segmentMs", "Age at which the active segment rolls even if not full.", 604_800_000, 1, MAX_SAFE),
  bool(
    "unclean.leader.election.enable",
    "uncleanLeaderElectionEnable",
    "Whether a replica outside the ISR may become leader (risking data loss).",
    false,
  ),
] as const;

/** Broker-wide keys. */
/** A file path or empty (unset): no NUL, no newline. */
const FILE_OR_EMPTY = /^[^\0\n]*$/;

export const brokerKeys = [
  str("data.dir", "dataDir", "Folder that holds the broker's logs and metadata.", "./data"),
  str(
    "listen",
    "listen",
    "Address the gRPC server listens on, HOST:PORT.",
    "127.0.0.1:50051",
    /^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/,
    "HOST:PORT",
  ),
  str(
    "advertised.address",
    "advertisedAddress",
    "HOST:PORT other nodes and clients are told to reach this node at (its registration in the cluster). Empty: the `listen` address.",
    "",
    /^$|^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/,
    "empty or HOST:PORT",
  ),
  int("node.id", "nodeId", "This node's id in the cluster.", 1, 0, 2 ** 31 - 1),
  choice(
    "process.roles",
    "processRoles",
    "What this node runs: `broker,controller` (combined, the single-node default), `broker` (serves clients, follows the metadata log) or `controller` (a metadata quorum voter only).",
    "broker,controller",
    ["broker,controller", "controller,broker", "broker", "controller"] as const,
  ),
  str(
    "controller.quorum.voters",
    "controllerQuorumVoters",
    "The controller quorum as `ID@HOST:PORT,...` (each voter's `listen` address, or its `internal.listen` address when it has one). Empty: this node alone is the quorum, at its own `listen` address. Set, the node must authenticate the other members (`cluster.secret`, or internal mutual TLS). It only seeds a new quorum: once the metadata log holds a voter set (`rill cluster add-controller|remove-controller`) the log's wins on every restart, and a node with the controller role that is not listed starts as an observer that can be added.",
    "",
    /^$|^\d+@(\[[0-9a-fA-F:]+\]|[^:@\s,]+):\d{1,5}(,\d+@(\[[0-9a-fA-F:]+\]|[^:@\s,]+):\d{1,5})*$/,
    "empty or ID@HOST:PORT[,ID@HOST:PORT...]",
  ),
  str(
    "cluster.id",
    "clusterId",
    "Cluster id every node of the cluster shares. Empty: random for a single node, derived from `controller.quorum.voters` for a quorum. Written to meta.properties on first start and checked on every later one.",
    "",
    /^[A-Za-z0-9_-]{0,64}$/,
    "empty or up to 64 of A-Z a-z 0-9 _ -",
  ),
  int(
    "controller.quorum.election.timeout.ms",
    "electionTimeoutMs",
    "Raft election timeout: a voter that hears no leader for between this and twice this starts an election.",
    1000,
    20,
    600_000,
  ),
  int(
    "controller.quorum.heartbeat.interval.ms",
    "raftHeartbeatIntervalMs",
    "How often the Raft leader heartbeats its voters (also the Raft tick).",
    100,
    5,
    60_000,
  ),
  int(
    "metadata.snapshot.interval.records",
    "snapshotIntervalRecords",
    "The controller writes a snapshot of the metadata image and truncates its Raft log after this many new log entries.",
    1000,
    2,
    10_000_000,
  ),
  int(
    "broker.heartbeat.interval.ms",
    "brokerHeartbeatIntervalMs",
    "How often a broker heartbeats the active controller.",
    2000,
    10,
    600_000,
  ),
  int(
    "broker.session.timeout.ms",
    "brokerSessionTimeoutMs",
    "A broker whose heartbeats stop for this long is fenced: it leads nothing and leaves every ISR.",
    9000,
    50,
    3_600_000,
  ),
  int(
    "replica.lag.time.max.ms",
    "replicaLagTimeMaxMs",
    "A follower that has not caught up with its leader for this long leaves the ISR (and joins again once it has).",
    30_000,
    10,
    3_600_000,
  ),
  int(
    "replica.fetch.wait.max.ms",
    "replicaFetchWaitMaxMs",
    "How long a leader holds a follower's fetch when it has nothing new (a long-poll, so replication has no polling delay).",
    500,
    0,
    30_000,
  ),
  int(
    "offsets.topic.replication.factor",
    "offsetsTopicReplicationFactor",
    "Replication factor of `__consumer_offsets`; capped at the number of controller voters. The topic is created once that many brokers are unfenced.",
    3,
    1,
    1000,
  ),
  int(
    "log.retention.check.interval.ms",
    "retentionCheckIntervalMs",
    "How often retention is applied to every partition.",
    300_000,
    1,
    MAX_SAFE,
  ),
  int("log.cleaner.backoff.ms", "cleanerBackoffMs", "How long the cleaner sleeps when no log needs compaction.", 15_000, 1, MAX_SAFE),
  bool("log.cleaner.enable", "cleanerEnable", "Whether compaction runs.", true),
  int(
    "log.tail.cache.bytes",
    "tailCacheBytes",
    "Bytes of the newest batches each partition keeps in memory so tailing reads skip the disk.",
    4 * 1024 * 1024,
    0,
    1 << 30,
  ),
  int(
    "log.tail.cache.total.bytes",
    "tailCacheTotalBytes",
    "Bytes all partitions' tail caches hold together; past it the least recently used partition's oldest cached batches go first. With `log.tail.cache.bytes` per partition this bounds the cache whatever the partition count. 16 MiB holds what 1.2M records/s of 100 B write in about 130 ms, time enough for a consumer or follower at the head of the log; with 1,000 partitions written at once, 64 MiB of cache took a Bun broker's RSS peak from ~236 to ~302 MiB (issue 20).",
    16 * 1024 * 1024,
    0,
    2 ** 40,
  ),
  int(
    "fetch.memory.max.bytes",
    "fetchMemoryBytesMax",
    "Bytes all Fetch responses, Subscribe and Consume messages and replica-fetch responses being built and sent may hold together (a response counts four times its data: the read, the encoded message, the gRPC frame, the HTTP/2 stream's copy). A response is sized before it is read and waits for room; `max_bytes` is clamped to `fetch.response.max.bytes`, to a quarter of this and to `request.max.bytes`, except that the first batch is always returned whole. Consume and replica fetch wait for room as long as their stream lives (they send later or less, never fail).",
    64 * 1024 * 1024,
    1024 * 1024,
    2 ** 40,
  ),
  int(
    "fetch.response.max.bytes",
    "fetchResponseBytesMax",
    "Most bytes of record batches one Fetch response or Subscribe message carries: a client's `max_bytes` is clamped to it (and to a quarter of `fetch.memory.max.bytes`, and to `request.max.bytes`), except that the first batch is always returned whole (Kafka's KIP-74). Smaller messages leave room in `fetch.memory.max.bytes` for several at once, so a stream reads its next message while one is sent; at 16 MiB, a Subscribe over 1,000 partitions held the whole budget with each message (issue 20). Consume messages (1 MiB) and replica fetch (`max_bytes` of the follower, 10 MiB by default) are not clamped by it.",
    4 * 1024 * 1024,
    1024,
    2 ** 31 - 1,
  ),
  int(
    "request.max.bytes",
    "requestBytesMax",
    "Largest gRPC message the broker accepts or sends, in bytes: a whole request or response, which may carry many record batches (one batch is limited by the topic's `max.message.bytes`).",
    64 * 1024 * 1024,
    1024,
    2 ** 31 - 1,
  ),
  choice(
    "produce.validation",
    "produceValidation",
    "How much of a producer's `record_batch` the leader checks before appending it: `full` decompresses compressed batches (at most `request.max.bytes` of records) and walks every record (lengths, varints, keys on compacted topics, header counts, offset and timestamp deltas); `structure` checks only the header, CRC and, uncompressed, the record frames (trusted producers). The stored bytes are the bytes sent either way.",
    "full",
    ["full", "structure"] as const,
  ),
  int(
    "metrics.port",
    "metricsPort",
    "Deprecated: use http.listen. HTTP port on 127.0.0.1 serving the HTTP listener (metrics at /metrics) when http.listen is empty; 0 picks a free port, -1 disables. A warning is logged when set.",
    -1,
    -1,
    65535,
  ),
  int("num.partitions", "numPartitions", "Partitions of a topic created without a count.", 1, 1, 100_000),
  int(
    "max.connections",
    "maxConnections",
    "Connections (client and peer) the gRPC listener keeps open at once; one more is refused with GOAWAY. Each holds a file descriptor, reserved out of the open-file limit.",
    256,
    1,
    1_000_000,
  ),
  int(
    "max.partitions",
    "maxPartitions",
    "Partition replicas this broker may hold; new partitions are placed on other brokers once it is full, and a CreateTopics or CreatePartitions that fits on no set of brokers fails with INVALID_PARTITIONS. The broker lowers it to what its open-file limit (ulimit -n) leaves after max.connections, log.file.handles.max and 64 for itself, at one descriptor per partition.",
    10_000,
    1,
    1_000_000,
  ),
  int(
    "log.file.handles.max",
    "logFileHandlesMax",
    "Descriptors kept open for idle (not active) log segments, least recently used closed first; each partition's active segment stays open besides.",
    128,
    1,
    1_000_000,
  ),
  int(
    "producer.id.expiration.ms",
    "producerIdExpirationMs",
    "How long a partition keeps an idle idempotent producer's sequence state.",
    86_400_000,
    1,
    MAX_SAFE,
  ),
  // TLS (issue 13): the client listener's and the internal listener's certificates, re-read when they change.
  str(
    "tls.cert.file",
    "tlsCertFile",
    "PEM certificate chain of the client gRPC listener (`listen`); set with `tls.key.file`, it serves TLS only. Empty: plaintext. Re-read when it changes (rotation without restart).",
    "",
    FILE_OR_EMPTY,
    "empty or a file path",
  ),
  str("tls.key.file", "tlsKeyFile", "PEM private key of `tls.cert.file`.", "", FILE_OR_EMPTY, "empty or a file path"),
  str(
    "tls.ca.file",
    "tlsCaFile",
    "PEM CA bundle that client certificates must chain to (`tls.client.auth` request or require).",
    "",
    FILE_OR_EMPTY,
    "empty or a file path",
  ),
  choice(
    "tls.client.auth",
    "tlsClientAuth",
    "Client certificates on the TLS client listener: `none` (not asked), `request` (asked; one of `tls.ca.file` identifies the caller, none is accepted) or `require` (a certificate of `tls.ca.file` or no connection).",
    "none",
    ["none", "request", "require"] as const,
  ),
  str(
    "internal.tls.cert.file",
    "internalTlsCertFile",
    "PEM certificate chain this node presents to other nodes (internal listener and internal clients). Set with `internal.tls.key.file` and `internal.tls.ca.file`, node-to-node traffic is mutual TLS. Certificates name nodes by DNS name.",
    "",
    FILE_OR_EMPTY,
    "empty or a file path",
  ),
  str(
    "internal.tls.key.file",
    "internalTlsKeyFile",
    "PEM private key of `internal.tls.cert.file`.",
    "",
    FILE_OR_EMPTY,
    "empty or a file path",
  ),
  str(
    "internal.tls.ca.file",
    "internalTlsCaFile",
    "PEM CA bundle of the cluster: a node accepts only peers with a certificate of it, and checks the nodes it calls against it.",
    "",
    FILE_OR_EMPTY,
    "empty or a file path",
  ),
  // Lagging partition leaders (issue 14's cluster soak): waiting for a producer id.
  int(
    "producer.id.metadata.wait.ms",
    "producerIdMetadataWaitMs",
    "How long a partition leader waits for its metadata to learn an idempotent producer's id or epoch that it does not know yet (issued by the controller, not applied here yet) before answering UNKNOWN_PRODUCER_ID or INVALID_PRODUCER_EPOCH; the request's `timeout_ms` bounds it too. 0: judged at once.",
    5_000,
    0,
    300_000,
  ),
  // Authentication and authorization (issue 13, DESIGN.md "Security").
  listOf(
    "auth.methods",
    "authMethods",
    "How client listeners authenticate callers: `password` (call metadata `authorization: Basic base64(name:password)`, checked against the SCRAM credentials in the metadata log) and/or `mtls` (the principal is `User:<CN>` of the client certificate; needs tls.client.auth request or require). Empty: no authentication, every caller is User:ANONYMOUS.",
    ["password", "mtls"] as const,
  ),
  bool(
    "auth.allow.plaintext.passwords",
    "authAllowPlaintextPasswords",
    "Accept `authorization: Basic` credentials on a listener without TLS. Off: such a call is refused with UNAUTHENTICATED, since the password would cross the network in clear.",
    false,
  ),
  bool(
    "allow.anonymous.remote",
    "allowAnonymousRemote",
    "Protected mode: with auth.methods empty, a client listener on an address other than loopback refuses to start unless this is true (anyone who reaches it could then do anything).",
    false,
  ),
  bool(
    "authorizer.enable",
    "authorizerEnable",
    "Check every request against the ACLs in the metadata log (Kafka's model: no matching ACL = denied, DENY wins). Off: every authenticated caller may do everything.",
    false,
  ),
  str(
    "super.users",
    "superUsers",
    "Principals the authorizer always allows, `User:a,User:b`. Empty: none.",
    "",
    /^$|^User:[^,\s]+(,User:[^,\s]+)*$/,
    "empty or User:NAME,User:NAME,...",
  ),
  // security, users (issue 13)
  str(
    "auth.bootstrap.users.file",
    "authBootstrapUsersFile",
    "A file of `name:password` lines (blank lines and `#` comments skipped) turned into SCRAM-SHA-256 and SCRAM-SHA-512 credentials once, when the cluster is created (by its first controller, before `__consumer_offsets` exists); only the salted credentials are stored. Empty: no users are created.",
    "",
    /^[^\0]*$/,
    "a file path, or empty for none",
  ),
  // ---- client quotas (issue 13) ----
  int(
    "quota.window.num",
    "quotaWindowNum",
    "Samples a client-quota rate is measured over (Kafka's quota.window.num); the throttle time of a client over its producer_byte_rate or consumer_byte_rate is at most this many samples.",
    11,
    2,
    1000,
  ),
  int(
    "quota.window.size.seconds",
    "quotaWindowSizeSeconds",
    "Length of one client-quota sample, in seconds (Kafka's quota.window.size.seconds).",
    1,
    1,
    3600,
  ),
  // Cluster membership (issue 13): the internal listener and how members authenticate.
  str(
    "internal.listen",
    "internalListen",
    "Address of the internal listener, HOST:PORT: node-to-node calls (Raft, registration, heartbeats, metadata and replica fetches, forwarded requests) are served there only, and refused on `listen`. Empty: none; members then call each other on `listen`, still authenticated.",
    "",
    /^$|^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/,
    "empty or HOST:PORT",
  ),
  str(
    "internal.advertised.address",
    "internalAdvertisedAddress",
    "HOST:PORT other nodes reach this node's internal listener at (registered with the controller). Empty: the `internal.listen` address. The addresses in `controller.quorum.voters` are the voters' internal addresses when they have an internal listener.",
    "",
    /^$|^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/,
    "empty or HOST:PORT",
  ),
  {
    ...str(
      "cluster.secret",
      "clusterSecret",
      "Secret every member of the cluster shares: each node-to-node call is signed with an HMAC keyed by it (with a timestamp and a nonce, so a recorded call cannot be replayed), and a call not signed by a member is refused. Prefer the environment variable RILL_CLUSTER_SECRET or `cluster.secret.file` to a config file. Never shown or logged. Empty: none.",
      "",
      /^$|^\S{16,1024}$/,
      "empty, or 16 to 1024 characters without spaces",
    ),
    sensitive: true,
  },
  str(
    "cluster.secret.file",
    "clusterSecretFile",
    "File holding `cluster.secret` (its first line), e.g. written with mode 0600 by `rill cluster start`. Empty: none.",
    "",
    /^.{0,4096}$/,
    "empty or a file path",
  ),
  // Kafka listener (issue 15).
  str(
    "kafka.listen",
    "kafkaListen",
    "Address the Kafka wire-protocol listener serves on, HOST:PORT (`npm start` sets 127.0.0.1:9092; `rill cluster start` gives each node its own port). Empty: no Kafka listener. TLS with the same `tls.*` files as the gRPC listener.",
    "",
    /^$|^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/,
    "empty or HOST:PORT",
  ),
  str(
    "kafka.advertised.address",
    "kafkaAdvertisedAddress",
    "HOST:PORT Kafka clients are told to reach this node at (Metadata, FindCoordinator). Empty: the address `kafka.listen` bound.",
    "",
    /^$|^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/,
    "empty or HOST:PORT",
  ),
  bool(
    "auto.create.topics.enable",
    "autoCreateTopicsEnable",
    "Whether a Kafka Metadata request that names an unknown topic (and allows it) creates it, with `num.partitions` partitions and the replication factor CreateTopics gives a topic created without one, as Kafka does.",
    true,
  ),
  // Classic consumer groups (issue 15).
  int(
    "group.initial.rebalance.delay.ms",
    "groupInitialRebalanceDelayMs",
    "How long the first rebalance of an empty classic (JoinGroup) group waits for more members to join; each new member restarts the wait, up to the rebalance timeout. Kafka's key and default.",
    3000,
    0,
    1_800_000,
  ),
  // Observability (issue 16): the HTTP listener and the logs.
  str(
    "http.listen",
    "httpListen",
    "Address of the HTTP listener, HOST:PORT: Prometheus metrics at /metrics, /healthz and /readyz (never authenticated), the web console at / and its JSON API under /api/v1/ (authenticated when auth.methods is set). HTTPS with the tls.* files when tls.cert.file is set. Any address may be bound; without auth.methods, on an address other than loopback the console is served only with allow.anonymous.remote=true. Empty: no HTTP listener (`npm start` sets 127.0.0.1:9644; `rill cluster start` gives node i port base-port + 30 + i - 1). Replaces metrics.port, which is still read (127.0.0.1:<port>) when this is empty.",
    "",
    /^$|^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/,
    "empty or HOST:PORT",
  ),
  choice(
    "log.level",
    "logLevel",
    "Least severe log lines written: trace, debug, info (every topic, partition, config, ACL, user, leader, ISR, reassignment and group-membership change), warn, error, fatal, or silent.",
    "info",
    ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const,
  ),
  choice(
    "log.format",
    "logFormat",
    "How log lines are written to stdout: `json` (one pino JSON object per line), `pretty` (colored, human-readable, by pino-pretty), or `auto`: pretty when stdout is a terminal, JSON otherwise.",
    "auto",
    ["auto", "json", "pretty"] as const,
  ),
  // Memory (issue 14): garbage collection paced by buffer memory.
  int(
    "gc.external.step.bytes",
    "gcExternalStepBytes",
    "Under Bun: a full, synchronous garbage collection runs once the bytes its allocator has handed out (the JavaScript heap, the buffers of requests, batches and responses, native memory) have grown by this many since their lowest point after the last one. A backstop behind `gc.bun.eden.ratio`, whose concurrent collections keep steady load below it (none in 30 s at 100k records/s): each of these stops the broker for 25-100 ms. Without either, Bun lets hundreds of MiB of dead request buffers pile up under heavy produce. 0: never.",
    64 * 1024 * 1024,
    0,
    2 ** 40,
  ),
  int(
    "gc.memory.soft.limit.bytes",
    "gcMemorySoftLimitBytes",
    "Under Bun: a soft limit on the bytes its allocator has handed out (about the resident size), like Go's GOMEMLIMIT. At or above it, the synchronous full collection of `gc.external.step.bytes` runs after an eighth of that step's growth instead of all of it, at most once per `gc.memory.soft.interval.ms`: the JavaScript heap's sawtooth is cut short near the limit, and below it nothing changes (no added pause). Not a hard limit: live memory above it (requests in flight, the caches) stays, so a soft collection that freed less than its step doubles the interval, up to 16 times, until one frees a step again. 0: none.",
    SOFT_LIMIT_DEFAULT,
    0,
    2 ** 40,
  ),
  int(
    "gc.memory.soft.interval.ms",
    "gcMemorySoftIntervalMs",
    "Least time between two collections started by `gc.memory.soft.limit.bytes` (each stops the broker for 25-100 ms), so a broker whose live memory sits above the limit cannot spend its time collecting.",
    1000,
    0,
    2 ** 31 - 1,
  ),
  num(
    "gc.bun.eden.ratio",
    "gcBunEdenRatio",
    "Under Bun, started by `rill broker start`: JavaScriptCore's `minEdenToOldGenerationRatio`. Its collector schedules a full (concurrent) collection once the room left for new objects falls below this fraction of the heap's limit; at its default, 1/3, the buffers of requests that outlived one young collection pile up as old garbage (broker RSS 238-319 MiB at 100k records/s), at 0.9 they go within a few young collections (149-158 MiB), without the pauses of a synchronous collection. Applied by restarting the process in place (execve) with `BUN_JSC_minEdenToOldGenerationRatio` set, unless that variable is set already. 0: JavaScriptCore's own.",
    0.9,
    0,
    1,
  ),
  bool(
    "gc.bun.generational",
    "gcBunGenerational",
    "Under Bun, started by `rill broker start`: JavaScriptCore's generational collection (`useGenerationalGC`). Off, every collection is a full, concurrent one: the least memory (broker RSS 139-142 MiB at 100k records/s, against 149-158 with it), at the cost of latency (end-to-end p99 26 ms against 7.7 in the same run, medians of 3) and CPU. Applied as `gc.bun.eden.ratio` is, with `BUN_JSC_useGenerationalGC`.",
    true,
  ),
  int(
    "gc.bun.timer.interval.ms",
    "gcBunTimerIntervalMs",
    "Under Bun, started by `rill broker start`: the period of Bun's own collection timer (its GarbageCollectionController, `BUN_GC_TIMER_INTERVAL`), which collects whenever the heap grew since it last fired, so that a process that stops allocating gives memory back. A busy broker's heap always grows, so at Bun's 1000 ms it stops the broker for 5-11 ms of CPU every second (10000 removes those stalls, but A/B runs of the end-to-end p99 at 100k records/s on a shared machine were mixed, and p99.9 was worse: so the default stays Bun's own). JavaScriptCore's own collections (paced by allocation, `gc.bun.eden.ratio`) and `gc.external.step.bytes` still run. Applied as `gc.bun.eden.ratio` is. 0: off (`BUN_GC_TIMER_DISABLE`).",
    1000,
    0,
    3_600_000,
  ),
  int(
    "gc.heap.growing.percent",
    "gcHeapGrowingPercent",
    "Under Node: how far V8 lets its old generation grow past what the last full collection kept before it collects again (V8's `--heap-growing-percent`; 50 = 1.5 times). V8's own choice goes up to 4 times on a machine with more than 2 GiB for the heap, so a broker with 40 MiB of live objects reserved up to 170 MiB. 0: V8's own choice.",
    50,
    0,
    1000,
  ),
  // Transactions (issue 17).
  int(
    "transaction.max.timeout.ms",
    "transactionMaxTimeoutMs",
    "Longest transaction timeout a producer may ask for (InitProducerId's `transaction_timeout_ms`); a longer one is refused with INVALID_TRANSACTION_TIMEOUT.",
    900_000,
    1,
    2 ** 31 - 1,
  ),
  int(
    "transactional.id.expiration.ms",
    "transactionalIdExpirationMs",
    "A transactional id without an open transaction and without requests for this long is forgotten (its state in `__transaction_state` gets a tombstone).",
    604_800_000,
    1,
    2 ** 31 - 1,
  ),
  int(
    "transaction.state.log.replication.factor",
    "transactionStateLogReplicationFactor",
    "Replication factor of `__transaction_state`; capped at the number of controller voters. The topic is created once that many brokers are unfenced.",
    3,
    1,
    1000,
  ),
  int(
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transactionAbortTimedOutTransactionCleanupIntervalMs",
    "How often the transaction coordinator aborts transactions open longer than their timeout (and forgets expired transactional ids).",
    10_000,
    1,
    2 ** 31 - 1,
  ),
  // Racks (issue 21 item 5).
  str(
    "broker.rack",
    "brokerRack",
    "This broker's rack (or zone), registered with the controller: new partitions spread their replicas over racks, and with `replica.selector` = `rack-aware` consumers that give their rack read from an in-sync replica there (KIP-392). Empty: none.",
    "",
    /^[A-Za-z0-9._-]{0,64}$/,
    "empty, or up to 64 letters, digits, '.', '_' or '-'",
  ),
  choice(
    "replica.selector",
    "replicaSelector",
    "Where consumers read (Kafka's `replica.selector.class`): `leader` always from the leader; `rack-aware` points a fetch that names the client's rack (`rack_id`, Kafka's `client.rack`) at an in-sync follower in that rack when the leader is in another (the follower serves up to its high watermark).",
    "leader",
    ["leader", "rack-aware"] as const,
  ),
  // Partition reassignment (issue 21).
  int(
    "leader.replication.throttled.rate",
    "leaderReplicationThrottledRate",
    "Bytes per second this broker, as a leader, sends to the replicas being added by a partition reassignment that are not in sync yet (Kafka's throttle with `leader.replication.throttled.replicas` set to the moving replicas); in-sync replicas are never throttled. 0: no limit. A static setting: Rill has no dynamic broker configs yet, so a change needs a restart.",
    0,
    0,
    MAX_SAFE,
  ),
  int(
    "follower.replication.throttled.rate",
    "followerReplicationThrottledRate",
    "Bytes per second this broker fetches for the replicas it is being added as by a partition reassignment, until they are in sync (Kafka's throttle with `follower.replication.throttled.replicas` set to the moving replicas). 0: no limit. A static setting (a change needs a restart).",
    0,
    0,
    MAX_SAFE,
  ),
  // Eligible leader replicas (issue 21, KIP-966).
  bool(
    "eligible.leader.replicas.enable",
    "eligibleLeaderReplicasEnable",
    "Controller: replicas that leave an ISR smaller than min.insync.replicas stay eligible leaders (KIP-966), so an empty ISR elects one of them instead of staying offline or electing unclean; a broker that registers after an unclean shutdown leaves them. Read by the active controller.",
    true,
  ),
] as const;

/** A topic's effective configuration, as the code reads it (one property per key of `topicKeys`). */
export interface TopicConfig {
  cleanupPolicy: "delete" | "compact" | "compact,delete" | "delete,compact";
  compressionType: "producer" | "none" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd";
  deleteRetentionMs: number;
  flushMessages: number;
  flushMs: number;
  indexIntervalBytes: number;
  maxMessageBytes: number;
  timestampType: "CreateTime" | "LogAppendTime";
  minCleanableDirtyRatio: number;
  minCompactionLagMs: number;
  minInsyncReplicas: number;
  retentionBytes: number;
  retentionMs: number;
  segmentBytes: number;
  segmentMs: number;
  uncleanLeaderElectionEnable: boolean;
}

/** The broker's configuration (one property per key of `brokerKeys`). */
export interface BrokerConfig {
  dataDir: string;
  listen: string;
  advertisedAddress: string;
  nodeId: number;
  processRoles: "broker,controller" | "controller,broker" | "broker" | "controller";
  controllerQuorumVoters: string;
  clusterId: string;
  electionTimeoutMs: number;
  raftHeartbeatIntervalMs: number;
  snapshotIntervalRecords: number;
  brokerHeartbeatIntervalMs: number;
  brokerSessionTimeoutMs: number;
  offsetsTopicReplicationFactor: number;
  replicaLagTimeMaxMs: number;
  replicaFetchWaitMaxMs: number;
  retentionCheckIntervalMs: number;
  cleanerBackoffMs: number;
  cleanerEnable: boolean;
  tailCacheBytes: number;
  tailCacheTotalBytes: number;
  fetchMemoryBytesMax: number;
  fetchResponseBytesMax: number;
  requestBytesMax: number;
  produceValidation: "full" | "structure";
  metricsPort: number;
  numPartitions: number;
  producerIdExpirationMs: number;
  maxConnections: number;
  maxPartitions: number;
  logFileHandlesMax: number;
  // TLS (issue 13)
  tlsCertFile: string;
  tlsKeyFile: string;
  tlsCaFile: string;
  tlsClientAuth: "none" | "request" | "require";
  internalTlsCertFile: string;
  internalTlsKeyFile: string;
  internalTlsCaFile: string;
  // Lagging partition leaders: waiting for a producer id.
  producerIdMetadataWaitMs: number;
  // Authentication and authorization (issue 13).
  authMethods: ("password" | "mtls")[];
  authAllowPlaintextPasswords: boolean;
  allowAnonymousRemote: boolean;
  authorizerEnable: boolean;
  superUsers: string;
  // security, users (issue 13)
  authBootstrapUsersFile: string;
  // client quotas (issue 13)
  quotaWindowNum: number;
  quotaWindowSizeSeconds: number;
  // Cluster membership (issue 13).
  internalListen: string;
  internalAdvertisedAddress: string;
  clusterSecret: string;
  clusterSecretFile: string;
  // Kafka listener (issue 15).
  kafkaListen: string;
  kafkaAdvertisedAddress: string;
  autoCreateTopicsEnable: boolean;
  // Classic consumer groups (issue 15).
  groupInitialRebalanceDelayMs: number;
  // Observability (issue 16).
  httpListen: string;
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
  logFormat: "auto" | "json" | "pretty";
  // Memory (issue 14).
  gcExternalStepBytes: number;
  gcMemorySoftLimitBytes: number;
  gcMemorySoftIntervalMs: number;
  gcBunEdenRatio: number;
  gcBunGenerational: boolean;
  gcBunTimerIntervalMs: number;
  gcHeapGrowingPercent: number;
  // Transactions (issue 17).
  transactionMaxTimeoutMs: number;
  transactionalIdExpirationMs: number;
  transactionStateLogReplicationFactor: number;
  transactionAbortTimedOutTransactionCleanupIntervalMs: number;
  // Racks (issue 21 item 5).
  brokerRack: string;
  replicaSelector: "leader" | "rack-aware";
  // Partition reassignment (issue 21).
  leaderReplicationThrottledRate: number;
  followerReplicationThrottledRate: number;
  // Eligible leader replicas (issue 21, KIP-966).
  eligibleLeaderReplicasEnable: boolean;
}

function defaultsOf<T>(keys: readonly ConfigKey[]): T {
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k.prop] = k.default;
  return out as T;
}

/** Kafka's topic defaults with Rill's documented changes. */
export const defaultTopicConfig: Readonly<TopicConfig> = Object.freeze(defaultsOf<TopicConfig>(topicKeys));
/** Broker defaults: the embedded single node. */
export const defaultBrokerConfig: Readonly<BrokerConfig> = Object.freeze(defaultsOf<BrokerConfig>(brokerKeys));

const topicByName = new Map<string, ConfigKey>(topicKeys.map((k) => [k.name, k]));
const brokerByName = new Map<string, ConfigKey>(brokerKeys.map((k) => [k.name, k]));

/** A broker key that was renamed: its old name is refused, never read as an alias. */
export interface RenamedKey {
  readonly from: string;
  readonly to: string;
  /** Why the old name is refused rather than aliased. */
  readonly why: string;
}

/** Every renamed broker key (old names stay here for good, so they keep being refused). */
export const renamedBrokerKeys: readonly RenamedKey[] = [
  {
    from: "message.max.bytes",
    to: "request.max.bytes",
    why: "in Kafka message.max.bytes is the largest record batch (Rill's topic key max.message.bytes), so an alias would keep that trap",
  },
];
const renamedByName = new Map(renamedBrokerKeys.map((r) => [r.from, r]));

/** The environment variable of a broker key: `RILL_` + the name upper-cased, `.` -> `_`. */
export function envVarOf(keyName: string): string {
  return `RILL_${keyName.toUpperCase().replace(/\./g, "_")}`;
}

/**
 * The broker keys set in `env` (`RILL_*` variables that name one; others are ignored), as raw
 * key -> value pairs. The variable of a renamed key throws INVALID_CONFIG naming both variables.
 */
export function brokerConfigFromEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  for (const r of renamedBrokerKeys) {
    const v = env[envVarOf(r.from)];
    if (v !== undefined && v !== "") throw renamedError(envVarOf(r.from), envVarOf(r.to), r.why);
  }
  const out: Record<string, string> = {};
  for (const k of brokerKeys) {
    const v = env[envVarOf(k.name)];
    if (v !== undefined && v !== "") out[k.name] = v;
  }
  return out;
}

function renamedError(from: string, to: string, why: string): Error {
  return rillError("INVALID_CONFIG", `${from}: renamed ${to}; the old name is refused, not aliased, because ${why}`);
}

/** Looks a topic key up by its Kafka name. */
export function topicKey(name: string): ConfigKey | undefined {
  return topicByName.get(name);
}

function parseOne(key: ConfigKey, raw: unknown): unknown {
  const r = key.schema.safeParse(raw);
  if (r.success) return r.data;
  const why = r.error.issues.map((i) => i.message).join("; ");
  if (key.sensitive === true) throw rillError("INVALID_CONFIG", `${key.name}: ${why} (value not shown: it is a secret)`);
  throw rillError("INVALID_CONFIG", `${key.name}: ${why} (got ${JSON.stringify(raw)})`);
}

function parseInto<T>(keys: Map<string, ConfigKey>, raw: Record<string, unknown>, base: T, what: string): T {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [name, value] of Object.entries(raw)) {
    const key = keys.get(name);
    const renamed = what === "broker" ? renamedByName.get(name) : undefined;
    if (renamed) throw renamedError(renamed.from, renamed.to, renamed.why);
    if (!key) throw rillError("INVALID_CONFIG", `${name}: unknown ${what} config key`);
    out[key.prop] = parseOne(key, value);
  }
  return out as T;
}

/**
 * Applies topic overrides (Kafka names → raw values) on top of `base`. Unknown keys and bad values
 * throw INVALID_CONFIG naming the key; cross-field rules are checked after.
 */
export function parseTopicConfig(raw: Record<string, unknown>, base: Readonly<TopicConfig> = defaultTopicConfig): TopicConfig {
  const cfg = parseInto<TopicConfig>(topicByName, raw, base as TopicConfig, "topic");
  validateTopicConfig(cfg);
  return cfg;
}

/** Cross-field rules of a topic configuration. */
export function validateTopicConfig(cfg: TopicConfig): void {
  if (
    cfg.cleanupPolicy !== "compact" &&
    cfg.cleanupPolicy.includes("compact") &&
    cfg.retentionMs !== UNLIMITED &&
    cfg.minCompactionLagMs > cfg.retentionMs
  ) {
    throw rillError(
      "INVALID_CONFIG",
      `min.compaction.lag.ms: ${cfg.minCompactionLagMs} is larger than retention.ms ${cfg.retentionMs}, so records would be deleted before they could be compacted`,
    );
  }
}

/** Applies broker settings (names as in the table) on top of `base`. */
export function parseBrokerConfig(raw: Record<string, unknown>, base: Readonly<BrokerConfig> = defaultBrokerConfig): BrokerConfig {
  return parseInto<BrokerConfig>(brokerByName, raw, base as BrokerConfig, "broker");
}

/** A topic configuration as the string map that DescribeConfigs answers. */
export function describeTopicConfig(cfg: Readonly<TopicConfig>): Record<string, string> {
  const out: Record<string, string> = {};
  const rec = cfg as unknown as Record<string, unknown>;
  for (const k of topicKeys) out[k.name] = String(rec[k.prop]);
  return out;
}

/** True when the topic compacts. */
export function isCompacted(cfg: Readonly<TopicConfig>): boolean {
  return cfg.cleanupPolicy.includes("compact");
}

/** True when the topic deletes by retention. */
export function isDeleting(cfg: Readonly<TopicConfig>): boolean {
  return cfg.cleanupPolicy.includes("delete");
}

/**
 * The test profile: tiny segments and indexes so that tests walk the roll-over, index and
 * retention paths with a few kilobytes of data.
 */
export const tinyTopicConfig: Readonly<TopicConfig> = Object.freeze({
  ...defaultTopicConfig,
  segmentBytes: 4096,
  indexIntervalBytes: 256,
  maxMessageBytes: 4096,
});

/** One controller voter: its node id and gRPC address. */
export interface QuorumVoter {
  readonly id: number;
  readonly address: string;
}

/** The voters of `controller.quorum.voters`; the node itself at `listen` when it is empty. */
export function quorumVoters(cfg: Pick<BrokerConfig, "controllerQuorumVoters" | "nodeId" | "listen">): QuorumVoter[] {
  if (cfg.controllerQuorumVoters === "") return [{ id: cfg.nodeId, address: cfg.listen }];
  const voters = cfg.controllerQuorumVoters.split(",").map((v) => {
    const at = v.indexOf("@");
    return { id: Number(v.slice(0, at)), address: v.slice(at + 1) };
  });
  const ids = new Set<number>();
  for (const v of voters) {
    if (!Number.isSafeInteger(v.id) || v.id < 1)
      throw rillError("INVALID_CONFIG", `controller.quorum.voters: voter id ${v.id} must be a positive integer`);
    if (ids.has(v.id)) throw rillError("INVALID_CONFIG", `controller.quorum.voters: voter id ${v.id} appears twice`);
    ids.add(v.id);
  }
  return voters;
}

/** Whether the node runs the controller role / the broker role. */
export function hasRole(cfg: Pick<BrokerConfig, "processRoles">, role: "broker" | "controller"): boolean {
  return cfg.processRoles.split(",").includes(role);
}

/** Cross-field rules of a broker configuration; throws INVALID_CONFIG naming the key. */
export function validateBrokerConfig(cfg: BrokerConfig): void {
  if (!hasRole(cfg, "controller") && cfg.controllerQuorumVoters === "") {
    throw rillError(
      "INVALID_CONFIG",
      `controller.quorum.voters: node ${cfg.nodeId} runs only the broker role, so it needs the controller quorum to follow (ID@HOST:PORT,...)`,
    );
  }
  const voters = quorumVoters(cfg);
  const isVoter = voters.some((v) => v.id === cfg.nodeId);
  // A node with the controller role that is not among the voters starts as an observer of the
  // quorum and becomes a voter with `rill cluster add-controller` (issue 21, KIP-853).
  if (!hasRole(cfg, "controller") && isVoter) {
    throw rillError(
      "INVALID_CONFIG",
      `process.roles: node ${cfg.nodeId} is a voter in controller.quorum.voters but does not run the controller role`,
    );
  }
  if (cfg.nodeId < 1 && cfg.controllerQuorumVoters !== "")
    throw rillError("INVALID_CONFIG", `node.id: ${cfg.nodeId} must be positive in a cluster`);
  if (cfg.electionTimeoutMs < 2 * cfg.raftHeartbeatIntervalMs) {
    throw rillError(
      "INVALID_CONFIG",
      `controller.quorum.election.timeout.ms: ${cfg.electionTimeoutMs} must be at least twice controller.quorum.heartbeat.interval.ms (${cfg.raftHeartbeatIntervalMs})`,
    );
  }
  validateMembership(cfg);
  if (cfg.brokerSessionTimeoutMs <= cfg.brokerHeartbeatIntervalMs) {
    throw rillError(
      "INVALID_CONFIG",
      `broker.session.timeout.ms: ${cfg.brokerSessionTimeoutMs} must be larger than broker.heartbeat.interval.ms (${cfg.brokerHeartbeatIntervalMs})`,
    );
  }
  validateTlsConfig(cfg);
  validateSecurityConfig(cfg);
}

/** TLS (issue 13): the keys that go together. Whether the files are usable is checked when they are read (src/rpc/tls.ts). */
function validateTlsConfig(cfg: BrokerConfig): void {
  if (cfg.tlsCertFile !== "" && cfg.tlsKeyFile === "") throw rillError("INVALID_CONFIG", "tls.key.file: must be set with tls.cert.file");
  if (cfg.tlsKeyFile !== "" && cfg.tlsCertFile === "") throw rillError("INVALID_CONFIG", "tls.cert.file: must be set with tls.key.file");
  if (cfg.tlsClientAuth !== "none" && cfg.tlsCertFile === "")
    throw rillError("INVALID_CONFIG", `tls.client.auth: ${cfg.tlsClientAuth} needs TLS on the listener (tls.cert.file and tls.key.file)`);
  if (cfg.tlsClientAuth !== "none" && cfg.tlsCaFile === "")
    throw rillError("INVALID_CONFIG", `tls.client.auth: ${cfg.tlsClientAuth} needs tls.ca.file, the CA that client certificates chain to`);
  const internal = [
    ["internal.tls.cert.file", cfg.internalTlsCertFile],
    ["internal.tls.key.file", cfg.internalTlsKeyFile],
    ["internal.tls.ca.file", cfg.internalTlsCaFile],
  ] as const;
  const unset = internal.filter(([, v]) => v === "");
  if (unset.length > 0 && unset.length < internal.length)
    throw rillError(
      "INVALID_CONFIG",
      `${unset[0]![0]}: internal mutual TLS needs all of internal.tls.cert.file, internal.tls.key.file and internal.tls.ca.file`,
    );
}

/**
 * Cluster membership (issue 13): a node that may have other members (any node given
 * `controller.quorum.voters`) must be able to authenticate them — by `cluster.secret` (or its
 * file), or by internal mutual TLS on `internal.listen`.
 */
function validateMembership(cfg: BrokerConfig): void {
  if (cfg.clusterSecret !== "" && cfg.clusterSecretFile !== "")
    throw rillError("INVALID_CONFIG", "cluster.secret.file: set either cluster.secret or cluster.secret.file, not both");
  if (cfg.internalAdvertisedAddress !== "" && cfg.internalListen === "")
    throw rillError(
      "INVALID_CONFIG",
      "internal.advertised.address: set, but internal.listen is empty (there is no internal listener to advertise)",
    );
  if (cfg.controllerQuorumVoters === "") return;
  if (hasMembershipMethod(cfg)) return;
  throw rillError(
    "INVALID_CONFIG",
    `cluster.secret: node ${cfg.nodeId} is part of a cluster (controller.quorum.voters is set), so it must authenticate the other members: set cluster.secret (or RILL_CLUSTER_SECRET, or cluster.secret.file) to the secret all members share, or internal mutual TLS on internal.listen; without one, anyone who reaches the node could send it Raft and registration calls`,
  );
}

/** Whether the node has a way to authenticate other members: a shared secret, or internal mutual TLS on an internal listener. */
export function hasMembershipMethod(cfg: BrokerConfig): boolean {
  const internalTls = cfg.internalTlsCertFile !== "" && cfg.internalTlsKeyFile !== "" && cfg.internalTlsCaFile !== "";
  return cfg.clusterSecret !== "" || cfg.clusterSecretFile !== "" || (internalTls && cfg.internalListen !== "");
}

/** True when HOST:PORT names a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackListen(hostPort: string): boolean {
  const host = hostPort
    .replace(/:\d+$/, "")
    .replace(/^\[(.*)\]$/, "$1")
    .toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === "::ffff:127.0.0.1";
}

/**
 * Protected mode for one client listener (`key` = its config key): without authentication, a
 * listener on a non-loopback address is refused unless allow.anonymous.remote says so.
 */
export function checkProtectedMode(cfg: Pick<BrokerConfig, "authMethods" | "allowAnonymousRemote">, key: string, hostPort: string): void {
  if (cfg.authMethods.length > 0 || cfg.allowAnonymousRemote || isLoopbackListen(hostPort)) return;
  throw rillError(
    "INVALID_CONFIG",
    `${key}: ${hostPort} is reachable from other machines but auth.methods is empty, so anyone could act as User:ANONYMOUS. Set auth.methods=password (or mtls), listen on 127.0.0.1, or set allow.anonymous.remote=true to accept anonymous remote callers`,
  );
}

/** Cross-field rules of the authentication and authorization keys (issue 13). */
function validateSecurityConfig(cfg: BrokerConfig): void {
  checkProtectedMode(cfg, "listen", cfg.listen);
  if (new Set(cfg.authMethods).size !== cfg.authMethods.length)
    throw rillError("INVALID_CONFIG", `auth.methods: ${cfg.authMethods.join(",")} names a method twice`);
  if (cfg.authMethods.includes("mtls") && cfg.tlsClientAuth === "none")
    throw rillError(
      "INVALID_CONFIG",
      "auth.methods: mtls takes the principal from the client's certificate, so tls.client.auth must be request or require (with tls.ca.file)",
    );
}
