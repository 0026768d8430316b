/**
 * Key order of maps decoded as plain objects. A map's entries travel in insertion order,
 * but a JavaScript object lists integer-like keys ("2", "10") first, ascending, whatever
 * order they were added in. So when a decoded map has such a key, the decoder records the
 * order the entries arrived in on the object itself, as a non-enumerable symbol property
 * (invisible to Object.keys, for...in, JSON and spreads), and the encoder sends the keys in
 * that order: a map a tool receives and returns as it is keeps its order.
 */
const KEY_ORDER = Symbol("toolbridge.keyOrder");

interface Ordered {
  readonly [KEY_ORDER]?: readonly string[];
}

/** True for the keys an object lists first: canonical array indices, "0" to "4294967294". */
function isIndexLike(key: string): boolean {
  const first = key.charCodeAt(0);
  if (first < 48 || first > 57 || (first === 48 && key.length > 1) || key.length > 10) return false;
  for (let i = 1; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return Number(key) < 4294967295;
}

/**
 * A plain object with the entries of `map`, remembering their order when JavaScript's
 * differs. Generic in the entries' type, so that this module needs nothing of the codec's.
 */
export function objectFromEntries<V>(map: ReadonlyMap<string, V>): { [key: string]: V } {
  // fromEntries defines own properties, so a key like "__proto__" stays data.
  const object: { [key: string]: V } = Object.fromEntries(map);
  for (const key of map.keys()) {
    if (isIndexLike(key)) {
      Object.defineProperty(object, KEY_ORDER, { value: [...map.keys()] });
      break;
    }
  }
  return object;
}

/**
 * The keys of a plain object in the order a map of it is sent. For an object decoded from
 * a map: the keys it arrived with that it still has, in arrival order, then keys added since,
 * in JavaScript's order. For any other object (including a copy of a decoded one, which
 * does not carry the order): Object.keys(object).
 */
export function orderedKeys(object: object): readonly string[] {
  const keys = Object.keys(object);
  const arrived = (object as Ordered)[KEY_ORDER];
  if (arrived === undefined) return keys;
  // The common case, a map passed on unchanged, needs no set.
  if (arrived.length === keys.length && arrived.every((key) => Object.hasOwn(object, key))) return arrived;
  const present = new Set(keys);
  const ordered = arrived.filter((key) => present.has(key));
  if (ordered.length === keys.length) return ordered;
  const known = new Set(ordered);
  for (const key of keys) if (!known.has(key)) ordered.push(key);
  return ordered;
}
