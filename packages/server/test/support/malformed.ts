/**
 * Requests a well-behaved client never sends, built from the contract's descriptors so
 * that nothing is missed: one request per string field reachable from an RPC's request
 * type (map keys, oneof members, repeated and nested ones included) with invalid UTF-8
 * in that field, and values nested past protobuf's limit.
 */
import {
  create,
  createFileRegistry,
  type DescField,
  type DescMessage,
  fromBinary,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { FILE_DESCRIPTOR_SET_BASE64, pbValues } from "@toolbridge/core";

export const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, Buffer.from(FILE_DESCRIPTOR_SET_BASE64, "base64")),
);

/** A placeholder whose UTF-8 bytes are replaced, in place, by as many invalid ones. */
const MARKER = "@@MARKER@@";
const MARKER_BYTES = Buffer.from(MARKER);
const INVALID_UTF8 = Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80, 0xf8, 0x88, 0x80]);

/** A request message init object, and the path of the string field it sets (for messages). */
interface Placement {
  readonly path: string;
  readonly init: Record<string, unknown>;
}

function isString(field: DescField): boolean {
  return (
    (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) ||
    (field.fieldKind === "list" && field.listKind === "scalar" && field.scalar === ScalarType.STRING) ||
    (field.fieldKind === "map" && field.mapKind === "scalar" && field.scalar === ScalarType.STRING)
  );
}

/** Sets `value` on `field`, wrapping it as the field's kind requires. */
function place(field: DescField, value: unknown): Record<string, unknown> {
  let set: unknown = value;
  if (field.fieldKind === "list") set = [value];
  if (field.fieldKind === "map") set = { key: value };
  if (field.oneof !== undefined) return { [field.oneof.localName]: { case: field.localName, value: set } };
  return { [field.localName]: set };
}

/** Every way to put the marker into one string field reachable from `message`, each message type once per path. */
function placements(message: DescMessage, onPath: ReadonlySet<string> = new Set()): Placement[] {
  const out: Placement[] = [];
  const path = new Set([...onPath, message.typeName]);
  for (const field of message.fields) {
    const at = `${message.name}.${field.name}`;
    if (isString(field)) out.push({ path: at, init: place(field, MARKER) });
    if (field.fieldKind === "map" && field.mapKey === ScalarType.STRING) {
      // The key of any map<string, ...> is a string field too.
      const value =
        field.mapKind === "message" ? {} : field.mapKind === "enum" ? 0 : isString(field) ? "" : 0;
      out.push({ path: `${at}[key]`, init: { [field.localName]: { [MARKER]: value } } });
    }
    const nested =
      field.fieldKind === "message" ||
      (field.fieldKind === "list" && field.listKind === "message") ||
      (field.fieldKind === "map" && field.mapKind === "message")
        ? field.message
        : undefined;
    if (nested === undefined || path.has(nested.typeName)) continue;
    for (const inner of placements(nested, path)) {
      out.push({ path: `${at} > ${inner.path}`, init: place(field, inner.init) });
    }
  }
  return out;
}

/** The request type of a ToolBridge method, from its path ("/toolbridge.v1.ToolBridge/ExecuteTool"). */
export function requestType(path: string): DescMessage {
  const [, service, method] = path.split("/");
  const found = registry.getService(service ?? "")?.methods.find((m) => m.name === method);
  if (found === undefined) throw new Error(`no method ${path} in the descriptors`);
  return found.input;
}

/** One encoded request per string field reachable from `type`, holding invalid UTF-8 there. */
export function invalidUtf8Requests(type: DescMessage): { path: string; bytes: Buffer }[] {
  return placements(type).map(({ path, init }) => {
    const bytes = Buffer.from(toBinary(type, create(type, init)));
    const at = bytes.indexOf(MARKER_BYTES);
    if (at < 0) throw new Error(`the marker did not reach ${path}`);
    INVALID_UTF8.copy(bytes, at);
    return { path, bytes };
  });
}

/** A list value nested `depth` levels deep around a null. */
export function nestedValue(depth: number): pbValues.Value {
  let value: pbValues.Value = { kind: { $case: "nullValue", value: pbValues.NullValue.NULL_VALUE } };
  for (let i = 0; i < depth; i++) value = { kind: { $case: "listValue", value: { values: [value] } } };
  return value;
}
