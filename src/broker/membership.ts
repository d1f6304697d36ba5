/**
 * The broker's cluster membership (issue 13; DESIGN.md "Security"), resolved from its
 * configuration before anything listens:
 *  - the shared secret (`cluster.secret`, RILL_CLUSTER_SECRET, or `cluster.secret.file`),
 *    turned into the signer of this node's internal calls and the verifier of everyone else's;
 *  - internal mutual TLS (`internal.tls.*`, rpc/tls.ts): on the internal listener a peer whose
 *    certificate the cluster CA signed is a member (the listener refuses any other connection);
 *  - the policy of the client listener (internal services refused to non-members there; all of
 *    them on a single node, which has no members) and, with `internal.listen`, of the internal
 *    listener (every call needs a member);
 *  - a log line per refused call (rate-limited, so a flood of forged calls cannot flood the log),
 *    which never shows the secret.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { systemClock } from "../base/clock.ts";
import { rillError } from "../base/errors.ts";
import type { BrokerConfig } from "../config/schema.ts";
import type { MemberPolicy } from "../rpc/member-auth.ts";
import type { ServerMembership } from "../rpc/server.ts";
import { internalTlsEnabled } from "../rpc/tls.ts";
import { MemberSigner, MemberVerifier } from "../security/member-auth.ts";
import type { BrokerLog } from "./log.ts";

/** What the listeners and the internal clients of one node need. */
export interface Membership {
  /** Signs this node's internal calls; undefined without a secret. */
  readonly signer: MemberSigner | undefined;
  /** The client listener's membership. */
  readonly server: ServerMembership;
  /** The internal listener's policy; null without `internal.listen`. */
  readonly internal: MemberPolicy | null;
}

/** The secret of `cfg`: `cluster.secret`, or the first line of `cluster.secret.file`; "" for none. */
export function clusterSecretOf(cfg: Pick<BrokerConfig, "clusterSecret" | "clusterSecretFile">): string {
  if (cfg.clusterSecretFile === "") return cfg.clusterSecret;
  let text: string;
  try {
    text = fs.readFileSync(cfg.clusterSecretFile, "utf8");
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw rillError("INVALID_CONFIG", `cluster.secret.file: cannot read ${cfg.clusterSecretFile}: ${why}`);
  }
  const secret = (text.split(/\r?\n/)[0] ?? "").trim();
  if (!/^\S{16,1024}$/.test(secret))
    throw rillError(
      "INVALID_CONFIG",
      `cluster.secret.file: the first line of ${cfg.clusterSecretFile} must be 16 to 1024 characters without spaces`,
    );
  return secret;
}

/** One log line per refused call, at most one a second (the others counted in the next line). */
function refusalLog(log: BrokerLog): (path: string, peer: string, reason: string) => void {
  let last = 0;
  let suppressed = 0;
  return (path, peer, reason) => {
    const now = Date.now();
    if (now - last < 1000) {
      suppressed++;
      return;
    }
    last = now;
    log.warn({ method: path, peer, reason, suppressed }, "refused an internal call: not an authenticated cluster member");
    suppressed = 0;
  };
}

/** The membership of a node with configuration `cfg` (validated). */
export function membershipOf(cfg: BrokerConfig, log: BrokerLog): Membership {
  const secret = clusterSecretOf(cfg);
  const signer =
    secret === "" ? undefined : new MemberSigner(secret, cfg.nodeId, systemClock, () => crypto.randomBytes(16).toString("hex"));
  // One verifier for both listeners: a call recorded on one port is a replay on the other.
  const verifier = secret === "" ? null : new MemberVerifier(secret, systemClock);
  const onRefused = refusalLog(log);
  const single = cfg.controllerQuorumVoters === "";
  const policy: MemberPolicy = {
    verifier: single ? null : verifier,
    mtls: false,
    membersOnly: false,
    ...(single ? { refuseInternal: "a single node serves no internal call (it has no cluster members)" } : {}),
    onRefused,
  };
  const internalListener = cfg.internalListen !== "";
  return {
    signer: single ? undefined : signer,
    server: { policy, internalListener, signer: single ? undefined : signer },
    // With internal mutual TLS the listener accepts only peers with a certificate of the cluster CA.
    internal: internalListener ? { ...policy, membersOnly: true, mtls: !single && internalTlsEnabled(cfg) } : null,
  };
}
