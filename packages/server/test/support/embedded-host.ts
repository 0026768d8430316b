/**
 * A host embedded in an application the way the README shows it (new ToolBridgeHost,
 * start(), handleSignals()), serving the fault tools; run as a child process by the
 * fault-containment tests, so that a host the faults took down fails them instead of
 * the test runner. Prints the CLI's ready line.
 */
import { ToolBridgeHost } from "@toolbridge/server";
import { tools as shopTools } from "../../../../examples/tools/shop-tools.js";
import { tools as faultTools } from "../../../../testdata/tools/fault-tools.js";

const host = new ToolBridgeHost({ port: 0, logLevel: "warn" });
host.registerTool([...faultTools, ...shopTools]);
const address = await host.start();
host.handleSignals();
process.stdout.write(`toolbridge serving on ${address.target} with ${host.toolNames().length} tools\n`);
