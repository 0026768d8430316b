/**
 * The fuzzer's inputs: a seeded generator of random strings, bytes and value trees (mostly
 * valid, sometimes not), a plausible request per RPC of the contract, and mutations of it
 * (truncated, bytes flipped, junk after it). The same seed gives the same inputs, so a
 * failure names what reproduces it.
 */
import { pb, pbValues } from "@toolbridge/core";

/** mulberry32: small, seeded, good enough to spread inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random inputs drawn from one seeded source, so a seed reproduces every input. */
export class Gen {
  constructor(readonly random: () => number) {}
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  bytes(max: number): Buffer {
    const out = Buffer.alloc(this.int(max + 1));
    for (let i = 0; i < out.length; i++) out[i] = this.int(256);
    return out;
  }
  text(max: number): string {
    const alphabet = ["a", "Z", "_", ".", "-", "0", " ", "é", "世", "\u0000", "\n", "😀", "\ud800"];
    let s = "";
    for (let i = this.int(max + 1); i > 0; i--) s += this.pick(alphabet);
    return s;
  }
  name(): string {
    return this.pick([`v${this.int(5)}`, `n.${this.int(3)}`, this.text(6), "x".repeat(129), ""]);
  }

  /** A random value tree, mostly valid, sometimes not (bad tensors, timestamps, big ints, depth). */
  value(depth = 0): pbValues.Value {
    const kinds = depth > 3 ? 8 : 11;
    switch (this.int(kinds)) {
      case 0:
        return { kind: { $case: "nullValue", value: pbValues.NullValue.NULL_VALUE } };
      case 1:
        return { kind: { $case: "boolValue", value: this.random() < 0.5 } };
      case 2:
        return {
          kind: { $case: "intValue", value: BigInt(this.int(2 ** 31)) * BigInt(this.pick([1, -1, 2 ** 31])) },
        };
      case 3:
        return {
          kind: { $case: "bigIntValue", value: this.pick([`1${"0".repeat(30)}`, "-5", "007", "abc", ""]) },
        };
      case 4:
        return {
          kind: {
            $case: "floatValue",
            value: this.pick([0.1, -0, Number.NaN, Number.POSITIVE_INFINITY, 1e308]),
          },
        };
      case 5:
        return { kind: { $case: "stringValue", value: this.text(20) } };
      case 6:
        return { kind: { $case: "bytesValue", value: this.bytes(32) } };
      case 7: {
        const seconds = BigInt(this.pick([0, 1_700_000_000, -62135596801, 253402300800]));
        return {
          kind: { $case: "timestampValue", value: { seconds, nanos: this.pick([0, 5, 1_000_000_000]) } },
        };
      }
      case 8: {
        const values = Array.from({ length: this.int(4) }, () => this.value(depth + 1));
        return { kind: { $case: "listValue", value: { values } } };
      }
      case 9: {
        const entries = Array.from({ length: this.int(4) }, () => ({
          key: this.pick(["a", "b", this.text(3)]),
          value: this.value(depth + 1),
        }));
        return { kind: { $case: "mapValue", value: { entries } } };
      }
      default: {
        const shape = Array.from({ length: this.int(3) }, () => this.int(3));
        const size = shape.reduce((a, b) => a * b, 1) * this.pick([1, 2, 4, 8]) + this.pick([0, 0, 1]);
        return {
          kind: {
            $case: "tensorValue",
            value: { dtype: this.int(14), shape, data: this.bytes(size).subarray(0, size) },
          },
        };
      }
    }
  }
}

/** A message type of the contract, as the generated code has it. */
interface MessageType {
  encode(message: object): { finish(): Uint8Array };
  fromPartial(init: object): object;
}

const encode = (type: MessageType, init: object): Buffer =>
  Buffer.from(type.encode(type.fromPartial(init)).finish());

/** What every seed request draws first: a session (usually the real one), a tool and kwargs. */
interface Seed {
  readonly g: Gen;
  readonly session: string;
  readonly tool: string;
  readonly kwargs: Record<string, pbValues.Value>;
}

/** A Calls frame, sent as the whole (half-closed) stream: a call, usually with a call id, or a cancel. */
function callFrame({ g, session, tool, kwargs }: Seed): Buffer {
  return encode(pb.CallFrame, {
    callId: BigInt(g.pick([1, 7, 0])),
    frame:
      g.random() < 0.8
        ? {
            $case: "call",
            value: {
              sessionId: session,
              toolId: tool,
              args: [g.value()],
              kwargs,
              requestId: g.pick(["r1", g.text(6), ""]),
              timeoutMs: 500,
            },
          }
        : { $case: "cancel", value: {} },
  });
}

