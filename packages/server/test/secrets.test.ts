/**
 * Secrets at rest: webhook signing secrets are sealed (AES-256-GCM) under the server key,
 * so the database alone reveals none; deliveries are still signed with them; the key comes
 * from GROVE_SECRET_KEY or a generated <data>/secret.key, and rotates without losing one.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { databaseContents, openRawDatabase } from './helpers/database.ts';
import { verifyWebhook } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { Receiver } from './helpers/webhook-receiver.ts';
import { grove as runGrove } from './helpers/cli.ts';

/** The receivers listen on loopback, which outbound requests may reach only when allowed. */
const LOOPBACK_ALLOWED = { GROVE_ALLOWED_OUTBOUND: '127.0.0.1' };

/** Every way a secret could sit in a file: as text, base64, base64url, hex, UTF-16. */
function encodings(secret: string): Buffer[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [
    bytes,
    Buffer.from(bytes.toString('base64')),
    Buffer.from(bytes.toString('base64url')),
    Buffer.from(bytes.toString('hex')),
    Buffer.from(bytes.toString('hex').toUpperCase()),
    Buffer.from(secret, 'utf16le'),
  ];
}

async function storedSecrets(dataDir: string): Promise<string[]> {
  const db = await openRawDatabase(dataDir);
  try {
    return (await db.all<{ secret: string }>('SELECT secret FROM webhooks ORDER BY id')).map((r) => r.secret);
  } finally {
    await db.close();
  }
}

/** Makes an event of org `acme` and waits for its delivery; returns whether the signature verifies with `secret`. */
async function deliveryVerifies(grove: TestServer, receiver: Receiver, secret: string, repo: string): Promise<boolean> {
  const before = receiver.received.length;
  await grove.sdk.repos.create('acme', { name: repo });
  await receiver.waitFor(`repo.created of ${repo}`, (received) => received.slice(before).some((r) => r.event.type === 'repo.created' && r.event.repo === repo));
  const delivery = receiver.received.slice(before).find((r) => r.event.repo === repo)!;
  return verifyWebhook(secret, delivery.headers as Record<string, string>, delivery.body);
}

describe('secrets sealed at rest', () => {
  let dataDir: string;
  let grove: TestServer;
  let receiver: Receiver;
  const secrets = [`whsec_${randomBytes(24).toString('base64url')}`, `whsec_${randomBytes(24).toString('base64url')}`, `whsec_${randomBytes(24).toString('base64url')}`];

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'grove-secrets-'));
    grove = await startTestServer(LOOPBACK_ALLOWED, dataDir);
    receiver = await Receiver.start();
    await grove.sdk.orgs.create({ name: 'acme' });
  });
  after(async () => {
    await grove.close();
    await receiver.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('generates <data>/secret.key with mode 0600 on first start', async () => {
    const file = path.join(dataDir, 'secret.key');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match((await readFile(file, 'utf8')), /^[A-Za-z0-9+/]{43}=\n$/);
  });

  it('keeps no webhook secret in the database or its WAL in any encoding, and still signs deliveries with it', async () => {
    const hook = await grove.sdk.webhooks.create('acme', { url: receiver.url, events: ['repo.created'], secret: secrets[0]! });
    await grove.sdk.webhooks.create('acme', { url: `${receiver.url}/second`, events: ['push'], secret: secrets[1]! });
    await grove.sdk.webhooks.update('acme', hook.id, { secret: secrets[2]! });
    const files = await databaseContents(dataDir);
    for (const secret of secrets) {
      for (const encoded of encodings(secret)) assert.equal(files.indexOf(encoded), -1, `the secret ${secret} is in the database as ${encoded.toString('latin1').slice(0, 20)}…`);
    }
    for (const value of await storedSecrets(dataDir)) assert.match(value, /^grove-sealed:v1:[0-9a-f]{16}:/);
    assert.equal(await deliveryVerifies(grove, receiver, secrets[2]!, 'signed-after-update'), true);
  });

  it('rotates the key with `grove admin rotate-secret-key`: every secret re-sealed, the old key gone from secret.key, deliveries still verify after a restart', async () => {
    const oldKeyFile = await readFile(path.join(dataDir, 'secret.key'), 'utf8');
    const before = await storedSecrets(dataDir);
    const rotated = await runGrove(['admin', 'rotate-secret-key'], { GROVE_URL: grove.url, GROVE_TOKEN: grove.token });
    assert.equal(rotated.code, 0, rotated.stderr);
    const answer = JSON.parse(rotated.stdout) as { keyId: string; resealed: number; source: string };
    assert.equal(answer.source, 'file');
    assert.equal(answer.resealed, 2);
    const newKeyFile = await readFile(path.join(dataDir, 'secret.key'), 'utf8');
    assert.notEqual(newKeyFile, oldKeyFile);
    assert.equal(newKeyFile.trim().split('\n').length, 1, 'only the new key is left');
    const after = await storedSecrets(dataDir);
    for (const [i, value] of after.entries()) {
      assert.notEqual(value, before[i]);
      assert.equal(value.split(':')[2], answer.keyId);
    }
    await grove.close();
    grove = await startTestServer(LOOPBACK_ALLOWED, dataDir);
    assert.equal(await deliveryVerifies(grove, receiver, secrets[2]!, 'signed-after-rotation'), true);
  });

  it('refuses rotation to anyone but the root token (403)', async () => {
    const admin = await grove.sdk.apiKeys.create({ scope: 'admin', resources: [{ org: 'acme' }] });
    const response = await fetch(`${grove.url}/api/v1/admin/secret-key/rotate`, { method: 'POST', headers: { authorization: `Bearer ${admin.token}` } });
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'forbidden');
  });
});

