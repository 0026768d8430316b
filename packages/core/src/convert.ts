/**
 * The small conversions between generated wire types and Node/JavaScript types that
 * every package needs: bytes as a Buffer, instants as protobuf Timestamps and back.
 */
import type { Timestamp as PbTimestamp } from "./gen/google/protobuf/timestamp.js";

/**
 * The same bytes as a Buffer, sharing memory with `view` (no copy): what grpc-js
 * serializers and the generated `bytes` fields want.
 */
export function asBuffer(view: ArrayBufferView): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * The wire form of an instant: epoch milliseconds (a fractional part is kept as
 * nanoseconds), or anything with `seconds` and `nanos` such as a `Timestamp`.
 */
export function toPbTimestamp(
  at: number | { readonly seconds: bigint; readonly nanos: number },
): PbTimestamp {
  if (typeof at !== "number") return { seconds: at.seconds, nanos: at.nanos };
  const seconds = Math.floor(at / 1000);
  return { seconds: BigInt(seconds), nanos: Math.round((at - seconds * 1000) * 1e6) };
}

/** A wire instant as a Date (the sub-millisecond part dropped); an absent one is the epoch. */
export function fromPbTimestamp(ts: PbTimestamp | undefined): Date {
  return ts === undefined ? new Date(0) : new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6));
}
