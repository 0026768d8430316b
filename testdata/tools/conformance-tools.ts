/**
 * The fixture tools the MCP conformance suite (`@modelcontextprotocol/conformance`, server
 * mode) calls by name, written as ordinary toolbridge tools: the suite's scenarios for MCP
 * features toolbridge has (text results, tool errors, progress) run against the real host.
 */
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";

export default function register(host: ToolBridgeHost): void {
  host.registerTool([
    defineTool({
      name: "test_simple_text",
      description: "Returns a fixed text (conformance: tools-call-simple-text).",
      handler: () => "This is a simple text response for testing.",
    }),
    defineTool({
      name: "test_error_handling",
      description: "Always fails (conformance: tools-call-error).",
      handler: () => {
        throw new Error("This tool intentionally returns an error for testing");
      },
    }),
    defineTool({
      name: "test_tool_with_progress",
      description:
        "Streams three chunks, which reach MCP clients as progress (conformance: tools-call-with-progress).",
      streaming: true,
      handler: async function* () {
        for (const percent of [0, 50, 100]) yield { percent };
      },
    }),
  ]);
}
