// Records every module the process resolves through the ES module loader, one URL a line, in
// the file $TOOLBRIDGE_RECORD_MODULES: `node --import ./record-modules.mjs ...`. For the test
// that a host with tracing off loads no OpenTelemetry SDK (packages/server/test/tracing.test.ts).
import { register } from "node:module";

register("./record-modules-hooks.mjs", import.meta.url, {
  data: { file: process.env.TOOLBRIDGE_RECORD_MODULES },
});