/** A variable write with metadata and constraints, valid or not. */
function setVariableRequest({ g, session }: Seed): Buffer {
  return encode(pb.SetVariableRequest, {
    sessionId: session,
    variableName: g.name(),
    value: g.value(),
    createIfMissing: g.random() < 0.8,
    ...(g.random() < 0.3 ? { expectedVersion: BigInt(g.int(3)) } : {}),
    metadata: {
      type: g.pick(["", "", "float", "string", "choice", "list", "tensor", "embedding", "bogus"]),
      createdBy: g.pick(["python", "", "Bad Writer"]),
      tags: { t: g.text(3) },
      constraints: {
        ...(g.random() < 0.3 ? { min: g.pick([0, Number.NaN, -1e308]) } : {}),
        ...(g.random() < 0.3 ? { maxLength: g.int(4) } : {}),
        pattern: g.pick(["", "^a", "(", "[z-a]"]),
        choices: g.random() < 0.3 ? [g.value(), g.value()] : [],
        shape: g.random() < 0.2 ? [g.int(3)] : [],
        dimensions: g.int(3),
        itemType: g.pick(["", "integer", "nope"]),
        dtype: g.int(14),
      },
    },
  });
}

/** A plausible request per RPC (by its name in pb.ToolBridgeService); the others ask for session info. */
const SEED_REQUESTS: Record<string, (seed: Seed) => Buffer> = {
  initializeSession: ({ g }) =>
    encode(pb.InitializeSessionRequest, { sessionId: g.pick(["", g.text(10)]), metadata: { k: g.text(4) } }),
  executeTool: ({ g, session, tool, kwargs }) =>
    encode(pb.ToolCallRequest, {
      sessionId: session,
      toolId: tool,
      args: [g.value()],
      kwargs,
      timeoutMs: 500,
    }),
  streamTool: ({ session, tool, kwargs }) =>
    encode(pb.ToolStreamRequest, { sessionId: session, toolId: tool, kwargs, timeoutMs: 500 }),
  calls: callFrame,
  batchExecuteTools: ({ g, session, tool, kwargs }) =>
    encode(pb.BatchToolCallRequest, {
      sessionId: session,
      items: Array.from({ length: g.int(4) }, (_, index) => ({
        index,
        toolId: tool,
        kwargs,
        timeoutMs: 500,
      })),
      config: { parallel: g.random() < 0.5, stopOnError: g.random() < 0.5, maxParallel: g.int(3) },
    }),
  getSessionVariable: ({ g, session }) =>
    encode(pb.GetVariableRequest, { sessionId: session, variableName: g.name(), includeMetadata: true }),
  setSessionVariable: setVariableRequest,
  listSessionVariables: ({ g, session }) =>
    encode(pb.ListVariablesRequest, { sessionId: session, prefix: g.text(2) }),
  deleteSessionVariable: ({ g, session }) =>
    encode(pb.DeleteVariableRequest, { sessionId: session, variableName: g.name() }),
  watchSessionVariables: ({ g, session }) =>
    encode(pb.WatchVariablesRequest, {
      sessionId: session,
      variableNames: Array.from({ length: g.int(3) }, () => g.name()),
      includeInitialValues: g.random() < 0.5,
    }),
  healthCheck: ({ g }) => encode(pb.HealthCheckRequest, { service: g.text(5) }),
  getMetrics: () => encode(pb.GetMetricsRequest, {}),
};

/** A plausible request for `method`, so mutations reach past the first field checks. */
function seedRequest(method: string, g: Gen, sessionId: string): Buffer {
  const session = g.pick([sessionId, sessionId, "", g.text(8)]);
  const tool = g.pick([
    "echo",
    "add",
    "describe_args",
    "fail",
    "bytes",
    "no_such_tool",
    "count",
    "fail_stream",
  ]);
  const kwargs = Object.fromEntries(
    Array.from({ length: g.int(3) }, () => [g.pick(["value", "a", "b", "name", "n", "size"]), g.value()]),
  );
  const seed = { g, session, tool, kwargs };
  const build = Object.hasOwn(SEED_REQUESTS, method) ? SEED_REQUESTS[method] : undefined;
  return build ? build(seed) : encode(pb.GetSessionInfoRequest, { sessionId: session });
}

/** Random bytes, or a seed request that is truncated, has bytes flipped, or carries junk after it. */
export function fuzzInput(method: string, g: Gen, sessionId: string): Buffer {
  const base = seedRequest(method, g, sessionId);
  switch (g.int(5)) {
    case 0:
      return g.bytes(64);
    case 1:
      return base.subarray(0, g.int(base.length + 1));
    case 2: {
      const copy = Buffer.from(base);
      for (let i = 0; i < 1 + g.int(3) && copy.length > 0; i++) copy[g.int(copy.length)] = g.int(256);
      return copy;
    }
    case 3:
      return Buffer.concat([base, g.bytes(16)]);
    default:
      return base;
  }
}
