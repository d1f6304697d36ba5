/**
 * gRPC server reflection (`@grpc/reflection`) fed from the descriptors that protobuf-es embeds in
 * the generated code, so `buf curl` and other reflection clients can list and call the services
 * of a running broker without the .proto files. The reflection package only reads
 * `fileDescriptorProtos` (serialized FileDescriptorProtos) from the definitions it is given.
 */
import { toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import { ReflectionService } from "@grpc/reflection";
import type * as grpc from "@grpc/grpc-js";
import { file_rill_v1_admin_service } from "../gen/rill/v1/admin_service_pb.ts";
import { file_rill_v1_common } from "../gen/rill/v1/common_pb.ts";
import { file_rill_v1_fetch_service } from "../gen/rill/v1/fetch_service_pb.ts";
import { file_rill_v1_produce_service } from "../gen/rill/v1/produce_service_pb.ts";
import { file_rill_v1_group_service } from "../gen/rill/v1/group_service_pb.ts";

/** Registers reflection for the given services (full names) on `server`. */
export function addReflection(
  server: grpc.Server,
  services: readonly string[],
  files: readonly GenFile[] = [
    file_rill_v1_common,
    file_rill_v1_admin_service,
    file_rill_v1_produce_service,
    file_rill_v1_fetch_service,
    file_rill_v1_group_service,
  ],
): void {
  const all = new Map<string, GenFile>();
  const visit = (f: GenFile): void => {
    if (all.has(f.proto.name)) return;
    all.set(f.proto.name, f);
    for (const dep of f.dependencies) visit(dep);
  };
  files.forEach(visit);
  const fileDescriptorProtos = [...all.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  const definition: Record<string, { fileDescriptorProtos: Buffer[] }> = {};
  for (const s of services) definition[s] = { fileDescriptorProtos };
  new ReflectionService(definition as never, { services: [...services] }).addToServer(server);
}
