/**
 * The Connect routes of the inspector: every unary and server-streaming method of
 * toolbridge.v1.ToolBridge, described at run time from the descriptors the host embeds
 * (the proto is the only contract; no code is generated for this), each forwarded as it is
 * to the host's gRPC service with the browser's credentials. The bidirectional Calls
 * stream is left out: a browser cannot hold one over HTTP/1.1.
 */
import { timingSafeEqual } from "node:crypto";
import {
  create,
  createFileRegistry,
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  type Message,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
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

let opaque: DescMessage | undefined;

/** A message with no fields: decoding with it keeps every field of the bytes as an unknown field, as it was. */
function opaqueMessage(): DescMessage {
  if (opaque === undefined) {
    const file = create(FileDescriptorProtoSchema, {
      name: "toolbridge/inspector/opaque.proto",
      package: "toolbridge.inspector",
      syntax: "proto3",
      messageType: [{ name: "Opaque" }],
    });
    opaque = createFileRegistry(file, () => undefined).getMessage("toolbridge.inspector.Opaque");
    if (opaque === undefined) throw new Error("cannot describe the opaque message");
  }
  return opaque;
}

/**
 * A host's response for the page. The page speaks the binary format: the host's bytes then go
 * back as they came, carried as unknown fields of an empty message of the right type, so
 * that a response of 5,000 variables is not decoded and encoded again on the way. A client
 * asking for JSON gets the message decoded, for connect-node to write as JSON.
 */
function responseOf(output: DescMessage, bytes: Uint8Array, binary: boolean): Message {
  if (!binary) return fromBinary(output, bytes);
  const carried = create(output);
  carried.$unknown = fromBinary(opaqueMessage(), bytes).$unknown;
  return carried;
}

/** True when the page's call uses the binary format (application/proto, application/connect+proto). */
function isBinary(ctx: HandlerContext): boolean {
  return /\bproto\b/.test(ctx.requestHeader.get("content-type") ?? "");
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
      return responseOf(method.output, response, isBinary(ctx));
    };
    router.rpc(method as DescMethodUnary, unary);
  } else if (method.methodKind === "server_streaming") {
    const stream: MethodImpl<DescMethodServerStreaming> = async function* (request, ctx) {
      const bytes = toBinary(method.input, request);
      const metadata = credentials.metadataFor(ctx.requestHeader);
      const binary = isBinary(ctx);
      for await (const message of channel.stream(path, bytes, metadata, ctx.signal)) {
        yield responseOf(method.output, message, binary);
      }
    };
    router.rpc(method as DescMethodServerStreaming, stream);
  }
}
