/**
 * Module hooks (`node:module` register) through which the CLI loads its TypeScript tools
 * modules: a `.ts` module named with `--tools` is an ES module whatever the nearest
 * package.json says. Without them, tsx follows the package's `type`, and in a project made by
 * `npm init -y` (CommonJS) it compiles the module to CommonJS, which Node then refuses to load
 * ("Cannot require() ES Module ... in a cycle").
 *
 * They run in Node's hooks thread, after tsx's (registered first): `initialize` gets the
 * file URLs of the tools modules, `resolve` marks those as ES modules, and tsx then compiles
 * them as such. Modules they import keep the format their package gives them.
 */
import type { InitializeHook, ResolveHook } from "node:module";

/** What the CLI passes to `register(..., { data })`. */
export interface ToolsModuleHooksData {
  /** `file:` URLs of the `.ts` tools modules, as `import()` resolves them. */
  readonly esm: readonly string[];
}

let esm = new Set<string>();

export const initialize: InitializeHook<ToolsModuleHooksData> = (data) => {
  esm = new Set(data.esm);
};

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  const resolved = await nextResolve(specifier, context);
  return esm.has(resolved.url) ? { ...resolved, format: "module" } : resolved;
};
