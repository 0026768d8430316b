/**
 * The page's client of the host: the ToolBridge service over the Connect protocol, through
 * the inspector's gateway (/api), which forwards every call to the host's gRPC port. The
 * page's credentials: a token the user typed (kept in this tab's sessionStorage), or the
 * access key of `toolbridge inspect --token` from the URL it printed.
 */
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { type ErrorInfo, ToolBridge } from "../gen/toolbridge/v1/toolbridge_pb";

const TOKEN_KEY = "toolbridge.inspector.token";
const ACCESS_KEY = "toolbridge.inspector.key";
const ACCESS_KEY_HEADER = "x-toolbridge-inspector-key";

/** Moves the access key out of the URL (`#key=...`) into this tab's storage, once. */
function takeAccessKey(): void {
  const match = /^#key=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
  if (match?.[1] === undefined) return;
  sessionStorage.setItem(ACCESS_KEY, match[1]);
  history.replaceState(null, "", `${window.location.pathname}${window.location.search}#/tools`);
}
takeAccessKey();

export function currentToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

/** Sets (or with "" forgets) the bearer token the page's calls carry. */
export function setToken(token: string): void {
  if (token === "") sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

const credentials: Interceptor = (next) => (request) => {
  const token = currentToken();
  const key = sessionStorage.getItem(ACCESS_KEY);
  if (token !== "") request.header.set("authorization", `Bearer ${token}`);
  else if (key !== null) request.header.set(ACCESS_KEY_HEADER, key);
  return next(request);
};

export const host: Client<typeof ToolBridge> = createClient(
  ToolBridge,
  createConnectTransport({
    baseUrl: new URL("api", window.location.href).href.replace(/#.*$/, ""),
    useBinaryFormat: true,
    interceptors: [credentials],
  }),
);

/** The gateway's description of the host (/config.json): its address and transport, for the calls to copy. */
export interface PageConfig {
  readonly target: string;
  readonly tls: boolean;
  readonly tokenHeld: boolean;
}

export async function pageConfig(): Promise<PageConfig> {
  const response = await fetch(new URL("config.json", window.location.href).href.replace(/#.*$/, ""));
  return (await response.json()) as PageConfig;
}

/** A failure the host answered in-band (success false): its ErrorInfo. */
export class HostError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(`${info.type}: ${info.message}`);
  }
}

/** `response` when it succeeded; throws HostError with its ErrorInfo when the host says it failed. */
export function ok<T extends { success: boolean; error?: ErrorInfo | undefined }>(response: T): T {
  if (!response.success && response.error !== undefined) throw new HostError(response.error);
  return response;
}

/** What to show for a failed call: the host's error type and message, or the transport's code. */
export function describeFailure(error: unknown): string {
  if (error instanceof HostError) return error.message;
  const connect = ConnectError.from(error);
  if (connect.code === Code.Unauthenticated) return `not authenticated: ${connect.rawMessage}`;
  return `${Code[connect.code]}: ${connect.rawMessage}`;
}

/** True when a call failed because it was cancelled here (the page navigated away, the user stopped it). */
export function isAbort(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}
