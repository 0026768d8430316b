/**
 * Credentials made at run time for the security tests: a CA, a host certificate for
 * 127.0.0.1/localhost, client certificates (one from that CA, one from a stranger's),
 * certificates for hosts that call each other (one from each CA), and tokens files. Made with openssl in a fresh temporary directory; nothing is committed.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Certificates {
  readonly dir: string;
  /** The CA that signed the host's and alice's certificates. */
  readonly caFile: string;
  readonly hostCert: string;
  readonly hostKey: string;
  /** A client certificate with subject CN=alice,O=toolbridge-tests, signed by the CA. */
  readonly aliceCert: string;
  readonly aliceKey: string;
  /** A client certificate signed by another CA. */
  readonly strangerCert: string;
  readonly strangerKey: string;
  /** The other CA. */
  readonly strangerCaFile: string;
  /**
   * A host certificate for 127.0.0.1/localhost that is also a client certificate (hosts
   * forwarding calls to each other present theirs), signed by the CA.
   */
  readonly peerCert: string;
  readonly peerKey: string;
  /** The same kind of certificate, signed by the other CA. */
  readonly strangerPeerCert: string;
  readonly strangerPeerKey: string;
  read(file: string): Buffer;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function issue(dir: string, ca: string, name: string, subject: string, extensions: string): void {
  openssl(
    dir,
    "req",
    "-new",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    subject,
  );
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "1",
    "-out",
    `${name}.crt`,
    "-extfile",
    `${name}.ext`,
  );
}

/** Makes the certificates with openssl (a few hundred milliseconds). */
export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), "toolbridge-tls-"));
  for (const ca of ["ca", "stranger-ca"]) {
    openssl(
      dir,
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-keyout",
      `${ca}.key`,
      "-out",
      `${ca}.crt`,
      "-subj",
      `/CN=toolbridge test ${ca}`,
    );
  }
  issue(
    dir,
    "ca",
    "host",
    "/CN=localhost",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  issue(dir, "ca", "alice", "/O=toolbridge-tests/CN=alice", "extendedKeyUsage=clientAuth\n");
  issue(dir, "stranger-ca", "stranger", "/CN=stranger", "extendedKeyUsage=clientAuth\n");
  const peer = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n";
  issue(dir, "ca", "peer", "/CN=toolbridge test peer", peer);
  issue(dir, "stranger-ca", "stranger-peer", "/CN=toolbridge test stranger peer", peer);
  const at = (file: string) => join(dir, file);
  return {
    dir,
    caFile: at("ca.crt"),
    hostCert: at("host.crt"),
    hostKey: at("host.key"),
    aliceCert: at("alice.crt"),
    aliceKey: at("alice.key"),
    strangerCert: at("stranger.crt"),
    strangerKey: at("stranger.key"),
    strangerCaFile: at("stranger-ca.crt"),
    peerCert: at("peer.crt"),
    peerKey: at("peer.key"),
    strangerPeerCert: at("stranger-peer.crt"),
    strangerPeerKey: at("stranger-peer.key"),
    read: (file) => readFileSync(file),
  };
}

/** A fresh random token. */
export function newToken(): string {
  return randomBytes(24).toString("base64url");
}

/** Writes a tokens file (`<token> <principal>` lines) in `dir`; returns its path. */
export function writeTokens(dir: string, tokens: Record<string, string>, name = "tokens"): string {
  const file = join(dir, name);
  const lines = Object.entries(tokens).map(([token, principal]) => `${token} ${principal}`);
  writeFileSync(file, `# toolbridge test tokens\n${lines.join("\n")}\n`, { mode: 0o600 });
  return file;
}
