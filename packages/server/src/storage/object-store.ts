/**
 * Where a cluster's packs live (architecture §7; docs/scale-out.md): immutable objects named
 * by their content (a pack's own trailing SHA-1), so a write is idempotent and an object is
 * never overwritten with different bytes. Nothing here relies on conditional writes,
 * versioning or listing consistency beyond "a completed PUT is readable": S3 gives that
 * (strong read-after-write since 2020) and so does a local or shared directory.
 *
 * Two implementations: FileObjectStore (`file:///dir`) and S3ObjectStore (`s3://bucket/prefix`),
 * chosen by `openObjectStore` from GROVE_OBJECT_STORE.
 */
export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly modifiedAt: Date;
}

export interface ObjectStore {
  /** A name for logs and errors (`file:///srv/grove-packs`, `s3://bucket/prefix`). */
  readonly description: string;
  /** Stores a local file under `key`, streamed (bounded memory); durable once it resolves. */
  put(key: string, file: string): Promise<void>;
  /** Writes the object to the local file `file` (created or replaced), streamed. Throws ObjectMissingError. */
  get(key: string, file: string): Promise<void>;
  /** Deletes the object; a missing one is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`. */
  list(prefix: string): AsyncIterable<StoredObject>;
  /** Resolves when the store answers (readiness); throws otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
}

export class ObjectMissingError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`object ${key} is not in the object store`);
    this.name = 'ObjectMissingError';
    this.key = key;
  }
}

/** The store could not be reached or refused to work (not the caller's fault): retry later. */
export class ObjectStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ObjectStoreUnavailableError';
  }
}
