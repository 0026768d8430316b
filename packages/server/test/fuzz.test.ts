// Fuzzing the real host over gRPC: random and mutated request bytes for every RPC, every
// string field of every request with invalid UTF-8, values nested past protobuf's limit, and
// random value trees through tools and variables. Every answer must be a well-formed response
// whose errors come from the documented vocabulary (never InternalError), or a documented gRPC
// status naming the problem (never INTERNAL); the host must keep serving. Inputs come from a
// seeded generator, so a failure names the seed and input that reproduce it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { decodeValue, encodeValue, isErrorType, pb, pbValues } from "@toolbridge/core";
import { HealthService } from "../src/gen/grpc/health/v1/health.js";
import { fuzzInput, Gen, prng } from "./support/fuzz-requests.js";
import { type HostProcess, startHost } from "./support/host-process.js";
import { invalidUtf8Requests, nestedValue, requestType } from "./support/malformed.js";

const SEED = Number(process.env.TOOLBRIDGE_FUZZ_SEED ?? 20261124);
const ROUNDS = Number(process.env.TOOLBRIDGE_FUZZ_ROUNDS ?? 150);

type Method = (typeof pb.ToolBridgeService)[keyof typeof pb.ToolBridgeService];

const raw = (b: Buffer) => b;

/** The in-band error types the fuzzing provoked, to show it reached the handlers. */
const seenTypes = new Map<string, number>();

/** What an answer may be: problems found in it, none when it is acceptable. */
function checkResponse(method: Method, bytes: Buffer): string[] {
  let message: unknown;
  try {
    message = method.responseDeserialize(bytes);
  } catch (error) {
    return [`undecodable response: ${String(error)}`];
  }
  const problems: string[] = [];
  const visit = (node: unknown) => {
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    const record = node as Record<string, unknown>;
    const error = record.error as pb.ErrorInfo | undefined;
    if (error !== undefined && error.type !== "") {
      seenTypes.set(error.type, (seenTypes.get(error.type) ?? 0) + 1);
      if (!isErrorType(error.type)) problems.push(`error type outside the vocabulary: ${error.type}`);
      if (error.type === "InternalError") problems.push(`InternalError: ${error.message}`);
      if (error.message.trim() === "") problems.push(`${error.type} without a message`);
    }
    for (const [key, value] of Object.entries(record)) if (key !== "error") visit(value);
  };
  visit(message);
  return problems;
}

/** The documented answer to a request that cannot be decoded (docs/errors.md). */
const MALFORMED = /^malformed request to \/[\w.]+\/\w+ \((invalid_utf8|too_deep|malformed)\): \S/;
/** The documented answer to a call on Calls without a call id, or with one already in flight. */
const CALLS_MISUSE = /^Calls: (every call on Calls needs a call_id|call_id \d+ is already in flight)/;

/** Problems with a status answer: only documented statuses, each naming its problem. */
function checkStatus(method: Method, error: grpc.ServiceError): string[] {
  switch (error.code) {
    case grpc.status.INVALID_ARGUMENT:
      return MALFORMED.test(error.details) ||
        (method === pb.ToolBridgeService.calls && CALLS_MISUSE.test(error.details))
        ? []
        : [`INVALID_ARGUMENT without a reason: ${error.details}`];
    case grpc.status.RESOURCE_EXHAUSTED:
      return [];
    case grpc.status.NOT_FOUND:
      return method === pb.ToolBridgeService.healthCheck && /^no service named /.test(error.details)
        ? []
        : [`unexpected NOT_FOUND: ${error.details}`];
    default:
      return [`unexpected status ${grpc.status[error.code]}: ${error.details}`];
  }
}

/** The reason a MALFORMED status names. */
function malformedReason(error: grpc.ServiceError | undefined): string {
  if (error?.code !== grpc.status.INVALID_ARGUMENT) return `status ${error?.code}: ${error?.details}`;
  return MALFORMED.exec(error.details)?.[1] ?? `unnamed: ${error.details}`;
}

