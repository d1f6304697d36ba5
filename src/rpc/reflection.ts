/**
 * gRPC server reflection (`@grpc/reflection`) fed from the descriptors that protobuf-es embeds in
 * the generated code, so `buf curl` and other reflection clients can list and call the services
 * of a running broker without the .proto files. The reflection package only reads
 * `fileDescriptorProtos` (serialized FileDescriptorProtos) from the definitions it is given.
 *
 * The standard health service (`grpc.health.v1.Health`, served by `grpc-health-check`) is listed
 * too, with a descriptor of grpc/health/v1/health.proto written here (the methods that package
 * serves: Check and Watch), so `buf curl --list-methods` and `buf curl .../grpc.health.v1.Health/Check`
 * work without `--schema`. (The package's own descriptor, from protobufjs, names its types
 * relative to their scope, which reflection clients such as buf refuse.)
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
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
  definition[HEALTH_SERVICE] = { fileDescriptorProtos: healthDescriptors() };
  new ReflectionService(definition as never, { services: [...services, HEALTH_SERVICE] }).addToServer(server);
}

/** The standard health service's full name. */
export const HEALTH_SERVICE = "grpc.health.v1.Health";

/** grpc/health/v1/health.proto (gRPC's health checking protocol) as a serialized FileDescriptorProto. */
function healthDescriptors(): Buffer[] {
  const pkg = "grpc.health.v1";
  const optional = FieldDescriptorProto_Label.OPTIONAL;
  const file = create(FileDescriptorProtoSchema, {
    name: "grpc/health/v1/health.proto",
    package: pkg,
    syntax: "proto3",
    messageType: [
      {
        name: "HealthCheckRequest",
        field: [{ name: "service", number: 1, label: optional, type: FieldDescriptorProto_Type.STRING, jsonName: "service" }],
      },
      {
        name: "HealthCheckResponse",
        field: [
          {
            name: "status",
            number: 1,
            label: optional,
            type: FieldDescriptorProto_Type.ENUM,
            typeName: `.${pkg}.HealthCheckResponse.ServingStatus`,
            jsonName: "status",
          },
        ],
        enumType: [
          {
            name: "ServingStatus",
            value: [
              { name: "UNKNOWN", number: 0 },
              { name: "SERVING", number: 1 },
              { name: "NOT_SERVING", number: 2 },
              { name: "SERVICE_UNKNOWN", number: 3 },
            ],
          },
        ],
      },
    ],
    service: [
      {
        name: "Health",
        method: [
          { name: "Check", inputType: `.${pkg}.HealthCheckRequest`, outputType: `.${pkg}.HealthCheckResponse` },
          { name: "Watch", inputType: `.${pkg}.HealthCheckRequest`, outputType: `.${pkg}.HealthCheckResponse`, serverStreaming: true },
        ],
      },
    ],
  });
  return [Buffer.from(toBinary(FileDescriptorProtoSchema, file))];
}
