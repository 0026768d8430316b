/**
 * The Connect routes of the inspector: every unary and server-streaming method of
 * toolbridge.v1.ToolBridge, described at run time from the descriptors the host embeds
 * (the proto is the only contract; no code is generated for this), each forwarded as it is
 * to the host's gRPC service with the browser's credentials. The bidirectional Calls
 * stream is left out: a browser cannot hold one over HTTP/1.1.
 */
import { timingSafeEqual } from "node:crypto";
import {
  createFileRegistry,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext, MethodImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { FILE_DESCRIPTOR_SET_BASE64 } from "@toolbridge/core";
import type { HostChannel } from "./host-channel.js";

/** The header the page sends the access key in (see InspectorCredentials). */
export const ACCESS_KEY_HEADER = "x-toolbridge-inspector-key";

/** The unary calls' deadline when the browser sets none, so that a call whose host hangs ends. */
const DEFAULT_DEADLINE_MS = 60_000;

let service: DescService | undefined;

/** toolbridge.v1.ToolBridge, from the embedded FileDescriptorSet. */
export function toolBridgeService(): DescService {
  if (service === undefined) {
    const set = fromBinary(FileDescriptorSetSchema, Buffer.from(FILE_DESCRIPTOR_SET_BASE64, "base64"));
    service = createFileRegistry(set).getService("toolbridge.v1.ToolBridge");
    if (service === undefined) throw new Error("toolbridge.v1.ToolBridge is missing from the descriptors");
  }
  return service;
}

/**
 * Which credentials the gateway sends to the host for a browser's call: its own
 * `authorization` header when it sends one, else the token `toolbridge inspect --token`
 * was given, but only to a page that presents the access key printed with the URL (a
 * token held by a loopback server would otherwise be anyone's on this machine).
 */
export class InspectorCredentials {
  private readonly key: Buffer | undefined;

  constructor(
    private readonly token: string | undefined,
    accessKey: string | undefined,
  ) {
    this.key = token === undefined || accessKey === undefined ? undefined : Buffer.from(accessKey);
  }

  metadataFor(headers: Headers): grpc.Metadata {
    const metadata = new grpc.Metadata();
    const authorization = headers.get("authorization");
    if (authorization !== null && authorization !== "") {
      metadata.set("authorization", authorization);
    } else if (this.token !== undefined && this.presentsKey(headers.get(ACCESS_KEY_HEADER))) {
      metadata.set("authorization", `Bearer ${this.token}`);
    }
    return metadata;
  }

  private presentsKey(presented: string | null): boolean {
    if (this.key === undefined || presented === null) return false;
    const given = Buffer.from(presented);
    return given.length === this.key.length && timingSafeEqual(given, this.key);
  }
}

function deadlineOf(ctx: HandlerContext): number {
  return Date.now() + (ctx.timeoutMs() ?? DEFAULT_DEADLINE_MS);
}

/** Registers a forwarding route for every method of the service a browser can call. */
export function forwardingRoutes(channel: HostChannel, credentials: InspectorCredentials) {
  const forwarded = toolBridgeService();
  return (router: ConnectRouter): void => {
    for (const method of forwarded.methods) forwardMethod(router, channel, credentials, method);
  };
}

function forwardMethod(
  router: ConnectRouter,
  channel: HostChannel,
  credentials: InspectorCredentials,
  method: DescMethod,
): void {
  const path = `/${method.parent.typeName}/${method.name}`;
  if (method.methodKind === "unary") {
    const unary: MethodImpl<DescMethodUnary> = async (request, ctx) => {
      const bytes = toBinary(method.input, request);
      const metadata = credentials.metadataFor(ctx.requestHeader);
      const response = await channel.unary(path, bytes, metadata, deadlineOf(ctx), ctx.signal);
      return fromBinary(method.output, response);
    };
    router.rpc(method as DescMethodUnary, unary);
  } else if (method.methodKind === "server_streaming") {
    const stream: MethodImpl<DescMethodServerStreaming> = async function* (request, ctx) {
      const bytes = toBinary(method.input, request);
      const metadata = credentials.metadataFor(ctx.requestHeader);
      for await (const message of channel.stream(path, bytes, metadata, ctx.signal)) {
        yield fromBinary(method.output, message);
      }
    };
    router.rpc(method as DescMethodServerStreaming, stream);
  }
}
