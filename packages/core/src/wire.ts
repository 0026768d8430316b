/**
 * Byte-level entry points of the value codec, and the one piece of global set-up
 * the generated code needs: strict UTF-8.
 */
import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";
import { BridgeError, ErrorType } from "./errors.js";
import { Value } from "./gen/toolbridge/v1/values.js";
import type { NativeValue } from "./native-values.js";
import { type DecodeOptions, decodeValue, encodeValue } from "./values.js";

// The generated decoders would otherwise turn invalid UTF-8 into U+FFFD silently,
// while Python's protobuf rejects it; strict decoding makes both sides refuse it.
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
configureTextEncoding({ ...getTextEncoding(), decodeUtf8: (bytes) => strictDecoder.decode(bytes) });

/** Encodes a JavaScript value straight to the bytes of a `Value` message. */
export function encodeValueBytes(input: unknown): Uint8Array {
  return Value.encode(encodeValue(input)).finish();
}

/** Parses the bytes of a `Value` message and decodes it; malformed bytes give InvalidValue. */
export function decodeValueBytes(bytes: Uint8Array, options?: DecodeOptions): NativeValue {
  let message: Value;
  try {
    message = Value.decode(bytes);
  } catch (error) {
    throw new BridgeError(ErrorType.InvalidValue, `malformed Value bytes: ${(error as Error).message}`, {
      details: { reason: "malformed" },
    });
  }
  return decodeValue(message, options);
}
