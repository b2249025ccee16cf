/**
 * Which pushes are scanned for big blobs to ingest (pure). A big blob arrives in a pack
 * of at least a mebibyte unless it compresses more than 50:1, or as a small delta against
 * a big blob the repository already has; every other push skips the scan (a rev-list), and
 * a big blob a push brought unnoticed is ingested on its first read instead.
 */
export const SCAN_PACK_BYTES = 1024 * 1024;

export function worthScanningForBigBlobs(packBytes: number, repositoryHasBigBlobs: () => boolean): boolean {
  // The size first: the store is asked (a query) only for small pushes.
  return packBytes >= SCAN_PACK_BYTES || repositoryHasBigBlobs();
}
