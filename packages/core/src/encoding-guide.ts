/**
 * Schema-guided encoding: a JSON Schema says which JavaScript numbers are floats.
 *
 * JavaScript has one number type, so `encodeValue` infers the kind from the value and
 * an integral number becomes an int: `1.0` is sent as int 1 and `1e300` as a 301-digit
 * big int. A schema knows better. Where it says `"type": "number"` (not `"integer"`),
 * an `EncodingGuide` compiled from it makes `encodeValue(value, guide)` send a JS number
 * as a float, integral or not.
 *
 * Followed: `type` (a string or a list; "number" without "integer" means float),
 * `properties` and `additionalProperties` (objects, records, catchalls), `items` and
 * `prefixItems` (arrays, tuples), `anyOf` / `oneOf` (unions, nullable; the first
 * alternative that accepts the value's JSON type applies, for objects preferring the one
 * whose `const` properties and `required` keys match), `allOf` (merged), and `$ref` to
 * `#`, `#/$defs/…` or `#/definitions/…` (recursive schemas).
 * Not followed (the value's own kind applies): numeric `const` / `enum` literals,
 * `patternProperties`, `if` / `then` / `else`, `not`, references to other documents, and
 * values a JSON Schema cannot describe (Map, Set, bigint, Date, tensors, `Float64`, which
 * keep their documented kinds). A number where the schema says "integer" stays an int.
 */

/** What `encodeValue` follows to pick float over int; build one with `encodingGuide()`. */
export interface EncodingGuide {
  /** Numbers at this place are floats. */
  readonly float: boolean;
  /** Bit set of the JSON types this place accepts (used to pick a union's alternative). */
  readonly accepts: number;
  /** Guides of the first list elements (a tuple's), then `items` for the rest. */
  readonly prefixItems: readonly (EncodingGuide | undefined)[] | undefined;
  readonly items: EncodingGuide | undefined;
  /** Guides of named map entries (undefined: named, not guided), then `additional` for any other key. */
  readonly properties: ReadonlyMap<string, EncodingGuide | undefined> | undefined;
  readonly additional: EncodingGuide | undefined;
  /** Entries an object alternative fixes with `const` (a discriminated union's tag). */
  readonly consts: ReadonlyMap<string, unknown> | undefined;
  readonly required: readonly string[] | undefined;
  /** A union: the first alternative accepting the value applies. */
  readonly alternatives: readonly EncodingGuide[] | undefined;
}

const NULL = 1;
const BOOLEAN = 2;
const INTEGER = 4;
const NUMBER = 8;
const STRING = 16;
const ARRAY = 32;
const OBJECT = 64;
const ANY = 127;
const TYPE_BITS: Readonly<Record<string, number>> = {
  null: NULL,
  boolean: BOOLEAN,
  integer: INTEGER,
  number: NUMBER | INTEGER,
  string: STRING,
  array: ARRAY,
  object: OBJECT,
};

type Schema = { readonly [key: string]: unknown };

interface MutableGuide {
  float: boolean;
  accepts: number;
  prefixItems: (EncodingGuide | undefined)[] | undefined;
  items: EncodingGuide | undefined;
  properties: Map<string, EncodingGuide | undefined> | undefined;
  additional: EncodingGuide | undefined;
  consts: Map<string, unknown> | undefined;
  required: readonly string[] | undefined;
  alternatives: EncodingGuide[] | undefined;
}

/**
 * Compiles a JSON Schema (as parsed from JSON) into the guide `encodeValue` follows, or
 * undefined when nothing in it says "number", so that encoding by it is plain inference.
 */
export function encodingGuide(schema: unknown): EncodingGuide | undefined {
  return new Compiler(schema).useful(schema);
}

class Compiler {
  private readonly compiled = new Map<Schema, MutableGuide>();
  private readonly floats = new Map<Schema, boolean>();

  constructor(private readonly root: unknown) {}

