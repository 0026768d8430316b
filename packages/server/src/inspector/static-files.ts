/**
 * The inspector's page: the files `make build` puts in dist/inspector-ui (packages/inspector,
 * built by Vite), served as they are, gzipped when the browser accepts it, with headers that
 * keep the page from loading anything from elsewhere.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/** Where `make build` puts the page: packages/server/dist/inspector-ui (from src/ or dist/ alike). */
export const DEFAULT_UI_DIRECTORY = fileURLToPath(new URL("../../dist/inspector-ui/", import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json",
};

/**
 * Everything the page needs comes from this server, and it may not be framed. 'unsafe-eval'
 * is there for the form's JSON Schema validator (Ajv compiles each schema to a function);
 * inline styles for the component library.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; " +
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; " +
    "base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

interface CachedFile {
  readonly body: Buffer;
  readonly gzipped: Buffer | undefined;
  readonly type: string;
}

/** Serves the files under `root`; a missing build answers 503 with what to do. */
export class StaticFiles {
  private readonly cache = new Map<string, CachedFile | undefined>();

  constructor(private readonly root: string) {}

  get built(): boolean {
    return existsSync(join(this.root, "index.html"));
  }

  serve(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", ...SECURITY_HEADERS }).end();
      return;
    }
    if (!this.built) {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS });
      res.end(`the inspector's page is not built (${this.root} is missing): run 'make build'\n`);
      return;
    }
    const file = this.read(pathname === "/" ? "/index.html" : pathname);
    if (file === undefined) {
      res
        .writeHead(404, { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS })
        .end("not found\n");
      return;
    }
    const gzip = file.gzipped !== undefined && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const body = gzip && file.gzipped !== undefined ? file.gzipped : file.body;
    res.writeHead(200, {
      "content-type": file.type,
      "content-length": body.length,
      // Vite names the files under assets/ by their content hash; index.html must be asked for again.
      "cache-control": pathname.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache",
      vary: "accept-encoding",
      ...(gzip ? { "content-encoding": "gzip" } : {}),
      ...SECURITY_HEADERS,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  /** The file at `pathname`, read once; undefined outside the root, unknown, or of a type not served. */
  private read(pathname: string): CachedFile | undefined {
    if (this.cache.has(pathname)) return this.cache.get(pathname);
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return undefined;
    }
    const path = normalize(join(this.root, decoded));
    const type = CONTENT_TYPES[extname(path)];
    let file: CachedFile | undefined;
    if (type !== undefined && path.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep)) {
      try {
        if (statSync(path).isFile()) {
          const body = readFileSync(path);
          const compressible = type.startsWith("text/") || type.endsWith("json") || type.endsWith("svg+xml");
          file = { body, type, gzipped: compressible && body.length > 1024 ? gzipSync(body) : undefined };
        }
      } catch {
        file = undefined;
      }
    }
    // Only files that exist are cached: a request for random names must not grow the cache.
    if (file !== undefined) this.cache.set(pathname, file);
    return file;
  }
}
