/**
 * The host's TLS files, read when it starts and again on reload (SIGHUP): the certificate
 * and key it serves, the CA its clients' certificates must come from (mTLS), and the CA it
 * verifies the other hosts sharing its store with when it forwards calls to them. New
 * connections get what was read last; connections already open keep what they were made with.
 *
 * The serving side is grpc-js's certificate provider API (`experimental`), the library's
 * way to change a server's certificate without binding again.
 */
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType } from "@toolbridge/core";

type CaUpdate = grpc.experimental.CaCertificateUpdate;
type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;

export interface TlsSettings {
  /** PEM certificate chain of the host; empty for plaintext. */
  readonly tlsCert: string;
  /** PEM private key of that certificate. */
  readonly tlsKey: string;
  /** PEM CA bundle: when set, clients must present a certificate it signed (mTLS). */
  readonly tlsClientCa: string;
  /** PEM CA bundle the host verifies other hosts' certificates with; empty: tlsClientCa, else the system's roots. */
  readonly peerTlsCa: string;
}

type PemSetting = "tlsCert" | "tlsKey" | "tlsClientCa" | "peerTlsCa";

/** What one reading of the files gave. */
interface Read {
  /** The host's certificate and key; undefined on a host serving plaintext. */
  readonly identity: IdentityUpdate | undefined;
  readonly clientCa: CaUpdate | undefined;
  /** The CA other hosts' certificates are verified with; undefined: the system's roots. */
  readonly peerCa: Buffer | undefined;
}

function readPem(key: PemSetting, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `cannot read ${key} ${path}: ${(error as Error).message}`,
      {
        details: { field: key },
      },
    );
  }
}

/** True when the settings turn TLS on. */
export function tlsEnabled(settings: Pick<TlsSettings, "tlsCert" | "tlsKey">): boolean {
  return settings.tlsCert !== "" || settings.tlsKey !== "";
}

function invalid(key: PemSetting, message: string): BridgeError {
  return new BridgeError(ErrorType.ValidationError, message, { details: { field: key } });
}

/**
 * Reads and checks the files: the key must fit the certificate and every file must parse,
 * here rather than at a handshake, so that a bad file is refused before anything uses it.
 */
function readFiles(settings: TlsSettings): Read {
  const serves = tlsEnabled(settings);
  if (!serves && settings.tlsClientCa !== "") {
    throw invalid("tlsClientCa", "tlsClientCa (client certificates) needs TLS: set tlsCert and tlsKey too");
  }
  for (const key of ["tlsCert", "tlsKey"] as const) {
    if (serves && settings[key] === "") throw invalid(key, "TLS needs both tlsCert and tlsKey (PEM files)");
  }
  const identity = serves
    ? { certificate: readPem("tlsCert", settings.tlsCert), privateKey: readPem("tlsKey", settings.tlsKey) }
    : undefined;
  const clientCa = settings.tlsClientCa === "" ? undefined : readPem("tlsClientCa", settings.tlsClientCa);
  const peerCa = settings.peerTlsCa === "" ? clientCa : readPem("peerTlsCa", settings.peerTlsCa);
  let checking: PemSetting = "tlsCert";
  try {
    if (identity !== undefined) createSecureContext({ cert: identity.certificate, key: identity.privateKey });
    checking = "tlsClientCa";
    if (clientCa !== undefined) createSecureContext({ ca: clientCa });
    checking = "peerTlsCa";
    if (peerCa !== undefined) createSecureContext({ ca: peerCa });
  } catch (error) {
    throw invalid(checking, `invalid TLS files (${checking}): ${(error as Error).message}`);
  }
  return { identity, clientCa: clientCa && { caCertificate: clientCa }, peerCa };
}

/**
 * The TLS files of a host: a grpc-js certificate provider for its port when it serves TLS,
 * and channel credentials for the calls it forwards to other hosts that serve TLS.
 */
export class TlsFiles implements grpc.experimental.CertificateProvider {
  private current: Read;
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly changeListeners = new Set<() => void>();

  /** Reads the files; throws ValidationError naming a setting that is missing or a file that is bad. */
  constructor(private readonly settings: TlsSettings) {
    this.current = readFiles(settings);
  }

  /**
   * Reads the files again; the new certificate serves new connections. Throws
   * ValidationError (and keeps the files read before) when one cannot be read or is bad.
   */
  reload(): void {
    const read = readFiles(this.settings);
    this.current = read;
    const { identity, clientCa } = read;
    if (identity !== undefined) for (const listener of this.identityListeners) listener(identity);
    if (clientCa !== undefined) for (const listener of this.caListeners) listener(clientCa);
    for (const listener of this.changeListeners) listener();
  }

  /** True when the host serves TLS (tlsCert and tlsKey are set). */
  get serves(): boolean {
    return this.current.identity !== undefined;
  }

  /** Calls `listener` after each reload (the forwarder makes new connections with the new files). */
  onChange(listener: () => void): void {
    this.changeListeners.add(listener);
  }

  /**
   * The credentials of the host's port: plaintext, or TLS with this provider's certificate
   * (and client certificates signed by tlsClientCa required, when it is set).
   */
  serverCredentials(): grpc.ServerCredentials {
    if (!this.serves) return grpc.ServerCredentials.createInsecure();
    const requireClientCertificates = this.current.clientCa !== undefined;
    // grpc-js 1.14 names this function's parameters (ca, identity) but uses the first as the
    // identity and the second, which may be null, as the CA; one provider for both keeps
    // only the null to place, and without client certificates the CA is the one to leave out.
    return grpc.experimental.createCertificateProviderServerCredentials(
      this,
      requireClientCertificates ? this : null,
      requireClientCertificates,
    );
  }

  /**
   * Channel credentials for calling another host that serves TLS: its certificate must be
   * signed by peerTlsCa (else tlsClientCa, else a CA the system trusts), and a host serving
   * TLS presents its own certificate, which a host requiring client certificates checks.
   */
  peerCredentials(): grpc.ChannelCredentials {
    const { identity, peerCa } = this.current;
    return grpc.credentials.createSsl(
      peerCa ?? null,
      identity?.privateKey ?? null,
      identity?.certificate ?? null,
    );
  }

  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    // As grpc-js's own providers do: never call back inside the add.
    const { identity } = this.current;
    if (identity !== undefined) process.nextTick(() => listener(identity));
  }

  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    const { clientCa } = this.current;
    if (clientCa !== undefined) process.nextTick(() => listener(clientCa));
  }

  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }
}
