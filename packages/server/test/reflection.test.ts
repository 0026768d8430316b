// Server reflection against the real host CLI: the descriptors it serves are protoc's, byte
// for byte and file by file, and the grpcurl commands of docs/hosting.md work as written (the
// address aside) with real grpcurl (`make grpcurl` builds it into .tools/bin).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { FILE_DESCRIPTOR_SET_BASE64 } from "@toolbridge/core";
import {
  type ServerReflectionRequest,
  type ServerReflectionResponse,
  ServerReflectionService,
} from "../src/gen/grpc/reflection/v1/reflection.js";
import { type HostProcess, REPO_ROOT, startHost } from "./support/host-process.js";

const GRPCURL = `${REPO_ROOT}.tools/bin/grpcurl`;
const DOC = "docs/hosting.md";
const DOC_ADDRESS = "localhost:50051";

/** The FileDescriptorProtos gen.sh compiled, as protoc serialized them, by file name. */
function compiledFiles(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const reader = new BinaryReader(Buffer.from(FILE_DESCRIPTOR_SET_BASE64, "base64"));
  while (reader.pos < reader.len) {
    reader.tag();
    const bytes = Buffer.from(reader.bytes());
    files.set(fromBinary(FileDescriptorProtoSchema, bytes).name, bytes);
  }
  return files;
}

/** The commands of the doc's grpcurl block, continuation lines joined. */
function docCommands(): string[] {
  const doc = readFileSync(`${REPO_ROOT}${DOC}`, "utf8");
  const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((match) => match[1] ?? "")
    .filter((block) => block.includes("grpcurl "));
  assert.equal(blocks.length, 1, `one grpcurl block in ${DOC}`);
  return (blocks[0] ?? "")
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .filter((line) => line.startsWith("grpcurl "));
}

/** The output the doc shows for `describe`, from its heading line to the closing brace. */
function docDescribeOutput(): string {
  const doc = readFileSync(`${REPO_ROOT}${DOC}`, "utf8");
  const match = /^toolbridge\.v1\.ToolCallRequest is a message:\n[\s\S]*?\n}\n/m.exec(doc);
  assert.ok(match, `${DOC} shows describe's output`);
  return match[0];
}

