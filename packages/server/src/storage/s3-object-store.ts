/**
 * An object store on S3 or an S3-compatible service (`GROVE_OBJECT_STORE=s3://bucket/prefix`;
 * GROVE_S3_ENDPOINT, GROVE_S3_REGION, GROVE_S3_FORCE_PATH_STYLE; credentials from the standard
 * AWS variables or profile). Uploads stream through @aws-sdk/lib-storage (multipart above
 * 8 MiB, bounded memory); only the subset every S3 implementation agrees on is used: PUT,
 * multipart, GET, HEAD-free listing by prefix, DELETE — no conditional writes, no versioning.
 * The SDK is loaded only when a cluster uses S3 (it is ~20 MB of modules).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { checkObjectKey } from './file-object-store.ts';
import { ObjectMissingError, ObjectStoreUnavailableError, type ObjectStore, type StoredObject } from './object-store.ts';

export interface S3Location {
  readonly bucket: string;
  /** Key prefix without leading or trailing slash ('' for the bucket's root). */
  readonly prefix: string;
  readonly endpoint: string | null;
  readonly region: string;
  readonly forcePathStyle: boolean;
  /** From AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN); null: the SDK's own chain (profile, instance role). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | null;
}

type S3Module = typeof import('@aws-sdk/client-s3');
type UploadModule = typeof import('@aws-sdk/lib-storage');

export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  readonly #location: S3Location;
  readonly #s3: S3Module;
  readonly #upload: UploadModule;
  readonly #client: InstanceType<S3Module['S3Client']>;

  private constructor(location: S3Location, s3: S3Module, upload: UploadModule) {
    this.#location = location;
    this.#s3 = s3;
    this.#upload = upload;
    this.description = `s3://${location.bucket}${location.prefix === '' ? '' : `/${location.prefix}`}`;
    this.#client = new s3.S3Client({
      region: location.region,
      forcePathStyle: location.forcePathStyle,
      ...(location.endpoint === null ? {} : { endpoint: location.endpoint }),
      ...(location.credentials === null ? {} : { credentials: location.credentials }),
      // Checksums only where S3 requires them: S3-compatible servers (Swift's s3api) refuse
      // the SDK's default aws-chunked uploads. Packs are verified by their own SHA-1 anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
  }

  static async open(location: S3Location): Promise<S3ObjectStore> {
    const [s3, upload] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
    return new S3ObjectStore(location, s3, upload);
  }

  #key(key: string): string {
    checkObjectKey(key);
    return this.#location.prefix === '' ? key : `${this.#location.prefix}/${key}`;
  }

  async put(key: string, file: string): Promise<void> {
    const upload = new this.#upload.Upload({
      client: this.#client,
      params: { Bucket: this.#location.bucket, Key: this.#key(key), Body: createReadStream(file) },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
      leavePartsOnError: false,
    });
    await upload.done().catch((error: unknown) => {
      throw unavailable(`storing ${key}`, error);
    });
  }

  async get(key: string, file: string): Promise<void> {
    let body: Readable;
    try {
      const answer = await this.#client.send(new this.#s3.GetObjectCommand({ Bucket: this.#location.bucket, Key: this.#key(key) }));
      body = answer.Body as Readable;
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
        throw new ObjectMissingError(key);
      }
      throw unavailable(`reading ${key}`, error);
    }
    await pipeline(body, createWriteStream(file));
  }

  async delete(key: string): Promise<void> {
    await this.#client.send(new this.#s3.DeleteObjectCommand({ Bucket: this.#location.bucket, Key: this.#key(key) })).catch((error: unknown) => {
      throw unavailable(`deleting ${key}`, error);
    });
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const strip = this.#location.prefix === '' ? 0 : this.#location.prefix.length + 1;
    let token: string | undefined;
    do {
      const page = await this.#client.send(new this.#s3.ListObjectsV2Command({
        Bucket: this.#location.bucket,
        Prefix: this.#location.prefix === '' ? prefix : `${this.#location.prefix}/${prefix}`,
        ...(token === undefined ? {} : { ContinuationToken: token }),
      })).catch((error: unknown) => {
        throw unavailable(`listing ${prefix}`, error);
      });
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield { key: item.Key.slice(strip), size: item.Size ?? 0, modifiedAt: item.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async check(): Promise<void> {
    await this.#client.send(new this.#s3.ListObjectsV2Command({ Bucket: this.#location.bucket, MaxKeys: 1 })).catch((error: unknown) => {
      throw unavailable(`reaching ${this.description}`, error);
    });
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}

function unavailable(what: string, error: unknown): ObjectStoreUnavailableError {
  return new ObjectStoreUnavailableError(`object store failed ${what}: ${(error as Error).message ?? String(error)}`, { cause: error });
}
