/**
 * The benchmark tools' behaviour, shared by every peer so that each server does the same work
 * per call: `echo` returns its `payload` string, `compute` a checksum loop over `n` integers,
 * and `stream_bytes` yields `chunks` blocks of `chunk_bytes` bytes.
 */

export const TOOL_DESCRIPTIONS = {
  echo: "Returns its payload unchanged.",
  compute: "Sum of i*i for i < n, modulo 1e9+7 (a small CPU-bound step).",
  stream_bytes: "Streams `chunks` blocks of `chunk_bytes` bytes each.",
} as const;

/** Largest `n` for `compute`, so a bad request cannot pin a core. */
export const MAX_COMPUTE_N = 10_000_000;
/** Largest block for `stream_bytes` (a message must fit the default 10 MiB limit). */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

export function compute(n: number): number {
  let acc = 0;
  for (let i = 0; i < n; i++) acc = (acc + ((i * i) % 1_000_000_007)) % 1_000_000_007;
  return acc;
}

/** One block of the stream; the same buffer is reused because only its size matters here. */
export function streamBlock(chunkBytes: number): Uint8Array {
  return new Uint8Array(chunkBytes).fill(0x5a);
}

/** Reads `--name value` from argv (the peers take a handful of flags, no parser needed). */
export function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && at + 1 < process.argv.length ? (process.argv[at + 1] as string) : fallback;
}
