/**
 * A big blob's manifest as the cluster's catalogue keeps it (`bigstore_blobs.manifest`): its
 * chunks in order, each as its SHA-256 and length, 36 bytes a chunk (~2.3 MB for a 4 GiB
 * blob). A node's own store numbers its chunks (manifest.ts); the cluster names them by
 * hash, so any node can map them onto its own numbers. Pure.
 */

export interface SharedChunk {
  /** SHA-256 of the chunk's bytes, hex. */
  readonly hash: string;
  readonly length: number;
}

const ENTRY_BYTES = 36;

export function encodeSharedManifest(chunks: readonly SharedChunk[]): Buffer {
  const bytes = Buffer.alloc(chunks.length * ENTRY_BYTES);
  chunks.forEach((chunk, i) => {
    if (!/^[0-9a-f]{64}$/.test(chunk.hash)) throw new Error(`not a SHA-256: ${chunk.hash}`);
    bytes.write(chunk.hash, i * ENTRY_BYTES, 32, 'hex');
    bytes.writeUInt32BE(chunk.length, i * ENTRY_BYTES + 32);
  });
  return bytes;
}

export function decodeSharedManifest(bytes: Uint8Array): SharedChunk[] {
  if (bytes.length % ENTRY_BYTES !== 0) throw new Error(`a manifest of ${bytes.length} bytes is not a whole number of ${ENTRY_BYTES}-byte entries`);
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const chunks: SharedChunk[] = [];
  for (let at = 0; at < buffer.length; at += ENTRY_BYTES) chunks.push({ hash: buffer.toString('hex', at, at + 32), length: buffer.readUInt32BE(at + 32) });
  return chunks;
}

export function sharedManifestSize(chunks: readonly SharedChunk[]): number {
  return chunks.reduce((sum, chunk) => sum + chunk.length, 0);
}

/** The distinct hashes of `chunks` the catalogue does not hold (`held`), in first-use order: what a publish uploads. */
export function chunksToUpload(chunks: readonly SharedChunk[], held: ReadonlySet<string>): string[] {
  const wanted = new Set<string>();
  for (const chunk of chunks) if (!held.has(chunk.hash)) wanted.add(chunk.hash);
  return [...wanted];
}
