/**
 * The JavaScript types of values that have no plain JavaScript form: `Tensor` (dtype, shape,
 * little-endian data), `Timestamp` (an instant to the nanosecond), `Float64` (a float that
 * happens to be integral), and `NativeValue`, the union of everything `decodeValue` returns.
 * Each checks what it holds when constructed, with the codec's InvalidValue errors.
 */
import { BridgeError, ErrorType } from "./errors.js";
import { DType } from "./gen/toolbridge/v1/values.js";

// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range protobuf's Timestamp allows.
const MIN_TIMESTAMP_SECONDS = -62135596800n;
const MAX_TIMESTAMP_SECONDS = 253402300799n;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Tensor data is little-endian on the wire and TypedArrays use host order.
  throw new Error("toolbridge requires a little-endian platform");
}

/** An InvalidValue error; `reason` goes into details.reason (docs/values.md lists them). */
export function invalid(reason: string, message: string): BridgeError {
  return new BridgeError(ErrorType.InvalidValue, message, { details: { reason } });
}

export type DTypeName =
  | "bool"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "float16"
  | "float32"
  | "float64";

export type TensorArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

interface TypedArrayClass {
  readonly BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TensorArray;
  new (length: number): TensorArray;
}

interface DTypeInfo {
  readonly name: DTypeName;
  readonly code: DType;
  readonly itemSize: number;
  /** The TypedArray holding this dtype's elements; float16 and bool use raw storage. */
  readonly array: TypedArrayClass;
}

const DTYPE_TABLE: readonly DTypeInfo[] = [
  { name: "bool", code: DType.DTYPE_BOOL, itemSize: 1, array: Uint8Array },
  { name: "int8", code: DType.DTYPE_INT8, itemSize: 1, array: Int8Array },
  { name: "int16", code: DType.DTYPE_INT16, itemSize: 2, array: Int16Array },
  { name: "int32", code: DType.DTYPE_INT32, itemSize: 4, array: Int32Array },
  { name: "int64", code: DType.DTYPE_INT64, itemSize: 8, array: BigInt64Array },
  { name: "uint8", code: DType.DTYPE_UINT8, itemSize: 1, array: Uint8Array },
  { name: "uint16", code: DType.DTYPE_UINT16, itemSize: 2, array: Uint16Array },
  { name: "uint32", code: DType.DTYPE_UINT32, itemSize: 4, array: Uint32Array },
  { name: "uint64", code: DType.DTYPE_UINT64, itemSize: 8, array: BigUint64Array },
  { name: "float16", code: DType.DTYPE_FLOAT16, itemSize: 2, array: Uint16Array },
  { name: "float32", code: DType.DTYPE_FLOAT32, itemSize: 4, array: Float32Array },
  { name: "float64", code: DType.DTYPE_FLOAT64, itemSize: 8, array: Float64Array },
];
const DTYPE_BY_NAME = new Map(DTYPE_TABLE.map((d) => [d.name, d]));
export const DTYPE_BY_CODE = new Map(DTYPE_TABLE.map((d) => [d.code, d]));

export function dtypeInfo(name: string): DTypeInfo {
  const info = DTYPE_BY_NAME.get(name as DTypeName);
  if (info === undefined) {
    throw invalid("unknown_dtype", `unknown tensor dtype '${name}'`);
  }
  return info;
}

/**
 * A dense row-major array with a dtype and a shape. `data` holds the elements as
 * little-endian bytes; `toTypedArray()` gives a typed view.
 */
export class Tensor {
  readonly dtype: DTypeName;
  readonly shape: readonly number[];
  readonly data: Uint8Array;

  constructor(dtype: DTypeName, shape: readonly number[], data: Uint8Array) {
    const info = dtypeInfo(dtype);
    let elements = 1;
    for (const dim of shape) {
      if (!Number.isInteger(dim) || dim < 0 || dim > 0xffffffff) {
        throw invalid("tensor_shape", `tensor dimension ${dim} is not an integer in [0, 2^32)`);
      }
      elements *= dim;
    }
    if (elements * info.itemSize !== data.byteLength) {
      throw invalid(
        "tensor_size_mismatch",
        `tensor of dtype ${dtype} and shape [${shape.join(", ")}] needs ${elements * info.itemSize} bytes of data, got ${data.byteLength}`,
      );
    }
    if (dtype === "bool") {
      for (const byte of data) {
        if (byte > 1) {
          throw invalid("tensor_bool_value", `bool tensor holds the byte ${byte}; only 0 and 1 are allowed`);
        }
      }
    }
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  /** Wraps a TypedArray (1-D unless `shape` says otherwise); the data is not copied. */
  static fromTypedArray(array: TensorArray, shape?: readonly number[], dtype?: DTypeName): Tensor {
    const name = dtype ?? dtypeOfArray(array);
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    return new Tensor(name, shape ?? [array.length], bytes);
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * The elements as the matching TypedArray (float16 as raw Uint16Array, bool as
   * Uint8Array of 0/1). Copies only when the data is not aligned for the view.
   */
  toTypedArray(): TensorArray {
    const info = dtypeInfo(this.dtype);
    const { buffer, byteOffset, byteLength } = this.data;
    if (byteOffset % info.itemSize === 0) {
      return new info.array(buffer, byteOffset, byteLength / info.itemSize);
    }
    const copy = new info.array(byteLength / info.itemSize);
    new Uint8Array(copy.buffer).set(this.data);
    return copy;
  }
}

function dtypeOfArray(array: TensorArray): DTypeName {
  if (array instanceof Int8Array) return "int8";
  if (array instanceof Int16Array) return "int16";
  if (array instanceof Int32Array) return "int32";
  if (array instanceof BigInt64Array) return "int64";
  if (array instanceof Uint16Array) return "uint16";
  if (array instanceof Uint32Array) return "uint32";
  if (array instanceof BigUint64Array) return "uint64";
  if (array instanceof Float32Array) return "float32";
  if (array instanceof Float64Array) return "float64";
  return "uint8";
}

/** An instant with nanosecond precision, for timestamps a Date cannot hold exactly. */
export class Timestamp {
  readonly seconds: bigint;
  readonly nanos: number;

  constructor(seconds: bigint, nanos: number) {
    if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
      throw invalid("timestamp_out_of_range", `timestamp nanos ${nanos} is not in [0, 999999999]`);
    }
    if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) {
      throw invalid("timestamp_out_of_range", `timestamp ${seconds}s is outside years 0001..9999`);
    }
    this.seconds = seconds;
    this.nanos = nanos;
  }

  static fromDate(date: Date): Timestamp {
    const ms = date.getTime();
    if (Number.isNaN(ms)) {
      throw invalid("timestamp_out_of_range", "cannot encode an invalid Date");
    }
    const seconds = Math.floor(ms / 1000);
    return new Timestamp(BigInt(seconds), (ms - seconds * 1000) * 1_000_000);
  }

  /** The instant as a Date, losing any sub-millisecond part. */
  toDate(): Date {
    return new Date(Number(this.seconds) * 1000 + Math.floor(this.nanos / 1_000_000));
  }
}

/** Forces the float kind for a number that happens to be integral (e.g. 2.0). */
export class Float64 {
  constructor(readonly value: number) {}
}

/** Shorthand for `new Float64(value)`. */
export function float64(value: number): Float64 {
  return new Float64(value);
}

export interface NativeObject {
  [key: string]: NativeValue;
}

/** What `decodeValue` returns. `encodeValue` accepts these and a few more (see above). */
export type NativeValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | Timestamp
  | Tensor
  | NativeValue[]
  | Map<string, NativeValue>
  | NativeObject;
