/**
 * The floor under every figure: a Node process that echoes what a Python process writes on a
 * Unix domain socket, with no protocol at all. One small write and one read per round trip,
 * each side waking the other: what a call from Python to Node costs before any framing,
 * HTTP/2 or gRPC.
 *
 *   node --import tsx bench/peers/pingpong.ts --listen /path/to.sock   prints "listening on unix:<path>"
 */
import { createServer } from "node:net";
import { flag } from "./semantics.js";

const path = flag("listen", "");
if (path === "") throw new Error("pingpong needs --listen /path/to.sock");
const server = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("data", (data) => socket.write(data));
  socket.on("error", () => socket.destroy());
});
server.listen(path, () => process.stdout.write(`listening on unix:${path}\n`));
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
