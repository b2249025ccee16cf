/**
 * The process git upload-pack starts as `uploadpack.packObjectsHook` for repositories with
 * big blobs (splice.ts). Told by the server, through the environment, where the chunk store
 * is and which repository this is; git's own arguments follow on the command line.
 */
import { BigstoreReader } from './reader.ts';
import { runSpliceHook, SpliceError } from './splice.ts';
import path from 'node:path';

const dir = process.env['GROVE_BIGSTORE_DIR'];
const repoId = process.env['GROVE_REPO_ID'];
const extraBlobs = (process.env['GROVE_EXTRA_BLOBS'] ?? '').split(/\s+/).filter((oid) => oid !== '');
// upload-pack relays pack-objects' stderr to the client as progress (side-band 2): "remote: warning: …".
const warnWindows = process.env['GROVE_WINDOWS_CLIENT'] === '1' ? (line: string) => void process.stderr.write(`${line}\n`) : undefined;

async function main(): Promise<number> {
  if (dir === undefined || repoId === undefined) throw new SpliceError('GROVE_BIGSTORE_DIR and GROVE_REPO_ID must be set');
  const reader = new BigstoreReader(path.join(dir, 'bigstore.db'), path.join(dir, 'segments'));
  try {
    return await runSpliceHook(process.argv.slice(2), { reader, repoId, extraBlobs, stdin: process.stdin, stdout: process.stdout, ...(warnWindows ? { warnWindows } : {}) });
  } finally {
    await reader.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // upload-pack relays this line to the client (side-band 3 or its own ERR).
    process.stderr.write(`fatal: grove: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 128;
  },
);