  /** The guide of `schema`, or undefined when no number below it is a float. */
  useful(schema: unknown): EncodingGuide | undefined {
    return isSchema(schema) && this.hasFloat(schema, new Set()) ? this.compile(schema) : undefined;
  }

  private compile(schema: Schema): EncodingGuide {
    const target = this.resolve(schema);
    const known = this.compiled.get(target);
    if (known !== undefined) return known;
    const guide: MutableGuide = {
      float: false,
      accepts: ANY,
      prefixItems: undefined,
      items: undefined,
      properties: undefined,
      additional: undefined,
      consts: undefined,
      required: undefined,
      alternatives: undefined,
    };
    // Registered before the children are compiled, so a recursive schema refers back to it.
    this.compiled.set(target, guide);
    this.fill(guide, target);
    return guide;
  }

  private fill(guide: MutableGuide, schema: Schema): void {
    guide.accepts = typeBits(schema);
    guide.float = isFloat(schema);
    if (Array.isArray(schema.prefixItems)) guide.prefixItems = schema.prefixItems.map((s) => this.useful(s));
    guide.items = this.useful(schema.items);
    guide.additional = this.useful(schema.additionalProperties);
    if (isSchema(schema.properties)) {
      const consts = new Map<string, unknown>();
      const properties = new Map<string, EncodingGuide | undefined>();
      for (const [key, property] of Object.entries(schema.properties)) {
        if (isSchema(property) && "const" in property) consts.set(key, property.const);
        const child = this.useful(property);
        // An unguided named key is kept only to stop `additional` from applying to it.
        if (child !== undefined || guide.additional !== undefined) properties.set(key, child);
      }
      if (properties.size > 0) guide.properties = properties;
      if (consts.size > 0) guide.consts = consts;
    }
    if (Array.isArray(schema.required)) guide.required = schema.required.filter((k) => typeof k === "string");
    const union = [
      ...(Array.isArray(schema.anyOf) ? schema.anyOf : []),
      ...(Array.isArray(schema.oneOf) ? schema.oneOf : []),
    ].filter(isSchema);
    // Every alternative is kept, guided or not: each may be the one a value selects.
    if (union.length > 0) guide.alternatives = union.map((s) => this.compile(s));
    if (Array.isArray(schema.allOf)) {
      for (const part of schema.allOf.filter(isSchema)) merge(guide, this.compile(part));
    }
  }

  /** Whether a number at or below `schema` is a float, following `$ref`s around cycles. */
  private hasFloat(schema: Schema, visiting: Set<Schema>): boolean {
    const target = this.resolve(schema);
    const known = this.floats.get(target);
    if (known !== undefined) return known;
    // Back on the path being walked: that node's own answer is being worked out above.
    if (visiting.has(target)) return false;
    visiting.add(target);
    const below = (s: unknown): boolean => isSchema(s) && this.hasFloat(s, visiting);
    const list = (s: unknown): boolean => Array.isArray(s) && s.some(below);
    const result =
      isFloat(target) ||
      below(target.items) ||
      list(target.prefixItems) ||
      below(target.additionalProperties) ||
      (isSchema(target.properties) && Object.values(target.properties).some(below)) ||
      list(target.anyOf) ||
      list(target.oneOf) ||
      list(target.allOf);
    visiting.delete(target);
    // A "no" reached below a cut cycle may change once the node above is known; only the
    // outermost walk's "no" is final.
    if (result || visiting.size === 0) this.floats.set(target, result);
    return result;
  }

  /** Follows `$ref`s within the document (`#`, `#/$defs/…`, `#/definitions/…`). */
  private resolve(schema: Schema): Schema {
    let current = schema;
    for (let hops = 0; typeof current.$ref === "string" && hops < 32; hops++) {
      const target = pointer(this.root, current.$ref);
      if (!isSchema(target)) return {};
      current = target;
    }
    return current;
  }
}

