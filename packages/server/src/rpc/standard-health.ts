/**
 * The standard grpc.health.v1.Health service (Check, Watch, List) over the host's
 * HostHealth, as load balancers, orchestrators and grpc-health-probe expect it. It keeps
 * answering during the shutdown grace period, with NOT_SERVING.
 */
import * as grpc from "@grpc/grpc-js";
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthListResponse,
  HealthService,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health.js";
import { type HostHealth, unknownService } from "./health-status.js";
import { guardRequests, refusalOf, type ServiceGuard } from "./malformed.js";

type WatchStream = grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;

export class StandardHealthService {
  private readonly watches = new Set<WatchStream>();
  private closed = false;

  constructor(private readonly health: HostHealth) {}

  /** Adds the service to `server`, its implementation wrapped by `guard` (authentication) when given. */
  addTo(server: grpc.Server, guard: ServiceGuard = (_, implementation) => implementation): void {
    const definition = guardRequests(HealthService);
    const implementation: grpc.UntypedServiceImplementation = {
      check: (
        call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
        callback: grpc.sendUnaryData<HealthCheckResponse>,
      ) => this.check(call.request, callback),
      watch: (call: WatchStream) => this.watch(call),
      list: (
        call: grpc.ServerUnaryCall<unknown, HealthListResponse>,
        callback: grpc.sendUnaryData<HealthListResponse>,
      ) => {
        const refusal = refusalOf(call.request);
        if (refusal !== undefined) callback(refusal);
        else {
          const statuses = Object.fromEntries(this.health.services.map((name) => [name, this.status(name)]));
          callback(null, { statuses });
        }
      },
    };
    server.addService(definition, guard(definition, implementation));
  }

  /**
   * Ends every Watch with OK (the protocol asks clients to watch again, with backoff),
   * so that a shutting-down server need not wait for the watchers to hang up.
   */
  closeWatches(): void {
    this.closed = true;
    for (const call of this.watches) call.end();
    this.watches.clear();
  }

  private status(service: string): HealthCheckResponse {
    return { status: this.health.serving(service) ? ServingStatus.SERVING : ServingStatus.NOT_SERVING };
  }

  private check(request: unknown, callback: grpc.sendUnaryData<HealthCheckResponse>): void {
    const refusal = refusalOf(request);
    if (refusal !== undefined) {
      callback(refusal);
      return;
    }
    const { service } = request as HealthCheckRequest;
    if (this.health.knows(service)) callback(null, this.status(service));
    else callback({ code: grpc.status.NOT_FOUND, details: unknownService(this.health, service) });
  }

  private watch(call: WatchStream): void {
    const refusal = refusalOf(call.request);
    if (refusal !== undefined) {
      call.emit("error", refusal);
      return;
    }
    const { service } = call.request;
    // An unknown name may become known later (the worker pool starts after the server).
    call.write(this.health.knows(service) ? this.status(service) : { status: ServingStatus.SERVICE_UNKNOWN });
    if (this.closed) {
      call.end();
      return;
    }
    this.keep(
      call,
      // A watch whose credentials were revoked has ended (auth/guard.ts) before it is forgotten.
      this.health.subscribe(service, () => {
        if (!call.writableEnded) call.write(this.status(service));
      }),
    );
  }

  private keep(call: WatchStream, unsubscribe: () => void): void {
    this.watches.add(call);
    const forget = () => {
      unsubscribe();
      this.watches.delete(call);
    };
    call.once("cancelled", forget);
    call.once("finish", forget);
  }
}
