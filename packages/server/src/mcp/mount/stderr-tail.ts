/** The last lines a stdio MCP server wrote to stderr: why it failed to start is usually there. */
import type { Stream } from "node:stream";

const KEPT_LINES = 5;
const MAX_LINE = 300;

export class StderrTail {
  private lines: string[] = [];

  /** Reads `stream` line by line, keeping the last few and handing each to `onLine`. */
  follow(stream: Stream | null, onLine: (line: string) => void): void {
    this.lines = [];
    if (stream === null) return;
    let partial = "";
    stream.on("data", (data: Buffer | string) => {
      const parts = (partial + data.toString()).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) this.keep(line, onLine);
      if (partial.length > MAX_LINE) {
        this.keep(partial, onLine);
        partial = "";
      }
    });
  }

  /** The kept lines, as a suffix for an error message ("" when there are none). */
  text(): string {
    return this.lines.length === 0 ? "" : `; its stderr ended with: ${this.lines.join(" | ")}`;
  }

  private keep(line: string, onLine: (line: string) => void): void {
    const trimmed = line.trimEnd().slice(0, MAX_LINE);
    if (trimmed === "") return;
    onLine(trimmed);
    this.lines.push(trimmed);
    if (this.lines.length > KEPT_LINES) this.lines.shift();
  }
}
