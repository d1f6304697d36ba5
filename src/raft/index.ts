/**
 * The Raft core's public API: a pure state machine (RaftNode), its storage interface and
 * in-memory twin, the message types, and the wire codec. See README.md.
 */
export { RaftNode, type RaftStatus } from "./node.ts";
export type { ProposeResult, RaftConfig } from "./raft.ts";
export { MemoryStorage, type InitialState, type RaftStorage } from "./storage.ts";
export { decodeMessage, encodeMessage, RAFT_CODEC_VERSION } from "./codec.ts";
export { validateMessage } from "./validate.ts";
export {
  applyConfChange,
  type ConfChange,
  type Configuration,
  decodeVoterSet,
  encodeVoterSet,
  snapshotVoters,
  type VoterInfo,
} from "./config.ts";
export * from "./types.ts";
