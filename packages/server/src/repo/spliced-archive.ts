/**
 * Archives of trees whose big files git lacks (evicted to the chunk store,
 * docs/large-files.md): `git archive --format=tar` of everything else (`:(exclude,literal)`
 * pathspecs), the big files appended from the store after git's last entry (tar-splice.ts),
 * then gzip. zip is not offered for such trees: its central directory at the end would have to
 * be rewritten as well.
 */
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { GitRunner } from './git-command.ts';
import { batchCheck, stdoutStream } from './read-objects.ts';
import { spliceTar } from './tar-splice.ts';

export interface LackingFile {
  readonly path: string;
  /** The tree mode: 100644 or 100755. */
  readonly mode: string;
  readonly oid: string;
  readonly size: number;
}

/**
 * The files of the commit's tree whose blobs git lacks and the store holds (`stored` gives
 * their size): ls-tree of the tree, then one cat-file for the held blobs only.
 */
export async function lackingFiles(git: GitRunner, gitDir: string, commit: string, stored: (oid: string) => number | undefined, signal?: AbortSignal): Promise<LackingFile[]> {
  const listing = (await git.check(['ls-tree', '-r', '-z', '--full-tree', commit], { gitDir, ...(signal ? { signal } : {}) })).toString('utf8');
  const held: Array<Omit<LackingFile, 'size'> & { size: number }> = [];
  for (const record of listing.split('\0')) {
    const match = /^(100644|100755) blob ([0-9a-f]{40})\t(.*)$/s.exec(record);
    if (match === null) continue;
    const size = stored(match[2]!);
    if (size !== undefined) held.push({ mode: match[1]!, oid: match[2]!, path: match[3]!, size });
  }
  if (held.length === 0) return [];
  const infos = await batchCheck(git, gitDir, held.map((file) => file.oid), signal);
  return held.filter((_, i) => infos[i] === null);
}

/** The commit's files as tar.gz under `prefix/`, the lacking ones read by `open`. */
export async function streamSplicedTarGz(git: GitRunner, gitDir: string, commit: string, prefix: string, lacking: readonly LackingFile[], open: (oid: string) => AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<Readable> {
  const time = Number((await git.check(['log', '-1', '--format=%ct', commit], { gitDir })).toString().trim());
  const excluded = [...new Set(lacking.map((file) => file.path))].map((p) => `:(exclude,literal)${p}`);
  const child = await git.spawn(['archive', '--format=tar', `--prefix=${prefix}/`, commit, '--', ...excluded], { gitDir, ...(signal ? { signal } : {}) });
  child.stdin.end();
  child.stderr.resume();
  const entries = lacking.map((file) => ({
    path: `${prefix}/${file.path}`,
    // git writes tree modes through tar.umask (002): the same here.
    mode: file.mode === '100755' ? 0o775 : 0o664,
    size: file.size,
    open: () => open(file.oid),
  }));
  const tar = Readable.from(spliceTar(stdoutStream(child), entries, time));
  // Big files are mostly incompressible: the fastest level.
  const gzip = createGzip({ level: 1 });
  tar.on('error', (error) => gzip.destroy(error));
  gzip.on('close', () => tar.destroy());
  tar.pipe(gzip);
  return gzip;
}
