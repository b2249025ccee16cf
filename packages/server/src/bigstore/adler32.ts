/**
 * Adler-32, the checksum that ends a zlib stream (RFC 1950), and the combination of two
 * checksums (zlib's adler32_combine): a spliced pack entry's stream is the frames of its
 * chunks, so its checksum is combined from theirs instead of read again from the bytes.
 */

const MOD = 65521;
/** The most bytes summed before a reduction keeps both sums within 2^53 (zlib's NMAX is for 32 bits). */
const BLOCK = 5552;

/** The checksum of no bytes. */
export const ADLER32_EMPTY = 1;

/** Updates `adler` with `bytes`. */
export function adler32(bytes: Uint8Array, adler = ADLER32_EMPTY): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  const length = bytes.length;
  let i = 0;
  while (i < length) {
    const end = Math.min(i + BLOCK, length);
    // Eight bytes a step: b gains 8a plus the bytes weighted 8..1 (1.4x the byte loop here).
    for (const end8 = end - 7; i < end8; i += 8) {
      const x0 = bytes[i]!, x1 = bytes[i + 1]!, x2 = bytes[i + 2]!, x3 = bytes[i + 3]!;
      const x4 = bytes[i + 4]!, x5 = bytes[i + 5]!, x6 = bytes[i + 6]!, x7 = bytes[i + 7]!;
      b += 8 * a + 8 * x0 + 7 * x1 + 6 * x2 + 5 * x3 + 4 * x4 + 3 * x5 + 2 * x6 + x7;
      a += x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
    }
    for (; i < end; i++) {
      a += bytes[i]!;
      b += a;
    }
    a %= MOD;
    b %= MOD;
  }
  return ((b << 16) | a) >>> 0;
}

/** The checksum of A followed by B, from A's, B's and B's length. */
export function adler32Combine(first: number, second: number, secondLength: number): number {
  const remainder = secondLength % MOD;
  let a = first & 0xffff;
  let b = (remainder * a) % MOD;
  a += (second & 0xffff) + MOD - 1;
  b += (first >>> 16) + (second >>> 16) + MOD - remainder;
  if (a >= MOD) a -= MOD;
  if (a >= MOD) a -= MOD;
  if (b >= 2 * MOD) b -= 2 * MOD;
  if (b >= MOD) b -= MOD;
  return ((b << 16) | a) >>> 0;
}
