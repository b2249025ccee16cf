/** GROVE_OBJECT_STORE → an ObjectStore: `file:///dir` or `s3://bucket/prefix` (GROVE_S3_* for the rest). */
import { fileURLToPath } from 'node:url';
import { FileObjectStore } from './file-object-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3ObjectStore, type S3Location } from './s3-object-store.ts';

export type ObjectStoreConfig =
  | { readonly kind: 'file'; readonly root: string }
  | ({ readonly kind: 's3' } & S3Location);

/** Parses GROVE_OBJECT_STORE; returns a reason instead of throwing. Pure. */
export function parseObjectStore(value: string, env: NodeJS.ProcessEnv): ObjectStoreConfig | string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'GROVE_OBJECT_STORE must be a URL: file:///shared/dir or s3://bucket/prefix';
  }
  if (url.protocol === 'file:') {
    if (url.host !== '') return 'GROVE_OBJECT_STORE file:// URLs name a local path: file:///shared/dir';
    return { kind: 'file', root: fileURLToPath(url) };
  }
  if (url.protocol === 's3:') {
    if (url.hostname === '') return 'GROVE_OBJECT_STORE must name a bucket: s3://bucket/prefix';
    const endpoint = env.GROVE_S3_ENDPOINT || null;
    if (endpoint !== null && !/^https?:\/\//.test(endpoint)) return 'GROVE_S3_ENDPOINT must start with http:// or https://';
    const style = env.GROVE_S3_FORCE_PATH_STYLE ?? '';
    if (!['', 'true', 'false', '1', '0', 'on', 'off'].includes(style)) return 'GROVE_S3_FORCE_PATH_STYLE must be true or false';
    return {
      kind: 's3',
      bucket: url.hostname,
      prefix: decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, ''),
      endpoint,
      region: env.GROVE_S3_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
      forcePathStyle: ['true', '1', 'on'].includes(style) || (style === '' && endpoint !== null),
      credentials: env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }
        : null,
    };
  }
  return `GROVE_OBJECT_STORE must be a file:// or s3:// URL, got ${url.protocol}//`;
}

export async function openObjectStore(config: ObjectStoreConfig): Promise<ObjectStore> {
  return config.kind === 'file' ? new FileObjectStore(config.root) : S3ObjectStore.open(config);
}
