/** Bytes for large-file tests: reproducible, fast to make, and as incompressible as real media. */
import { createCipheriv, createHash } from 'node:crypto';

/** `size` pseudo-random bytes from `seed` (AES-256-CTR of zeros: GB/s, the same bytes every run). */
export function noise(size: number, seed: number): Buffer {
  const key = createHash('sha256').update(`grove-noise-${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** A copy of `bytes` with `count` small rewrites spread evenly (a new version of a dataset or model). */
export function withEdits(bytes: Buffer, count: number, length = 100): Buffer {
  const edited = Buffer.from(bytes);
  for (let i = 0; i < count; i++) noise(length, 1000 + i).copy(edited, Math.floor(((i + 0.5) * bytes.length) / count));
  return edited;
}
