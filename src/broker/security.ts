/**
 * The broker's trust stage: the authenticator and the access checks of its client listeners,
 * built from the configuration (`auth.*`, `authorizer.enable`, `super.users`) over the metadata
 * store (SCRAM credentials and ACL bindings live in the image).
 */
import { systemClock } from "../base/clock.ts";
import type { Random } from "../base/random.ts";
import type { BrokerConfig } from "../config/schema.ts";
import type { MetadataImage } from "../metadata/image.ts";
import type { Principal, ScramCredential } from "../metadata/security-types.ts";
import type { MetadataChange } from "../metadata/store.ts";
import { grpcAuthenticate } from "../rpc/authenticate.ts";
import type { Authenticate } from "../rpc/call-context.ts";
import { Authorizer } from "../security/acl.ts";
import { Authenticator } from "../security/authenticator.ts";
import { verifyPasswordAsync } from "../security/scram.ts";
import { Access } from "../service/access.ts";
import { RequestAccess } from "../service/authorize.ts";

/** What the client listeners check callers with. */
export interface Trust {
  /** The interceptor's hook; undefined when auth.methods is empty (everyone anonymous). */
  readonly authenticate: Authenticate | undefined;
  /** The authenticator behind it (the HTTP and Kafka listeners use it directly); null when auth.methods is empty. */
  readonly authenticator: Authenticator | null;
  readonly access: RequestAccess;
}

/** The metadata the trust stage reads. */
export interface TrustStore {
  readonly image: MetadataImage;
  onChange(fn: (c: MetadataChange) => void): () => void;
}

/**
 * A user's SCRAM credentials in `image`, SCRAM-SHA-256 first: a Basic password is checked against
 * the first, and the fake credential an unknown user is checked against is SHA-256 too, so both
 * answers cost the same time.
 */
export function credentialsOf(image: MetadataImage, user: string): ScramCredential[] {
  const byMechanism = image.scramUsers.get(user);
  if (!byMechanism) return [];
  return [...byMechanism.values()].sort((a, b) => a.mechanism.localeCompare(b.mechanism));
}

/** Whether a metadata change adds or removes ACL bindings. */
export function touchesAcls(c: MetadataChange): boolean {
  return c.records.some((r) => r.type === "acl" || r.type === "remove-acl");
}

/** The principals of `super.users`. */
export function superUsersOf(config: Pick<BrokerConfig, "superUsers">): Principal[] {
  return config.superUsers === "" ? [] : (config.superUsers.split(",").map((s) => s.trim()) as Principal[]);
}

/** The authenticator and access checks of a broker with `config` over `store`. */
export function trustOf(
  config: Pick<BrokerConfig, "authMethods" | "authAllowPlaintextPasswords" | "authorizerEnable" | "superUsers" | "tlsCertFile">,
  store: TrustStore,
  random: Random,
): Trust {
  const authenticator =
    config.authMethods.length === 0
      ? null
      : new Authenticator({
          methods: config.authMethods,
          allowPlaintextPasswords: config.authAllowPlaintextPasswords,
          clock: systemClock,
          random,
          credentials: (user) => credentialsOf(store.image, user),
          // PBKDF2 on libuv's thread pool: the event loop keeps serving while a password is checked.
          verify: verifyPasswordAsync,
        });
  const authenticate = authenticator ? grpcAuthenticate(authenticator, config.tlsCertFile !== "") : undefined;
  const access = new Access({
    enabled: config.authorizerEnable,
    superUsers: superUsersOf(config),
    store,
    bindings: (image) => image.aclBindings(),
    touchesAcls,
    aclVersion: (image) => image.aclVersion,
    authorizer: (bindings, supers) => new Authorizer(bindings, new Set(supers)),
  });
  return { authenticate, authenticator, access: new RequestAccess(access) };
}
