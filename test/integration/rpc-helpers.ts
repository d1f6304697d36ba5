/** Clients of a broker's services for integration tests, with promise-returning unary calls. */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminService } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { FetchService } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { ProduceService } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { fetchClientCodecs, produceClientCodecs } from "../../src/client/wire-codec.ts";

/** A fresh temporary data directory; remove with `rmTmp`. */
export function tmpDir(prefix = "rill-it-"): string {
  return nodeFs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function rmTmp(dir: string): void {
  nodeFs.rmSync(dir, { recursive: true, force: true });
}

/** Promise form of a unary grpc-js method. */
export function call<Req, Res>(client: grpc.Client, method: string, req: Req, deadlineMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (
      client as unknown as Record<
        string,
        (r: Req, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void
      >
    )[method]!;
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r)));
  });
}

/** The three clients of one broker. */
export function clients(address: string) {
  const opts = clientChannelOptions();
  const creds = grpc.credentials.createInsecure();
  const Admin = clientConstructor(AdminService);
  const Produce = clientConstructor(ProduceService, produceClientCodecs);
  const Fetch = clientConstructor(FetchService, fetchClientCodecs);
  const admin = new Admin(address, creds, opts);
  const produce = new Produce(address, creds, opts);
  const fetch = new Fetch(address, creds, opts);
  return {
    admin,
    produce,
    fetch,
    close(): void {
      admin.close();
      produce.close();
      fetch.close();
    },
  };
}

/** `create(schema, init)` re-exported for brevity in tests. */
export function msg<D extends DescMessage>(schema: D, init: MessageInitShape<D>) {
  return create(schema, init);
}

/** The catalog name a failed call carried in its trailers. */
export function errorName(e: unknown): string | undefined {
  return (e as grpc.ServiceError).metadata?.get("rill-error-name")[0]?.toString();
}
