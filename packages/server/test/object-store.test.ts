/**
 * The object-store contract every backend keeps (storage/object-store.ts), run against the
 * directory store and against a real S3 implementation (OpenStack Swift's s3api).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { onPostgres } from './helpers/database.ts';
import { tempDir } from './helpers/git.ts';
import { SwiftS3, swiftAvailable } from './helpers/swift.ts';
import { FileObjectStore } from '../src/storage/file-object-store.ts';
import { ObjectMissingError, type ObjectStore } from '../src/storage/object-store.ts';
import { parseObjectStore } from '../src/storage/open-object-store.ts';
import { S3ObjectStore } from '../src/storage/s3-object-store.ts';

const once = onPostgres ? 'runs once, in the SQLite pass (no database involved)' : false;

function contract(name: string, open: () => Promise<{ store: ObjectStore; close(): Promise<void> }>): void {
  describe(`the ${name} object store`, { skip: once }, () => {
    let store: ObjectStore;
    let close: () => Promise<void>;
    let work: Awaited<ReturnType<typeof tempDir>>;
    before(async () => {
      ({ store, close } = await open());
      work = await tempDir('grove-object-store-');
      await store.check();
    });
    after(async () => {
      await close?.();
      await work?.[Symbol.asyncDispose]();
    });

    it('stores a 20 MiB file and gives back the same bytes (multipart on S3)', async () => {
      const bytes = randomBytes(20 * 1024 * 1024);
      await writeFile(path.join(work.path, 'in'), bytes);
      await store.put('repos/r1/pack-big.pack', path.join(work.path, 'in'));
      await store.get('repos/r1/pack-big.pack', path.join(work.path, 'out'));
      assert.ok((await readFile(path.join(work.path, 'out'))).equals(bytes));
    });

    it('stores the same key again with the same bytes (a retried upload), and lists keys by prefix with sizes', async () => {
      await writeFile(path.join(work.path, 'small'), 'hello\n');
      await store.put('repos/r2/pack-a.idx', path.join(work.path, 'small'));
      await store.put('repos/r2/pack-a.idx', path.join(work.path, 'small'));
      await store.put('repos/r2/pack-b.idx', path.join(work.path, 'small'));
      await store.put('repos/r3/pack-c.idx', path.join(work.path, 'small'));
      const listed: { key: string; size: number }[] = [];
      for await (const item of store.list('repos/r2/')) listed.push({ key: item.key, size: item.size });
      assert.deepEqual(listed, [{ key: 'repos/r2/pack-a.idx', size: 6 }, { key: 'repos/r2/pack-b.idx', size: 6 }]);
    });

    it('answers ObjectMissingError for a key it does not hold, and deletes idempotently', async () => {
      await assert.rejects(store.get('repos/r2/pack-none.pack', path.join(work.path, 'none')), ObjectMissingError);
      await store.delete('repos/r2/pack-b.idx');
      await store.delete('repos/r2/pack-b.idx');
      await assert.rejects(store.get('repos/r2/pack-b.idx', path.join(work.path, 'gone')), ObjectMissingError);
    });

    it('refuses keys that could leave its namespace', async () => {
      await writeFile(path.join(work.path, 'evil'), 'x');
      for (const key of ['../escape', 'repos/../../x', '/abs', 'a//b', 'repos/x\0y']) {
        await assert.rejects(store.put(key, path.join(work.path, 'evil')), /invalid object key/, key);
      }
    });
  });
}

contract('directory (file://)', async () => {
  const dir = await tempDir('grove-file-store-');
  return { store: new FileObjectStore(path.join(dir.path, 'objects')), close: () => dir[Symbol.asyncDispose]() };
});

if (swiftAvailable()) {
  contract('S3 (OpenStack Swift s3api)', async () => {
    const swift = await SwiftS3.start();
    await swift.createBucket('contract');
    const env = swift.env('contract', 'prefix/inner');
    const config = parseObjectStore(env.GROVE_OBJECT_STORE!, env);
    assert.ok(typeof config !== 'string' && config.kind === 's3');
    const store = await S3ObjectStore.open(config);
    return { store, close: async () => { await store.close(); await swift.stop(); } };
  });
} else {
  describe('the S3 (OpenStack Swift s3api) object store', { skip: 'OpenStack Swift is not installed (Debian: swift-proxy swift-object swift-container swift-account memcached); .ci/run installs it' }, () => {
    it('keeps the object-store contract', () => {});
  });
}

describe('GROVE_OBJECT_STORE', () => {
  it('reads file:// and s3:// URLs, with the endpoint and path style from GROVE_S3_*', () => {
    assert.deepEqual(parseObjectStore('file:///srv/grove-packs', {}), { kind: 'file', root: '/srv/grove-packs' });
    assert.deepEqual(parseObjectStore('s3://bucket/some/prefix/', { GROVE_S3_ENDPOINT: 'http://127.0.0.1:9000', GROVE_S3_REGION: 'eu-west-1' }), {
      kind: 's3', bucket: 'bucket', prefix: 'some/prefix', endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1', forcePathStyle: true, credentials: null,
    });
    assert.deepEqual(parseObjectStore('s3://bucket', { AWS_REGION: 'us-west-2', AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK' }), {
      kind: 's3', bucket: 'bucket', prefix: '', endpoint: null, region: 'us-west-2', forcePathStyle: false, credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
    });
  });

  it('refuses other schemes, a file URL with a host, an s3 URL without a bucket and a bad endpoint', () => {
    assert.match(String(parseObjectStore('gs://bucket', {})), /must be a file:\/\/ or s3:\/\/ URL/);
    assert.match(String(parseObjectStore('file://host/dir', {})), /name a local path/);
    assert.match(String(parseObjectStore('s3:///prefix', {})), /must name a bucket/);
    assert.match(String(parseObjectStore('s3://b', { GROVE_S3_ENDPOINT: 'ftp://x' })), /GROVE_S3_ENDPOINT must start with http/);
    assert.match(String(parseObjectStore('not a url', {})), /must be a URL/);
  });
});
