/**
 * ApiVersions (key 18): the APIs this listener serves and the versions of each it implements —
 * only those, so a client never picks a version Rill cannot answer. v3+ is flexible; its
 * response header stays v0 (connection.ts), as Kafka defines. A version this broker does not
 * know is answered by the connection itself (UNSUPPORTED_VERSION in the v0 layout).
 */
import { api } from "../api.ts";
import { int16, int32, int64, message, string, structs } from "../schema.ts";

export const ApiVersionsRequest = message("ApiVersionsRequest", "0-4", "3+", {
  clientSoftwareName: string().since(3),
  clientSoftwareVersion: string().since(3),
});

export const ApiVersionsResponse = message("ApiVersionsResponse", "0-4", "3+", {
  errorCode: int16(),
  apiKeys: structs({ apiKey: int16(), minVersion: int16(), maxVersion: int16() }),
  throttleTimeMs: int32().since(1),
  supportedFeatures: structs({ name: string(), minVersion: int16(), maxVersion: int16() }).tagged(0, "3+"),
  finalizedFeaturesEpoch: int64().tagged(1, "3+").default(-1n),
  finalizedFeatures: structs({ name: string(), maxVersionLevel: int16(), minVersionLevel: int16() }).tagged(2, "3+"),
});

export const apiVersions = api(
  18,
  "0-4",
  ApiVersionsRequest,
  ApiVersionsResponse,
  async (_req, ctx) => ({
    errorCode: 0,
    apiKeys: [...ctx.apis.values()]
      .sort((a, b) => a.key - b.key)
      .map((a) => ({ apiKey: a.key, minVersion: a.versions[0], maxVersion: a.versions[1] })),
    throttleTimeMs: 0,
  }),
  { beforeAuthentication: true },
);
