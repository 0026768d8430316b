/**
 * The host's credentials as one whole: the authenticator (tokens file, the application's
 * hook, client certificates) and the TLS files, read again together on SIGHUP
 * (host/signals.ts), after which every open stream's credentials are checked against what
 * is in force.
 */
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { HostConfig } from "../config.js";
import type { PeerTransport } from "../peers/forwarder.js";
import { Authenticator } from "./authenticator.js";
import { TlsFiles, tlsEnabled } from "./certificates.js";

export class HostCredentials {
  readonly auth: Authenticator;
  /** Read when the host starts listening; undefined before. */
  private files: TlsFiles | undefined;
  private readonly tlsListeners: (() => void)[] = [];

  constructor(
    private readonly config: HostConfig,
    private readonly log: Logger,
  ) {
    this.auth = new Authenticator({
      tokensFile: config.authTokensFile,
      clientCertificates: config.tlsClientCa !== "",
      log,
    });
  }

  /** Reads the TLS files (throws ValidationError naming a bad one): the credentials of the host's port. */
  serverCredentials(): grpc.ServerCredentials {
    const files = new TlsFiles(this.config);
    for (const listener of this.tlsListeners) files.onChange(listener);
    this.files = files;
    return files.serverCredentials();
  }

  /** How the host reaches the other hosts sharing its store with the calls it forwards. */
  get peerTransport(): PeerTransport {
    return {
      servesTls: tlsEnabled(this.config),
      credentials: () => (this.files ?? new TlsFiles(this.config)).peerCredentials(),
    };
  }

  /** Calls `listener` after each reload of the TLS files. */
  onTlsReloaded(listener: () => void): void {
    this.tlsListeners.push(listener);
    this.files?.onChange(listener);
  }

  /** Whether there are files to read again on SIGHUP (a tokens file, TLS files). */
  get reloadable(): boolean {
    const { authTokensFile, tlsCert, peerTlsCa } = this.config;
    return authTokensFile !== "" || tlsCert !== "" || peerTlsCa !== "";
  }

  /** See ToolBridgeHost.reloadAuthTokens. */
  reloadAuthTokens(): boolean {
    const taken = this.auth.reload();
    if (taken) void this.auth.revalidate("re-checked after the tokens file was reloaded");
    return taken;
  }

  /** See ToolBridgeHost.reloadTlsCertificates. */
  reloadTlsCertificates(): boolean {
    const files = this.files;
    if (files === undefined) return false;
    try {
      files.reload();
    } catch (error) {
      this.log.error(
        { err: error },
        "cannot reload the TLS files; the certificates loaded before stay in force",
      );
      return false;
    }
    this.log.info({ cert: this.config.tlsCert }, "reloaded the TLS files");
    return true;
  }

  /**
   * What SIGHUP does: reads the tokens file and the TLS files again (those configured), then
   * checks every open stream's credentials against what is now in force.
   */
  reload(): void {
    if (this.config.authTokensFile !== "") this.auth.reload();
    if (this.config.tlsCert !== "" || this.config.peerTlsCa !== "") this.reloadTlsCertificates();
    void this.auth.revalidate("re-checked after SIGHUP reloaded the host's credentials");
  }
}