function grpcurl(command: string, target: string): { stdout: string; stderr: string } {
  const run = spawnSync("bash", ["-c", command.replaceAll(DOC_ADDRESS, target)], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${REPO_ROOT}.tools/bin:${process.env.PATH ?? ""}` },
    timeout: 30_000,
  });
  assert.equal(run.status, 0, `${command}\n${run.stderr}`);
  return { stdout: run.stdout, stderr: run.stderr };
}

describe("server reflection", () => {
  let host: HostProcess;

  before(async () => {
    host = await startHost();
  });
  after(async () => {
    assert.equal(await host.stop(), 0, host.stderr());
  });

  /** One reflection request over v1 or v1alpha, answered on a stream of its own. */
  async function reflect(version: "v1" | "v1alpha", request: ServerReflectionRequest["messageRequest"]) {
    const method = ServerReflectionService.serverReflectionInfo;
    const client = new grpc.Client(host.target, grpc.credentials.createInsecure());
    try {
      const call = client.makeBidiStreamRequest(
        method.path.replace(".v1.", `.${version}.`),
        method.requestSerialize,
        method.responseDeserialize,
      );
      const response = await new Promise<ServerReflectionResponse>((resolve, reject) => {
        call.once("data", resolve);
        call.once("error", reject);
        call.write({ host: "", messageRequest: request });
      });
      call.end();
      return response.messageResponse;
    } finally {
      client.close();
    }
  }

  it("serves every file as protoc compiled it, under its own name, with its imports", async () => {
    const compiled = compiledFiles();
    assert.deepEqual([...compiled.keys()].sort(), [
      "google/protobuf/timestamp.proto",
      "grpc/health/v1/health.proto",
      "toolbridge/v1/agents.proto",
      "toolbridge/v1/toolbridge.proto",
      "toolbridge/v1/values.proto",
      "toolbridge/v1/worker.proto",
    ]);
    for (const version of ["v1", "v1alpha"] as const) {
      for (const [name, bytes] of compiled) {
        const answer = await reflect(version, { $case: "fileByFilename", value: name });
        assert.equal(answer?.$case, "fileDescriptorResponse", `${version} ${name}`);
        const [served, ...imports] = answer.value.fileDescriptorProto;
        assert.ok(served?.equals(bytes), `${version} serves ${name} byte for byte`);
        const expected = fromBinary(FileDescriptorProtoSchema, bytes).dependency;
        const names = imports.map((file) => fromBinary(FileDescriptorProtoSchema, file).name);
        for (const dependency of expected)
          assert.ok(names.includes(dependency), `${name} comes with ${dependency}`);
      }
    }
    const bySymbol = await reflect("v1", {
      $case: "fileContainingSymbol",
      value: "toolbridge.v1.ToolBridge.ExecuteTool",
    });
    assert.equal(bySymbol?.$case, "fileDescriptorResponse");
    const names = bySymbol.value.fileDescriptorProto.map(
      (file) => fromBinary(FileDescriptorProtoSchema, file).name,
    );
    assert.deepEqual(names.sort(), [
      "google/protobuf/timestamp.proto",
      "toolbridge/v1/toolbridge.proto",
      "toolbridge/v1/values.proto",
    ]);
    const missing = await reflect("v1", { $case: "fileContainingSymbol", value: "toolbridge.v1.Nope" });
    assert.ok(missing?.$case === "errorResponse");
    assert.equal(missing.value.errorCode, grpc.status.NOT_FOUND);
  });

  it("answers a request it cannot decode with INVALID_ARGUMENT, like every other service", async () => {
    const client = new grpc.Client(host.target, grpc.credentials.createInsecure());
    try {
      const raw = (bytes: Buffer) => bytes;
      const call = client.makeBidiStreamRequest(ServerReflectionService.serverReflectionInfo.path, raw, raw);
      const error = await new Promise<grpc.ServiceError>((resolve) => {
        call.on("data", () => {});
        call.once("error", resolve);
        call.write(Buffer.from([0x1a, 0x02, 0xff, 0xfe])); // file_by_filename with invalid UTF-8
      });
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.match(
        error.details,
        /^malformed request to \/grpc\.reflection\.v1\.ServerReflection\/ServerReflectionInfo \(invalid_utf8\)/,
      );
    } finally {
      client.close();
    }
  });

  it("makes the grpcurl commands of docs/hosting.md true: list, describe, a health check and a tool call", () => {
    assert.ok(existsSync(GRPCURL), `${GRPCURL} is missing: run make grpcurl`);
    const outputs = docCommands().map((command) => ({ command, ...grpcurl(command, host.target) }));
    assert.equal(outputs.length, 5);
    const [list, describeCall, health, init, execute] = outputs.map((o) => o.stdout);
    assert.deepEqual(list?.trim().split("\n").sort(), ["grpc.health.v1.Health", "toolbridge.v1.ToolBridge"]);
    assert.equal(describeCall, docDescribeOutput());
    assert.deepEqual(JSON.parse(health ?? ""), { status: "SERVING" });
    assert.equal(JSON.parse(init ?? "").success, true);
    const result = JSON.parse(execute ?? "") as { success: boolean; result: unknown };
    assert.deepEqual([result.success, result.result], [true, { floatValue: 5.5 }]);
  });

  it("describes maps and optional fields as declared", () => {
    const describe = (symbol: string) =>
      grpcurl(`grpcurl -plaintext ${DOC_ADDRESS} describe ${symbol}`, host.target).stdout;
    assert.match(describe("toolbridge.v1.VariableConstraints"), /\n {2}optional double min = 1;\n/);
    assert.match(
      describe("toolbridge.v1.ToolCallRequest"),
      /map<string, \.toolbridge\.v1\.Value> kwargs = 4;/,
    );
    assert.match(describe("toolbridge.v1.MapValue"), /repeated \.toolbridge\.v1\.MapEntry entries = 1;/);
    assert.match(
      describe("grpc.health.v1.HealthListResponse"),
      /map<string, \.grpc\.health\.v1\.HealthCheckResponse> statuses = 1;/,
    );
    assert.match(describe("toolbridge.v1.Value"), /\.google\.protobuf\.Timestamp timestamp_value = 11;/);
  });
});
