/**
 * AlterUserScramCredentials (key 51), v0 (flexible): the security service's
 * AlterUserScramCredentials (src/service/admin-security.ts) in Kafka's form — salt and
 * SaltedPassword, never a password — run on the active controller, each user's changes applied
 * together or not at all; one result per user in order of first mention. Needs ALTER on the
 * cluster (src/service/authorize.ts); denied, every user is answered CLUSTER_AUTHORIZATION_FAILED.
 */
import type { RillError } from "../../base/errors.ts";
import { usersInOrder } from "../../security/decisions.ts";
import { api } from "../api.ts";
import { answerOrError, controllerPort, errorFields, kafkaAdmin } from "../admin.ts";
import { bytes, int8, int16, int32, message, string, structs } from "../schema.ts";
import { mechanismName } from "./describe-user-scram-credentials.ts";

export const AlterUserScramCredentialsRequest = message("AlterUserScramCredentialsRequest", "0", "0+", {
  deletions: structs({ name: string(), mechanism: int8() }),
  upsertions: structs({ name: string(), mechanism: int8(), iterations: int32(), salt: bytes(), saltedPassword: bytes() }),
});

export const AlterUserScramCredentialsResponse = message("AlterUserScramCredentialsResponse", "0", "0+", {
  throttleTimeMs: int32(),
  results: structs({ user: string(), errorCode: int16(), errorMessage: string().nullable("0+").default(null) }),
});

export const alterUserScramCredentials = api(
  51,
  "0",
  AlterUserScramCredentialsRequest,
  AlterUserScramCredentialsResponse,
  async (req, ctx) => {
    const { security, access } = kafkaAdmin(ctx.deps);
    const input = {
      upsertions: req.upsertions.map((u) => ({
        name: u.name,
        mechanism: mechanismName(u.mechanism),
        iterations: u.iterations,
        password: "",
        salt: u.salt,
        saltedPassword: u.saltedPassword,
      })),
      deletions: req.deletions.map((d) => ({ name: d.name, mechanism: mechanismName(d.mechanism) })),
    };
    const users = usersInOrder(input.upsertions, input.deletions);
    const results = await answerOrError<readonly { user: string; error?: RillError }[]>(
      async () => {
        access.cluster(ctx.session.requester, "AdminService/AlterUserScramCredentials");
        if (users.length === 0) return [];
        return (await security.alterUserScramCredentials(input, controllerPort(ctx, 0))).results;
      },
      (error) => users.map((user) => ({ user, error })),
    );
    return { throttleTimeMs: 0, results: results.map((r) => ({ user: r.user, ...errorFields(r.error) })) };
  },
);
