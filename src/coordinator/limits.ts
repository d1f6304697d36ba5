/**
 * Every bound of the group coordinator, in one place. Requests beyond a bound are refused with a
 * catalog error that names the field; nothing stored is touched.
 */

/** Longest group id, in characters (as in the proto: 1 to 249). */
export const GROUP_ID_LENGTH_MAX = 249;
/** Longest member id a client may choose, in characters. */
export const MEMBER_ID_LENGTH_MAX = 128;
/** Longest static instance id, in characters. */
export const INSTANCE_ID_LENGTH_MAX = 249;
/** Longest client id or client host, in characters. */
export const CLIENT_ID_LENGTH_MAX = 255;
/** Groups one coordinator holds. */
export const GROUPS_MAX = 10_000;
/** Members of one group (static members away included). */
export const MEMBERS_PER_GROUP_MAX = 1_000;
/** Topics in one member's subscription. */
export const TOPICS_PER_SUBSCRIPTION_MAX = 100;
/** Partitions of all topics a group subscribes to, when a member changes its subscription. */
export const SUBSCRIBED_PARTITIONS_MAX = 100_000;
/** Offsets in one commit, fetch, reset or offset delete. */
export const OFFSETS_PER_REQUEST_MAX = 10_000;
/** Group ids in one describe or delete. */
export const GROUPS_PER_REQUEST_MAX = 1_000;
/** Longest metadata string committed with an offset (Kafka's offset.metadata.max.bytes), in characters. */
export const OFFSET_METADATA_LENGTH_MAX = 4096;
/** Session timeout of a member that asks for none. */
export const SESSION_TIMEOUT_DEFAULT_MS = 45_000;
/** Shortest session timeout a member may ask for (Kafka's group.min.session.timeout.ms). */
export const SESSION_TIMEOUT_MIN_MS = 6_000;
/** Longest session timeout a member may ask for (Kafka's group.max.session.timeout.ms). */
export const SESSION_TIMEOUT_MAX_MS = 1_800_000;
/** Longest rebalance timeout (time to give up revoked partitions) a member may ask for. */
export const REBALANCE_TIMEOUT_MAX_MS = 1_800_000;
/** How long an empty classic group's first rebalance waits for more members (Kafka's default). */
export const INITIAL_REBALANCE_DELAY_DEFAULT_MS = 3_000;
/** How often members are told to heartbeat. */
export const HEARTBEAT_INTERVAL_DEFAULT_MS = 5_000;
