/** Who may scrape /metrics, when scrapes must authenticate (`metricsRequiresAuth`). */
import * as grpc from "@grpc/grpc-js";
import type { Authenticator } from "../auth/authenticator.js";
import type { ScrapeAuthorizer } from "./http.js";

/**
 * A scrape's Authorization header checked as a gRPC call's would be: a token of the tokens
 * file or the application's hook must accept it; rejects with the reason otherwise.
 */
export function scrapeAuthorizer(auth: Authenticator): ScrapeAuthorizer {
  return async (header) => {
    const metadata = new grpc.Metadata();
    if (header !== undefined) metadata.set("authorization", header);
    await auth.authenticate({ metadata, getPath: () => "GET /metrics", getAuthContext: () => ({}) });
  };
}
