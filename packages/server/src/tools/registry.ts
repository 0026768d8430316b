import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Tool } from "./define.js";

export interface RegisterOptions {
  /** Register for this session only; it shadows a global tool of the same name there. */
  sessionId?: string | undefined;
  /** Replace a tool already registered under the name instead of failing. */
  replace?: boolean;
}

/** Global tools and per-session tools, looked up session first. */
export class ToolRegistry {
  private readonly global = new Map<string, Tool>();
  private readonly perSession = new Map<string, Map<string, Tool>>();

  register(tool: Tool, options: RegisterOptions = {}): void {
    const { sessionId } = options;
    let scope = this.global;
    if (sessionId !== undefined) {
      scope = this.perSession.get(sessionId) ?? new Map();
      this.perSession.set(sessionId, scope);
    }
    if (scope.has(tool.name) && options.replace !== true) {
      const where = sessionId === undefined ? "globally" : `for session '${sessionId}'`;
      throw new BridgeError(
        ErrorType.ValidationError,
        `a tool named '${tool.name}' is already registered ${where}; pass { replace: true } to replace it`,
      );
    }
    scope.set(tool.name, tool);
  }

  unregister(name: string, sessionId?: string): boolean {
    if (sessionId === undefined) return this.global.delete(name);
    return this.perSession.get(sessionId)?.delete(name) ?? false;
  }

  resolve(sessionId: string, name: string): Tool | undefined {
    return this.perSession.get(sessionId)?.get(name) ?? this.global.get(name);
  }

  /** Whether `tool` is the global tool of its name (not a session's). */
  isGlobal(tool: Tool): boolean {
    return this.global.get(tool.name) === tool;
  }

  /** The tools a session sees, with whether each is session-scoped. */
  list(sessionId: string): { tool: Tool; sessionScoped: boolean }[] {
    const own = this.perSession.get(sessionId);
    const out: { tool: Tool; sessionScoped: boolean }[] = [];
    for (const tool of this.global.values()) {
      if (own?.has(tool.name) !== true) out.push({ tool, sessionScoped: false });
    }
    for (const tool of own?.values() ?? []) out.push({ tool, sessionScoped: true });
    return out;
  }

  count(sessionId: string): number {
    const own = this.perSession.get(sessionId);
    if (own === undefined) return this.global.size;
    let shadowed = 0;
    for (const name of own.keys()) if (this.global.has(name)) shadowed++;
    return this.global.size + own.size - shadowed;
  }

  names(sessionId: string): string[] {
    return this.list(sessionId).map((entry) => entry.tool.name);
  }

  dropSession(sessionId: string): void {
    this.perSession.delete(sessionId);
  }

  get globalCount(): number {
    return this.global.size;
  }
}
