/**
 * The tools of the multi-node example (examples/cluster/demo.py): every host runs this
 * module, so every node serves them; each result names the node that ran it.
 */
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";

let placed = 0;

export default function register(host: ToolBridgeHost): void {
  const node = () => host.nodeId ?? "local";
  host.registerTool([
    defineTool({
      name: "node_info",
      description: "The node serving this call: its name among the hosts sharing the store, and its pid.",
      handler: () => ({ node: node(), pid: process.pid }),
    }),
    defineTool({
      name: "place_order",
      description:
        "Places an order (its side effect: this node's count of placed orders goes up) and says which node did it.",
      parameters: z.object({ item: z.string(), quantity: z.int().min(1) }),
      handler: ({ item, quantity }) => {
        placed++;
        return { item, quantity, node: node(), placed_here: placed, pid: process.pid };
      },
    }),
  ]);
}
