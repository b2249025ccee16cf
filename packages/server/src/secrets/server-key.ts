/**
 * Where the secret box's keys come from:
 *
 * - `GROVE_SECRET_KEY` (32 bytes, base64 or hex) when set: the key never touches the data
 *   directory; `GROVE_SECRET_KEY_PREVIOUS` (comma-separated) are keys that still open
 *   values during a rotation;
 * - otherwise `<data>/secret.key` (mode 0600), generated on first start: one base64 key per
 *   line, the first seals, the others only open. Rotation writes a new first line, re-seals
 *   every value, then drops the old lines.
 */
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath } from '../repo/fsync.ts';
import { SECRET_KEY_BYTES, SecretBox } from './secret-box.ts';

export class SecretKeyError extends Error {
  override name = 'SecretKeyError';
}

export type KeySource = { readonly kind: 'env' } | { readonly kind: 'file'; readonly file: string };

export interface ServerKeys {
  readonly box: SecretBox;
  readonly source: KeySource;
  readonly keys: readonly Buffer[];
}

/** Parses a key given as base64, base64url or hex; throws what is wrong with it. */
export function parseSecretKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== SECRET_KEY_BYTES) throw new SecretKeyError(`${where} must be ${SECRET_KEY_BYTES} bytes as base64 or hex (e.g. openssl rand -base64 32)`);
  return key;
}

/** The keys GROVE_SECRET_KEY and GROVE_SECRET_KEY_PREVIOUS name (the current one first), or null when unset. */
export function secretKeysFromEnv(current: string | undefined, previous: string | undefined): Buffer[] | null {
  if (!current) return null;
  const older = (previous ?? '').split(',').filter((s) => s.trim() !== '');
  return [parseSecretKey(current, 'GROVE_SECRET_KEY'), ...older.map((k, i) => parseSecretKey(k, `GROVE_SECRET_KEY_PREVIOUS[${i}]`))];
}

/** `configured`: the keys from the environment (config.secretKeys); null uses the key file. */
export async function loadServerKeys(dataDir: string, configured: readonly Buffer[] | null): Promise<ServerKeys> {
  if (configured !== null) return { box: new SecretBox(configured), source: { kind: 'env' }, keys: configured };
  const file = path.join(dataDir, 'secret.key');
  let text: string | null = null;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const keys = text === null ? [] : text.split('\n').filter((line) => line.trim() !== '').map((line, i) => parseSecretKey(line, `${file} line ${i + 1}`));
  if (keys.length === 0) {
    keys.push(randomBytes(SECRET_KEY_BYTES));
    await writeKeyFile(file, keys);
  }
  return { box: new SecretBox(keys), source: { kind: 'file', file }, keys };
}

/** Replaces the key file atomically (mode 0600, fsynced). */
export async function writeKeyFile(file: string, keys: readonly Buffer[]): Promise<void> {
  const temporary = `${file}.tmp-${process.pid}`;
  await writeFile(temporary, keys.map((key) => `${key.toString('base64')}\n`).join(''), { mode: 0o600, flush: true });
  await chmod(temporary, 0o600);
  await rename(temporary, file);
  await fsyncPath(path.dirname(file));
}