/** The guide of a list whose every element follows `items` (e.g. all the chunks of a stream). */
export function listGuide(items: EncodingGuide): EncodingGuide {
  return {
    float: false,
    accepts: ARRAY,
    prefixItems: undefined,
    items,
    properties: undefined,
    additional: undefined,
    consts: undefined,
    required: undefined,
    alternatives: undefined,
  };
}

/** The guide of a list's element at `index`. */
export function itemGuide(guide: EncodingGuide, index: number): EncodingGuide | undefined {
  const prefix = guide.prefixItems;
  return prefix !== undefined && index < prefix.length ? prefix[index] : guide.items;
}

/** The guide of a map's entry under `key`. */
export function entryGuide(guide: EncodingGuide, key: string): EncodingGuide | undefined {
  const properties = guide.properties;
  return properties?.has(key) === true ? properties.get(key) : guide.additional;
}

/** Picks the guide that applies to `value`: a union's matching alternative, else the guide itself. */
export function guideFor(guide: EncodingGuide, value: unknown): EncodingGuide | undefined {
  const alternatives = guide.alternatives;
  if (alternatives === undefined) return guide;
  const kind = jsonType(value);
  let first: EncodingGuide | undefined;
  for (const alternative of alternatives) {
    if ((alternative.accepts & kind) === 0) continue;
    if (kind !== OBJECT || matchesObject(alternative, value as object)) {
      return alternative.alternatives === undefined ? alternative : guideFor(alternative, value);
    }
    first ??= alternative;
  }
  return first === undefined || first.alternatives === undefined ? first : guideFor(first, value);
}

function matchesObject(guide: EncodingGuide, value: object): boolean {
  const get = (key: string): unknown =>
    value instanceof Map ? value.get(key) : (value as Record<string, unknown>)[key];
  if (guide.consts !== undefined) {
    for (const [key, expected] of guide.consts) if (get(key) !== expected) return false;
  }
  if (guide.required !== undefined) {
    for (const key of guide.required) if (get(key) === undefined) return false;
  }
  return true;
}

function jsonType(value: unknown): number {
  switch (typeof value) {
    case "number":
      return Number.isInteger(value) ? INTEGER : NUMBER;
    case "bigint":
      return INTEGER;
    case "string":
      return STRING;
    case "boolean":
      return BOOLEAN;
    case "object":
      if (value === null) return NULL;
      if (Array.isArray(value) || value instanceof Set) return ARRAY;
      return OBJECT;
    default:
      return NULL;
  }
}

function typeBits(schema: Schema): number {
  const types = typeof schema.type === "string" ? [schema.type] : schema.type;
  if (Array.isArray(types)) {
    let bits = 0;
    for (const type of types) bits |= typeof type === "string" ? (TYPE_BITS[type] ?? 0) : 0;
    return bits;
  }
  if (isSchema(schema.properties) || schema.additionalProperties !== undefined) return OBJECT;
  if (schema.items !== undefined || schema.prefixItems !== undefined) return ARRAY;
  return ANY;
}

function declaresInteger(schema: Schema): boolean {
  return schema.type === "integer" || (Array.isArray(schema.type) && schema.type.includes("integer"));
}

/** "number" (not "integer") and not a literal: a literal keeps the kind of its value. */
function isFloat(schema: Schema): boolean {
  const says = schema.type === "number" || (Array.isArray(schema.type) && schema.type.includes("number"));
  return says && !declaresInteger(schema) && !("const" in schema) && !("enum" in schema);
}

function merge(into: MutableGuide, part: EncodingGuide): void {
  into.float ||= part.float;
  into.items ??= part.items;
  into.prefixItems ??= part.prefixItems?.slice();
  into.additional ??= part.additional;
  if (part.properties !== undefined) {
    into.properties ??= new Map();
    for (const [key, child] of part.properties)
      if (!into.properties.has(key)) into.properties.set(key, child);
  }
}

function pointer(root: unknown, ref: string): unknown {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return undefined;
  let node = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    node = isSchema(node) ? node[key] : undefined;
  }
  return node;
}

function isSchema(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
