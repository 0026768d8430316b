/**
 * A loopback TCP proxy in front of a host that can lose a call's answer the way a network
 * does: after the host ran the call and sent its answer, before the client reads it. Armed
 * with `loseNextAnswer()`, it holds every byte the host sends and, once a complete HTTP/2
 * DATA frame with a payload (a response message) has come from the host, cuts every
 * connection, dropping what it held. The client sees its connection drop mid-call.
 */
import net from "node:net";

/** HTTP/2 frame header: 24-bit length, type, flags, 31-bit stream id (RFC 9113 §4.1). */
const FRAME_HEADER_BYTES = 9;
const DATA_FRAME = 0x0;

/** Finds the end of each frame the host sends on one connection; true once a DATA frame with a payload is complete. */
class FrameReader {
  private pending = Buffer.alloc(0);

  /** Feeds `bytes`; says whether they completed a DATA frame that carries a payload. */
  completesData(bytes: Buffer): boolean {
    this.pending = Buffer.concat([this.pending, bytes]);
    let sawData = false;
    while (this.pending.length >= FRAME_HEADER_BYTES) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < FRAME_HEADER_BYTES + length) break;
      if (this.pending[3] === DATA_FRAME && length > 0) sawData = true;
      this.pending = this.pending.subarray(FRAME_HEADER_BYTES + length);
    }
    return sawData;
  }
}

export class AnswerCutter {
  private readonly connections = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private armed: (() => void) | undefined;
  /** Connections cut so far. */
  cuts = 0;

  private constructor(
    private readonly server: net.Server,
    readonly target: string,
  ) {}

  /** A proxy on an ephemeral loopback port forwarding to the host at `hostTarget` (host:port). */
  static async start(hostTarget: string): Promise<AnswerCutter> {
    const [host, port] = [hostTarget.slice(0, hostTarget.lastIndexOf(":")), hostTarget.split(":").pop()];
    let cutter: AnswerCutter | undefined;
    const server = net.createServer((client) => cutter?.accept(client, host, Number(port)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address() as net.AddressInfo;
    cutter = new AnswerCutter(server, `127.0.0.1:${address.port}`);
    return cutter;
  }

  /**
   * Loses the next answer the host sends: resolves once the host has sent it and every
   * connection is cut. Later connections are forwarded as usual.
   */
  loseNextAnswer(): Promise<void> {
    return new Promise((resolve) => {
      this.armed = resolve;
    });
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.connections) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, host: string, port: number): void {
    const upstream = net.connect(port, host);
    const pair = { client, upstream };
    this.connections.add(pair);
    const frames = new FrameReader();
    let held = false;
    client.on("data", (bytes: Buffer) => upstream.write(bytes));
    upstream.on("data", (bytes: Buffer) => {
      const answered = frames.completesData(bytes);
      if (this.armed === undefined && !held) {
        client.write(bytes);
        return;
      }
      // Armed: nothing more reaches the client on this connection.
      held = true;
      if (answered && this.armed !== undefined) this.cutAll();
    });
    const end = () => {
      this.connections.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  }

  private cutAll(): void {
    const done = this.armed;
    this.armed = undefined;
    for (const { client, upstream } of [...this.connections]) {
      client.destroy();
      upstream.destroy();
      this.cuts++;
    }
    done?.();
  }
}
