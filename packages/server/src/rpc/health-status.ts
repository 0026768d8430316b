/** What the host reports to health checks: serving or not, per service name. */
/** The service name health requests may ask about besides "" (the whole host). */
export const SERVICE_NAME = "toolbridge.v1.ToolBridge";

type Listener = (serving: boolean) => void;

/**
 * The serving statuses both health services report (ToolBridge.HealthCheck and
 * grpc.health.v1.Health), by service name. "" (the whole host) and
 * "toolbridge.v1.ToolBridge" are SERVING from start() until shutdown begins and
 * NOT_SERVING during the grace period; other services the host reports on (its Python
 * worker pool) are added with set(). Any other name is unknown.
 */
export class HostHealth {
  private readonly statuses = new Map<string, boolean>([
    ["", false],
    [SERVICE_NAME, false],
  ]);
  private readonly listeners = new Map<string, Set<Listener>>();

  /** The names health requests may ask about. */
  get services(): string[] {
    return [...this.statuses.keys()];
  }

  knows(service: string): boolean {
    return this.statuses.has(service);
  }

  /** Whether `service` is serving; false for an unknown one. */
  serving(service = ""): boolean {
    return this.statuses.get(service) ?? false;
  }

  /** Sets the host's own status: "" and the ToolBridge service. */
  setHost(serving: boolean): void {
    this.set("", serving);
    this.set(SERVICE_NAME, serving);
  }

  /** Sets the status of `service`, which from then on is known. */
  set(service: string, serving: boolean): void {
    if (this.statuses.get(service) === serving) return;
    this.statuses.set(service, serving);
    for (const listener of this.listeners.get(service) ?? []) listener(serving);
  }

  /** Calls `listener` on every change of `service` until the returned function is called. */
  subscribe(service: string, listener: Listener): () => void {
    let set = this.listeners.get(service);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(service, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }
}

/** The message of an unknown service name, shared by both health services. */
export function unknownService(health: HostHealth, service: string): string {
  const known = health.services.map((name) => JSON.stringify(name)).join(", ");
  return `no service named ${JSON.stringify(service)} on this host: ask about one of ${known} ("" is the whole host)`;
}
