/**
 * gRPC server reflection, v1 and v1alpha (grpcurl and grpcio-reflection use either).
 * It serves each .proto file as the FileDescriptorProto protoc compiled, byte for byte
 * and under its own name, with its imports: a client can build a descriptor pool from
 * reflection alone.
 */
import * as grpc from "@grpc/grpc-js";
import {
  type ServerReflectionRequest,
  type ServerReflectionResponse,
  ServerReflectionService,
} from "../gen/grpc/reflection/v1/reflection.js";
import type { DescriptorFile, DescriptorIndex } from "./descriptors.js";
import { guardRequests, refusalOf, type ServiceGuard } from "./malformed.js";

type ReflectionStream = grpc.ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>;
type Answer = ServerReflectionResponse["messageResponse"];

/** v1alpha has the same messages as v1 under another package name. */
function v1alphaDefinition(): typeof ServerReflectionService {
  const method = ServerReflectionService.serverReflectionInfo;
  return {
    serverReflectionInfo: {
      ...method,
      path: method.path.replace(".v1.", ".v1alpha.") as typeof method.path,
    },
  };
}

export class ReflectionService {
  private readonly streams = new Set<ReflectionStream>();

  /** `services`: the services the server implements, which list_services names (all declared in `index`). */
  constructor(
    private readonly index: DescriptorIndex,
    private readonly services: readonly string[],
  ) {
    for (const name of services) {
      if (index.fileContainingSymbol(name) === undefined) throw new Error(`no descriptor declares ${name}`);
    }
  }

  /** Adds v1 and v1alpha to `server`, their implementation wrapped by `guard` (authentication) when given. */
  addTo(server: grpc.Server, guard: ServiceGuard = (_, implementation) => implementation): void {
    const implementation = { serverReflectionInfo: (call: ReflectionStream) => this.serve(call) };
    for (const definition of [guardRequests(ServerReflectionService), guardRequests(v1alphaDefinition())]) {
      server.addService(definition, guard(definition, implementation));
    }
  }

  /** Ends the open reflection streams, so that a shutting-down server need not wait for their clients. */
  close(): void {
    for (const call of this.streams) call.end();
    this.streams.clear();
  }

  private serve(call: ReflectionStream): void {
    this.streams.add(call);
    const forget = () => this.streams.delete(call);
    call.once("cancelled", forget);
    call.once("finish", forget);
    call.on("data", (request: unknown) => {
      const refusal = refusalOf(request);
      if (refusal !== undefined) {
        forget();
        call.emit("error", refusal);
        return;
      }
      // A stream whose credentials were revoked has ended (auth/guard.ts): it answers no more.
      if (call.writableEnded) return;
      const message = request as ServerReflectionRequest;
      call.write({
        validHost: message.host,
        originalRequest: message,
        messageResponse: this.answer(message),
      });
    });
    call.once("end", () => {
      forget();
      call.end();
    });
  }

  private answer(request: ServerReflectionRequest): Answer {
    const asked = request.messageRequest;
    switch (asked?.$case) {
      case "listServices":
        return {
          $case: "listServicesResponse",
          value: { service: this.services.map((name) => ({ name })) },
        };
      case "fileByFilename":
        return files(this.index.fileByName(asked.value), `no file named '${asked.value}'`);
      case "fileContainingSymbol":
        return files(this.index.fileContainingSymbol(asked.value), `no symbol named '${asked.value}'`);
      case "fileContainingExtension":
        return error(
          grpc.status.NOT_FOUND,
          `no extension ${asked.value.extensionNumber} of '${asked.value.containingType}': these files declare no extensions`,
        );
      case "allExtensionNumbersOfType":
        return this.index.isMessageType(asked.value)
          ? {
              $case: "allExtensionNumbersResponse",
              value: { baseTypeName: asked.value, extensionNumber: [] },
            }
          : error(grpc.status.NOT_FOUND, `no message type named '${asked.value}'`);
      default:
        return error(grpc.status.INVALID_ARGUMENT, "the request sets none of the reflection requests");
    }
  }
}

function files(found: DescriptorFile[] | undefined, missing: string): Answer {
  if (found === undefined) return error(grpc.status.NOT_FOUND, missing);
  return {
    $case: "fileDescriptorResponse",
    value: { fileDescriptorProto: found.map((file) => Buffer.from(file.bytes)) },
  };
}

function error(code: grpc.status, message: string): Answer {
  return { $case: "errorResponse", value: { errorCode: code, errorMessage: message } };
}
