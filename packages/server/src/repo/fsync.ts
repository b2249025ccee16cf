/** fsync helpers: a write is durable once the file and its directory entry are synced. */
import { open } from 'node:fs/promises';

export async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
