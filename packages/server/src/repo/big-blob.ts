/**
 * The size from which a blob is "big" (docs/large-files.md): git's own
 * core.bigFileThreshold (50 MiB), from which git stores a blob undeltified and streams
 * it, and Grove refuses the operations that would hold it whole in memory (blame).
 */
export const BIG_BLOB_BYTES = 50 * 1024 * 1024;

export function isBigBlob(size: number): boolean {
  return size >= BIG_BLOB_BYTES;
}