describe('secrets sealed under GROVE_SECRET_KEY', () => {
  it('uses the key from the environment, writes no key file, seals plaintext left by an older version at start, and rotates to a new key with the old one in GROVE_SECRET_KEY_PREVIOUS', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'grove-secrets-env-'));
    const receiver = await Receiver.start();
    const first = randomBytes(32).toString('base64');
    const second = randomBytes(32).toString('hex');
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    try {
      let grove = await startTestServer({ GROVE_SECRET_KEY: first, ...LOOPBACK_ALLOWED }, dataDir);
      await grove.sdk.orgs.create({ name: 'acme' });
      const hook = await grove.sdk.webhooks.create('acme', { url: receiver.url, events: ['repo.created'], secret });
      await grove.close();
      await assert.rejects(stat(path.join(dataDir, 'secret.key')), { code: 'ENOENT' });

      // an older version stored the secret as it was
      const db = await openRawDatabase(dataDir, { readonly: false });
      await db.run('UPDATE webhooks SET secret = ? WHERE id = ?', [secret, hook.id]);
      await db.close();
      grove = await startTestServer({ GROVE_SECRET_KEY: first, ...LOOPBACK_ALLOWED }, dataDir);
      assert.match((await storedSecrets(dataDir))[0]!, /^grove-sealed:v1:/);
      assert.equal(await deliveryVerifies(grove, receiver, secret, 'after-sealing'), true);
      await grove.close();

      // rotation: the new key seals, the old one (GROVE_SECRET_KEY_PREVIOUS) opens until everything is re-sealed
      grove = await startTestServer({ GROVE_SECRET_KEY: second, GROVE_SECRET_KEY_PREVIOUS: first, ...LOOPBACK_ALLOWED }, dataDir);
      const rotation = await grove.sdk.admin.rotateSecretKey();
      assert.deepEqual({ resealed: rotation.resealed, source: rotation.source }, { resealed: 1, source: 'env' });
      await grove.close();
      grove = await startTestServer({ GROVE_SECRET_KEY: second, ...LOOPBACK_ALLOWED }, dataDir);
      assert.equal(await deliveryVerifies(grove, receiver, secret, 'after-env-rotation'), true);
      await grove.close();
    } finally {
      await receiver.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses to start with a GROVE_SECRET_KEY that is not 32 bytes', async () => {
    const result = await runGrove(['serve', '--data', path.join(os.tmpdir(), 'grove-never-made'), '--listen', '127.0.0.1:0'], { GROVE_SECRET_KEY: 'c2hvcnQ=' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /GROVE_SECRET_KEY must be 32 bytes as base64 or hex/);
  });
});