describe("fuzzing the host over gRPC", () => {
  let host: HostProcess;
  let client: grpc.Client;

  before(async () => {
    host = await startHost({ "max-message-bytes": 1024 * 1024 });
    client = new grpc.Client(host.target, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    assert.equal(await host.stop(), 0, host.stderr());
  });

  const unary = (method: Method, input: Buffer) =>
    new Promise<{ bytes?: Buffer; error?: grpc.ServiceError }>((resolve) =>
      client.makeUnaryRequest(method.path, raw, raw, input, { deadline: Date.now() + 5000 }, (error, bytes) =>
        resolve(error ? { error } : bytes === undefined ? {} : { bytes }),
      ),
    );

  const newSession = async () => {
    const init = await unary(
      pb.ToolBridgeService.initializeSession,
      Buffer.from(pb.InitializeSessionRequest.encode(pb.InitializeSessionRequest.fromPartial({})).finish()),
    );
    assert.ok(init.bytes, init.error?.details);
    return pb.InitializeSessionResponse.decode(init.bytes).sessionId;
  };

  /** Reads a server stream for a short while (a watch never ends on its own), then cancels it. */
  const stream = (method: Method, input: Buffer) =>
    new Promise<{ messages: Buffer[]; error?: grpc.ServiceError }>((resolve) => {
      const messages: Buffer[] = [];
      const call = client.makeServerStreamRequest(method.path, raw, raw, input, new grpc.Metadata(), {
        deadline: Date.now() + 5000,
      });
      const timer = setTimeout(() => call.cancel(), 150);
      call.on("data", (bytes: Buffer) => {
        messages.push(bytes);
        if (messages.length >= 50) call.cancel();
      });
      call.on("error", (error: grpc.ServiceError) => {
        clearTimeout(timer);
        resolve(error.code === grpc.status.CANCELLED ? { messages } : { messages, error });
      });
      call.on("end", () => {
        clearTimeout(timer);
        resolve({ messages });
      });
    });

  it(`answers ${ROUNDS} random and mutated requests per RPC with typed errors, never InternalError (seed ${SEED})`, async () => {
    const problems: string[] = [];
    let answered = 0;
    for (const [name, method] of Object.entries(pb.ToolBridgeService)) {
      const g = new Gen(prng(SEED ^ name.length ^ name.charCodeAt(0)));
      // A fresh session per RPC: fuzzed CleanupSession calls end the one they hit.
      const sessionId = await newSession();
      for (let round = 0; round < ROUNDS; round++) {
        const input = fuzzInput(name, g, sessionId);
        const where = `${name} round ${round} input ${input.toString("base64")}`;
        if (method.responseStream) {
          const { messages, error } = await stream(method, input);
          for (const bytes of messages)
            problems.push(...checkResponse(method, bytes).map((p) => `${where}: ${p}`));
          if (error) problems.push(...checkStatus(method, error).map((p) => `${where}: ${p}`));
        } else {
          const { bytes, error } = await unary(method, input);
          if (bytes) problems.push(...checkResponse(method, bytes).map((p) => `${where}: ${p}`));
          if (error) problems.push(...checkStatus(method, error).map((p) => `${where}: ${p}`));
        }
        answered++;
      }
    }
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems in ${answered} calls`);
    assert.equal(answered, ROUNDS * Object.keys(pb.ToolBridgeService).length);
    for (const type of [
      "SessionNotFound",
      "ToolNotFound",
      "ValidationError",
      "InvalidValue",
      "VariableNotFound",
    ]) {
      assert.ok(
        (seenTypes.get(type) ?? 0) > 0,
        `the fuzzing provoked ${type} (saw ${[...seenTypes.keys()].join(", ")})`,
      );
    }
  });

  /** Any RPC, unary or streaming: the status it ended with, if any. */
  const call = async (method: Method, input: Buffer) =>
    method.responseStream ? (await stream(method, input)).error : (await unary(method, input)).error;

  it("refuses invalid UTF-8 in every string field of every request with INVALID_ARGUMENT (invalid_utf8)", async () => {
    const wrong: string[] = [];
    const covered: string[] = [];
    for (const method of Object.values(pb.ToolBridgeService)) {
      for (const { path, bytes } of invalidUtf8Requests(requestType(method.path))) {
        const reason = malformedReason(await call(method, bytes));
        if (reason !== "invalid_utf8") wrong.push(`${method.path} ${path}: ${reason}`);
        covered.push(path);
      }
    }
    assert.deepEqual(wrong, []);
    // The descriptors were walked into values, maps and repeated fields.
    for (const path of [
      "ToolCallRequest.kwargs[key]",
      "ToolCallRequest.args > Value.map_value > MapValue.entries > MapEntry.key",
      "ToolStreamRequest.kwargs > Value.string_value",
      "BatchToolCallRequest.items > ToolCallItem.kwargs > Value.big_int_value",
      "SetVariableRequest.metadata > VariableMetadata.tags[key]",
      "WatchVariablesRequest.variable_names",
      "HealthCheckRequest.service",
    ]) {
      assert.ok(covered.includes(path), `${path} among ${covered.length} fields`);
    }
  });

  it("refuses values nested past protobuf's limit with INVALID_ARGUMENT (too_deep), less deep ones in-band", async () => {
    const sessionId = await newSession();
    const execute = pb.ToolBridgeService.executeTool;
    const request = (depth: number) =>
      Buffer.from(
        pb.ToolCallRequest.encode(
          pb.ToolCallRequest.fromPartial({
            sessionId,
            toolId: "echo",
            kwargs: { value: nestedValue(depth) },
          }),
        ).finish(),
      );
    for (const depth of [49, 60, 500]) {
      assert.equal(
        malformedReason((await unary(execute, request(depth))).error),
        "too_deep",
        `depth ${depth}`,
      );
    }
    for (const depth of [33, 48]) {
      const { bytes } = await unary(execute, request(depth));
      assert.ok(bytes, `depth ${depth} answers in-band`);
      const error = pb.ToolCallResponse.decode(bytes).error;
      assert.equal(error?.type, "InvalidValue");
      assert.equal(error?.details.reason, "too_deep");
    }
    const set = pb.ToolBridgeService.setSessionVariable;
    const deepSet = pb.SetVariableRequest.encode(
      pb.SetVariableRequest.fromPartial({ sessionId, variableName: "deep", value: nestedValue(80) }),
    ).finish();
    assert.equal(malformedReason((await unary(set, Buffer.from(deepSet))).error), "too_deep");
  });

  it("refuses bytes that are no protobuf message with INVALID_ARGUMENT (malformed), on every RPC", async () => {
    const undecodable = [
      Buffer.from([0x0f]), // wire type 7 does not exist
      Buffer.from([0x0a, 0x05, 0x61]), // a string shorter than its length prefix
      Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // a varint over 10 bytes
    ];
    const wrong: string[] = [];
    for (const method of Object.values(pb.ToolBridgeService)) {
      for (const bytes of undecodable) {
        const reason = malformedReason(await call(method, bytes));
        if (reason !== "malformed") wrong.push(`${method.path} ${bytes.toString("hex")}: ${reason}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("answers malformed requests to the standard health service the same way", async () => {
    const check = { ...HealthService.check, responseStream: false } as unknown as Method;
    const watch = HealthService.watch as unknown as Method;
    const badName = Buffer.from([0x0a, 0x02, 0xff, 0xfe]);
    assert.equal(malformedReason(await call(check, badName)), "invalid_utf8");
    assert.equal(malformedReason(await call(watch, badName)), "invalid_utf8");
    assert.equal(malformedReason(await call(check, Buffer.from([0x0f]))), "malformed");
  });

  it("round-trips random value trees exactly through echo and a variable, or refuses them as InvalidValue", async () => {
    const g = new Gen(prng(SEED));
    const sessionId = await newSession();
    const exec = pb.ToolBridgeService.executeTool;
    const set = pb.ToolBridgeService.setSessionVariable;
    const get = pb.ToolBridgeService.getSessionVariable;
    let accepted = 0;
    for (let round = 0; round < ROUNDS * 4; round++) {
      const value = g.value();
      const sent = Buffer.from(pbValues.Value.encode(value).finish()).toString("base64");
      const echoed = await unary(
        exec,
        Buffer.from(
          pb.ToolCallRequest.encode(
            pb.ToolCallRequest.fromPartial({ sessionId, toolId: "echo", kwargs: { value } }),
          ).finish(),
        ),
      );
      assert.ok(echoed.bytes, `${sent}: ${echoed.error?.details}`);
      const response = pb.ToolCallResponse.decode(echoed.bytes);
      const name = `fuzz.${round}`;
      const stored = await unary(
        set,
        Buffer.from(
          pb.SetVariableRequest.encode(
            pb.SetVariableRequest.fromPartial({
              sessionId,
              variableName: name,
              value,
              createIfMissing: true,
            }),
          ).finish(),
        ),
      );
      assert.ok(stored.bytes, `${sent}: ${stored.error?.details}`);
      const setResponse = pb.SetVariableResponse.decode(stored.bytes);
      if (!response.success) {
        // The host refuses exactly the values it cannot accept, the same way on both paths.
        assert.equal(response.error?.type, "InvalidValue", `${sent}: ${response.error?.message}`);
        assert.equal(setResponse.error?.type, "InvalidValue", `${sent}: ${setResponse.error?.message}`);
        continue;
      }
      accepted++;
      // A tool sees JS values, so echo returns the value as the TS codec maps it (an integral
      // float comes back as an int: docs/values.md); a variable keeps the exact bytes.
      const asTsSeesIt = Buffer.from(
        pbValues.Value.encode(
          encodeValue(decodeValue(pbValues.Value.decode(Buffer.from(sent, "base64")))),
        ).finish(),
      );
      const echoedBack = Buffer.from(
        pbValues.Value.encode(response.result ?? pbValues.Value.fromPartial({})).finish(),
      );
      assert.equal(echoedBack.toString("base64"), asTsSeesIt.toString("base64"), `echo of ${sent}`);
      assert.equal(setResponse.success, true, `${sent}: ${setResponse.error?.message}`);
      const read = await unary(
        get,
        Buffer.from(
          pb.GetVariableRequest.encode(
            pb.GetVariableRequest.fromPartial({ sessionId, variableName: name }),
          ).finish(),
        ),
      );
      assert.ok(read.bytes);
      const readBack = pb.VariableResponse.decode(read.bytes);
      assert.equal(
        Buffer.from(
          pbValues.Value.encode(readBack.value ?? pbValues.Value.fromPartial({})).finish(),
        ).toString("base64"),
        sent,
      );
    }
    assert.ok(accepted > ROUNDS, `most generated values are valid (${accepted} accepted)`);
  });

  it("keeps serving afterwards", async () => {
    const health = pb.ToolBridgeService.healthCheck;
    const answer = await unary(health, Buffer.from(pb.HealthCheckRequest.encode({ service: "" }).finish()));
    assert.ok(answer.bytes);
    assert.equal(
      pb.HealthCheckResponse.decode(answer.bytes).status,
      pb.HealthCheckResponse_ServingStatus.SERVING,
    );
    assert.doesNotMatch(host.stderr(), /uncaught|unhandled/i);
  });
});
