/**
 * The bound on Value nodes per request (`maxValueNodes`). A legal request of 10 MiB can
 * hold 600,000 map entries, and decoding, validating and encoding them blocks the event
 * loop for seconds, stalling every other client. The request's bytes are scanned before
 * they are decoded, guided by the message descriptors: the scan builds nothing, skips
 * every field that cannot hold a Value, and stops as soon as the count passes the bound.
 */
import { createFileRegistry, type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { RefusedRequest, type RequestCheck } from "./malformed.js";

const VALUE_TYPE = "toolbridge.v1.Value";
/** Protobuf's own nesting limit; a deeper request is the decoder's to refuse. */
const MAX_DEPTH = 100;

/** Where Values can be found in one message type: field number -> what that field holds. */
type Plan = Map<number, Step>;
interface Step {
  /** The plan of the field's message (for a map, of its entry). */
  readonly plan: Plan;
  /** True when the field's message is a Value: each one counts. */
  readonly isValue: boolean;
}

/**
 * Counts the Value nodes of serialized requests, by message type. Built once from the
 * FileDescriptorSet the host serves over reflection.
 */
export class ValueCounter {
  private readonly plans = new Map<string, Plan | undefined>();

  constructor(private readonly registry: ReturnType<typeof createFileRegistry>) {}

  static fromDescriptorSet(bytes: Uint8Array): ValueCounter {
    return new ValueCounter(createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes)));
  }

  /**
   * Counts the Values in `bytes`, a serialized `typeName`, up to `limit + 1` (the scan stops
   * there). Answers 0 for a type that holds no Value and for bytes that are not a valid
   * encoding (the decoder then says what is wrong with them).
   */
  count(typeName: string, bytes: Uint8Array, limit: number): number {
    const plan = this.planOf(typeName);
    if (plan === undefined) return 0;
    const budget = { left: limit + 1 };
    try {
      scan(bytes, 0, bytes.length, plan, budget, 0);
    } catch (error) {
      if (error instanceof Truncated) return 0;
      throw error;
    }
    return limit + 1 - budget.left;
  }

  /**
   * The check of `guardRequests` for requests carrying at most `maxNodes` Values: a request
   * over it is refused with RESOURCE_EXHAUSTED before it is decoded.
   */
  requestCheck(maxNodes: number): RequestCheck {
    return (path) => {
      const [, service = "", method = ""] = path.split("/");
      const input = this.registry.getService(service)?.methods.find((m) => m.name === method)?.input;
      if (input === undefined || this.planOf(input.typeName) === undefined) return undefined;
      const typeName = input.typeName;
      return (bytes) => {
        if (this.count(typeName, bytes, maxNodes) <= maxNodes) return undefined;
        return new RefusedRequest({
          code: grpc.status.RESOURCE_EXHAUSTED,
          details:
            `the request to ${path} carries more than ${maxNodes} values, the host's limit (maxValueNodes: ` +
            "every null, number, string, list, map, tensor, ... counts, nested ones too); send fewer or " +
            "coarser values (numeric arrays as tensors, large texts as one string or bytes) or raise the limit",
        });
      };
    };
  }

  /** The plan of a type, or undefined when no Value can occur inside it. */
  private planOf(typeName: string): Plan | undefined {
    if (this.plans.has(typeName)) return this.plans.get(typeName);
    const message = this.registry.getMessage(typeName);
    return message === undefined ? undefined : this.build(message, new Map());
  }

  private build(message: DescMessage, building: Map<string, Plan>): Plan | undefined {
    const known = building.get(message.typeName);
    if (known !== undefined) return known;
    if (this.plans.has(message.typeName)) return this.plans.get(message.typeName);
    // Registered before its fields, so that recursive types (Value -> ListValue -> Value) end.
    const plan: Plan = new Map();
    building.set(message.typeName, plan);
    for (const field of message.fields) {
      let child: DescMessage | undefined;
      if (field.fieldKind === "message") child = field.message;
      else if (field.fieldKind === "list" && field.listKind === "message") child = field.message;
      else if (field.fieldKind === "map" && field.mapKind === "message") child = field.message;
      if (child === undefined) continue;
      const childPlan = this.build(child, building);
      const isValue = child.typeName === VALUE_TYPE;
      if (childPlan === undefined && !isValue) continue;
      const step: Step = { plan: childPlan ?? new Map(), isValue };
      // A map field is a repeated entry message whose field 2 is the value.
      plan.set(
        field.number,
        field.fieldKind === "map" ? { plan: new Map([[2, step]]), isValue: false } : step,
      );
    }
    const result = plan.size > 0 || message.typeName === VALUE_TYPE ? plan : undefined;
    this.plans.set(message.typeName, result);
    return result;
  }
}

/** Thrown by the scan for bytes that are not a valid encoding; the decoder reports them. */
class Truncated extends Error {}

/** The scan's read position: module state rather than a closure, for speed in the hot loop. */
let pos = 0;

/** Reads a varint at `pos`; values above 2^32 (skipped int64s) come back wrapped, which is fine here. */
function varint(bytes: Uint8Array, end: number): number {
  let value = 0;
  for (let shift = 0; shift < 70; shift += 7) {
    if (pos >= end) throw new Truncated();
    const byte = bytes[pos++] as number;
    if (shift < 32) value |= (byte & 0x7f) << shift;
    if (byte < 0x80) return value >>> 0;
  }
  throw new Truncated();
}

/**
 * Walks `bytes[start, end)` as a message of `plan`, counting Values against the budget.
 * Hand-rolled rather than a BinaryReader: a reader allocates per tag, and this loop runs
 * over every field of the largest requests before they are decoded.
 */
function scan(
  bytes: Uint8Array,
  start: number,
  end: number,
  plan: Plan,
  budget: { left: number },
  depth: number,
): void {
  if (depth > MAX_DEPTH) return;
  pos = start;
  while (pos < end && budget.left > 0) {
    const tag = varint(bytes, end);
    switch (tag & 7) {
      case WireType.Varint:
        varint(bytes, end);
        break;
      case WireType.Bit64:
        pos += 8;
        break;
      case WireType.Bit32:
        pos += 4;
        break;
      case WireType.LengthDelimited: {
        const length = varint(bytes, end);
        const stop = pos + length;
        if (stop > end) throw new Truncated();
        const step = plan.get(tag >>> 3);
        if (step !== undefined) {
          if (step.isValue) budget.left--;
          if (step.plan.size > 0) scan(bytes, pos, stop, step.plan, budget, depth + 1);
        }
        pos = stop;
        break;
      }
      default:
        // Groups (deprecated) and invalid wire types: the decoder will say what is wrong.
        throw new Truncated();
    }
  }
}
