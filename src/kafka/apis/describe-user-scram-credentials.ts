/**
 * DescribeUserScramCredentials (key 50), v0 (flexible): the security service's
 * DescribeUserScramCredentials (src/service/admin-security.ts) — each user's mechanisms and
 * iteration counts from this node's image, never a salt or a key. Null or no users: every user
 * with a credential. Needs DESCRIBE on the cluster (src/service/authorize.ts); a refusal is the
 * answer's error.
 */
import { api } from "../api.ts";
import { answerOrError, errorFields, kafkaAdmin } from "../admin.ts";
import { int8, int16, int32, message, string, structs } from "../schema.ts";

export const DescribeUserScramCredentialsRequest = message("DescribeUserScramCredentialsRequest", "0", "0+", {
  users: structs({ name: string() }).nullable("0+"),
});

export const DescribeUserScramCredentialsResponse = message("DescribeUserScramCredentialsResponse", "0", "0+", {
  throttleTimeMs: int32(),
  errorCode: int16(),
  errorMessage: string().nullable("0+").default(null),
  results: structs({
    user: string(),
    errorCode: int16(),
    errorMessage: string().nullable("0+").default(null),
    credentialInfos: structs({ mechanism: int8(), iterations: int32() }),
  }),
});

/** Kafka's ScramMechanism numbers. */
export const SCRAM_MECHANISM_CODES = { "SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2 } as const;

/** The mechanism name of Kafka's number (its number as text when unknown, refused by the service). */
export function mechanismName(code: number): string {
  if (code === 1) return "SCRAM-SHA-256";
  if (code === 2) return "SCRAM-SHA-512";
  return code === 0 ? "UNKNOWN" : String(code);
}

export const describeUserScramCredentials = api(
  50,
  "0",
  DescribeUserScramCredentialsRequest,
  DescribeUserScramCredentialsResponse,
  (req, ctx) => {
    const { security, access } = kafkaAdmin(ctx.deps);
    return answerOrError(
      () => {
        access.cluster(ctx.session.requester, "AdminService/DescribeUserScramCredentials");
        const res = security.describeUserScramCredentials({ users: (req.users ?? []).map((u) => u.name) });
        return {
          throttleTimeMs: 0,
          errorCode: 0,
          errorMessage: null as string | null,
          results: res.results.map((r) => ({
            user: r.user,
            ...errorFields(r.error),
            credentialInfos: r.credentials.map((c) => ({ mechanism: SCRAM_MECHANISM_CODES[c.mechanism], iterations: c.iterations })),
          })),
        };
      },
      (e) => ({ throttleTimeMs: 0, ...errorFields(e), results: [] }),
    );
  },
);
