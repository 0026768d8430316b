/**
 * A call made on the page, as the same call from Python, TypeScript and grpcurl: each keeps
 * the argument kinds the page sent (a float stays a float: 3.0 in Python, float64(3) in
 * TypeScript, {"float_value": 3} for grpcurl).
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Value } from "../gen/toolbridge/v1/values_pb";
import { floatText, valueText } from "./values";

export interface CallToCopy {
  /** The host's address as clients dial it, whether they use TLS, and whether they need a token. */
  readonly target: string;
  readonly tls: boolean;
  readonly authenticated: boolean;
  readonly sessionId: string;
  readonly tool: string;
  readonly streaming: boolean;
  readonly kwargs: Readonly<Record<string, Value>>;
  /** The request as proto3 JSON with the proto's field names (what grpcurl takes). */
  readonly requestJson: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function pythonText(v: Value | undefined): string {
  const kind = v?.kind;
  switch (kind?.case) {
    case undefined:
    case "nullValue":
      return "None";
    case "boolValue":
      return kind.value ? "True" : "False";
    case "intValue":
      return kind.value.toString();
    case "bigIntValue":
      return kind.value;
    case "floatValue":
      return Number.isFinite(kind.value) ? floatText(kind.value) : `float("${kind.value}")`;
    case "stringValue":
      return JSON.stringify(kind.value);
    case "bytesValue":
      return `bytes.fromhex("${[...kind.value].map((b) => b.toString(16).padStart(2, "0")).join("")}")`;
    case "timestampValue":
      return `datetime.fromisoformat("${timestampDate(kind.value).toISOString()}")`;
    case "tensorValue":
      return `None  # ${valueText(v)}: pass a numpy array`;
    case "listValue":
      return `[${kind.value.values.map(pythonText).join(", ")}]`;
    case "mapValue":
      return `{${kind.value.entries.map((e) => `${JSON.stringify(e.key)}: ${pythonText(e.value)}`).join(", ")}}`;
  }
}

function typescriptText(v: Value | undefined): string {
  const kind = v?.kind;
  switch (kind?.case) {
    case undefined:
    case "nullValue":
      return "null";
    case "boolValue":
      return String(kind.value);
    case "intValue":
      return Number.isSafeInteger(Number(kind.value)) ? kind.value.toString() : `${kind.value}n`;
    case "bigIntValue":
      return `${kind.value}n`;
    case "floatValue":
      // An integral number goes out as an int unless wrapped (docs/values.md).
      return Number.isInteger(kind.value) ? `float64(${kind.value})` : String(kind.value);
    case "stringValue":
      return JSON.stringify(kind.value);
    case "bytesValue":
      return `new Uint8Array([${[...kind.value].join(", ")}])`;
    case "timestampValue":
      return `new Date("${timestampDate(kind.value).toISOString()}")`;
    case "tensorValue":
      return `undefined /* ${valueText(v)}: pass a Tensor */`;
    case "listValue":
      return `[${kind.value.values.map(typescriptText).join(", ")}]`;
    case "mapValue":
      return `{ ${kind.value.entries
        .map((e) => `${IDENTIFIER.test(e.key) ? e.key : JSON.stringify(e.key)}: ${typescriptText(e.value)}`)
        .join(", ")} }`;
  }
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function pythonSnippet(call: CallToCopy): string {
  const args = Object.entries(call.kwargs).map(([key, v]) =>
    IDENTIFIER.test(key) ? `${key}=${pythonText(v)}` : `**{${JSON.stringify(key)}: ${pythonText(v)}}`,
  );
  const invocation = [JSON.stringify(call.tool), ...args].join(", ");
  const options = [
    ...(call.tls ? [`tls=TlsConfig.from_files(ca="ca.pem")`] : []),
    ...(call.authenticated ? [`token=os.environ["TOOLBRIDGE_TOKEN"]`] : []),
  ];
  const body = call.streaming
    ? [
        `        async with aclosing(client.stream_tool(${invocation})) as chunks:`,
        "            async for chunk in chunks:",
        "                print(chunk)",
      ]
    : [`        print(await client.execute_tool(${invocation}))`];
  return [
    "import asyncio",
    ...(call.authenticated ? ["import os"] : []),
    ...(call.streaming ? ["from contextlib import aclosing"] : []),
    `from toolbridge import ${call.tls ? "TlsConfig, " : ""}ToolBridgeClient`,
    "",
    "",
    "async def main() -> None:",
    `    async with ToolBridgeClient(${[JSON.stringify(call.target), ...options].join(", ")}) as client:`,
    `        await client.initialize_session(${JSON.stringify(call.sessionId)})`,
    ...body,
    "",
    "",
    "asyncio.run(main())",
  ].join("\n");
}

export function typescriptSnippet(call: CallToCopy): string {
  const usesFloat = Object.values(call.kwargs).some((v) => typescriptText(v).includes("float64("));
  const imports = usesFloat ? "{ float64, ToolBridgeClient }" : "{ ToolBridgeClient }";
  const kwargs = `{ ${Object.entries(call.kwargs)
    .map(([key, v]) => `${IDENTIFIER.test(key) ? key : JSON.stringify(key)}: ${typescriptText(v)}`)
    .join(", ")} }`;
  const options = [
    ...(call.tls ? [`tls: { ca: readFileSync("ca.pem") }`] : []),
    ...(call.authenticated ? ["token: process.env.TOOLBRIDGE_TOKEN"] : []),
  ];
  const body = call.streaming
    ? `for await (const chunk of client.streamTool(${JSON.stringify(call.tool)}, ${kwargs})) console.log(chunk);`
    : `console.log(await client.executeTool(${JSON.stringify(call.tool)}, ${kwargs}));`;
  return [
    ...(call.tls ? [`import { readFileSync } from "node:fs";`] : []),
    `import ${imports} from "@toolbridge/client";`,
    "",
    `const client = new ToolBridgeClient(${JSON.stringify(call.target)}${options.length > 0 ? `, { ${options.join(", ")} }` : ""});`,
    `await client.initializeSession(${JSON.stringify(call.sessionId)});`,
    body,
    "client.close();",
  ].join("\n");
}

export function grpcurlSnippet(call: CallToCopy): string {
  const method = call.streaming ? "StreamTool" : "ExecuteTool";
  const flags = [
    call.tls ? "-cacert ca.pem" : "-plaintext",
    ...(call.authenticated ? [`-H "authorization: Bearer $TOOLBRIDGE_TOKEN"`] : []),
  ];
  return `grpcurl ${flags.join(" ")} -d ${shellQuote(call.requestJson)} \\\n  ${call.target} toolbridge.v1.ToolBridge/${method}`;
}
