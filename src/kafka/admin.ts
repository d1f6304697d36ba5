/**
 * What the Kafka listener's admin APIs (apis/create-topics.ts, describe-configs.ts, the ACL and
 * SCRAM APIs, ...) share: the admin services themselves — built once per listener by the same
 * construction the gRPC AdminService uses (`adminServices`, src/rpc/admin-service.ts), so a Kafka
 * CreateTopics and a gRPC CreateTopics run the same code and reach the active controller the same
 * way — the request's way to that controller, and the translation of Rill's errors into the
 * per-item error code and message Kafka answers.
 *
 * Authorization is the gRPC adapter's (src/service/authorize.ts), applied item by item: Kafka
 * answers a denied topic or resource with its own error (TOPIC_AUTHORIZATION_FAILED, ...) and
 * carries out the others, where gRPC refuses the whole call.
 */
import { AssertionError } from "../base/assert.ts";
import { RillError } from "../base/errors.ts";
import type { AdminHandlers } from "../service/admin.ts";
import type { ControllerPort } from "../service/admin-ports.ts";
import { SecurityAdminHandlers } from "../service/admin-security.ts";
import type { RequestAccess } from "../service/authorize.ts";
import { QuotaAdmin } from "../service/quota-admin.ts";
import type { KafkaRequestContext } from "./api.ts";
import type { KafkaDeps } from "./deps.ts";
import { kafkaErrorCode } from "./error-codes.ts";
import { dataServices } from "./services.ts";

/** The admin services the Kafka admin APIs call (the gRPC AdminService's, built the same way). */
export interface KafkaAdminServices {
  readonly admin: AdminHandlers;
  readonly security: SecurityAdminHandlers;
  readonly quotas: QuotaAdmin;
  readonly access: RequestAccess;
}

const built = new WeakMap<KafkaDeps, KafkaAdminServices>();

/**
 * The admin services of the listener that `deps` belong to (built on first use): the admin
 * handlers the data APIs share (services.ts, from `adminHandlers` of src/rpc/admin-service.ts),
 * and the security and quota handlers over the same metadata store, as `adminService` builds them.
 */
export function kafkaAdmin(deps: KafkaDeps): KafkaAdminServices {
  let a = built.get(deps);
  if (a === undefined) {
    const d = deps.services.admin;
    a = {
      admin: dataServices(deps).admin,
      security: new SecurityAdminHandlers({ store: d.store, random: d.random }),
      quotas: new QuotaAdmin(d.store),
      access: deps.access,
    };
    built.set(deps, a);
  }
  return a;
}

/** The request's way to the active controller: a change is forwarded there as the request's caller. */
export function controllerPort(ctx: KafkaRequestContext, timeoutMs: number): ControllerPort {
  return dataServices(ctx.deps).controller(ctx.session.requester, timeoutMs);
}

/** Kafka's numeric code of an error (0 for none): the listener's one table (error-codes.ts). */
export function errorCode(e: RillError | null | undefined): number {
  return kafkaErrorCode(e ?? null);
}

/** The message Kafka answers beside the code: null for none. */
export function errorMessage(e: RillError | null | undefined): string | null {
  return e === null || e === undefined ? null : e.message;
}

/** `errorCode` and `errorMessage` of `e`, as the fields most Kafka results carry. */
export function errorFields(e: RillError | null | undefined): { errorCode: number; errorMessage: string | null } {
  return { errorCode: errorCode(e), errorMessage: errorMessage(e) };
}

/**
 * Runs `check` (an authorize.ts call that throws when denied) for each item: the refusal of each
 * denied item, null for the allowed ones. An AssertionError is a bug and is thrown on.
 */
export function authorizeEach<T>(items: readonly T[], check: (item: T) => void): (RillError | null)[] {
  return items.map((item) => {
    try {
      check(item);
      return null;
    } catch (e) {
      if (e instanceof AssertionError) throw e;
      return RillError.from(e);
    }
  });
}

/**
 * Calls `run` with the allowed items only (none: not at all) and puts the answers back in
 * request order, a denied item answered `denied(item, error)`.
 */
export async function onAllowed<T, R>(
  items: readonly T[],
  refusals: readonly (RillError | null)[],
  run: (allowed: T[]) => Promise<readonly R[]>,
  denied: (item: T, e: RillError) => R,
): Promise<R[]> {
  const allowed = items.filter((_, i) => refusals[i] === null);
  const answers = allowed.length > 0 ? await run(allowed) : [];
  let next = 0;
  return items.map((item, i) => {
    const refusal = refusals[i];
    return refusal ? denied(item, refusal) : (answers[next++] as R);
  });
}

/**
 * Runs a whole-request service call and answers `onError(e)` when it throws a RillError (the
 * request is then answered with that error in every item, as Kafka does for a request it cannot
 * carry out at all). An AssertionError is thrown on.
 */
export async function answerOrError<R>(run: () => Promise<R> | R, onError: (e: RillError) => R): Promise<R> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof AssertionError) throw e;
    return onError(RillError.from(e));
  }
}

/** A topic id of the metadata image (32 hex digits) as Kafka's 16-byte UUID; zeros when unknown. */
export function topicIdBytes(topicId: string | undefined): Buffer {
  return topicId !== undefined && /^[0-9a-f]{32}$/.test(topicId) ? Buffer.from(topicId, "hex") : Buffer.alloc(16);
}
