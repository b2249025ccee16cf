/**
 * Builds commits without a working tree (the write half of the agent API): objects
 * are written into a quarantine with a private index file, so a failed or refused
 * request leaves the repository untouched.
 *
 *   git read-tree <base> | --empty         the starting tree, into the private index
 *   git hash-object -w --stdin-paths       new file contents (spooled to the quarantine)
 *   git update-index -z --index-info       adds, deletes and moves
 *   git write-tree / git commit-tree       the tree and the commit
 *
 * The caller migrates the quarantine and moves the ref through RefTransaction.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ZERO_OID } from '../git/oid.ts';
import type { GitRunner } from './git-command.ts';
import type { Quarantine } from './quarantine.ts';
import { mayLackBlobs } from './evict-blobs.ts';

export type FileMode = '100644' | '100755' | '120000';

export type FileChange =
  | { readonly path: string; readonly content: Buffer; readonly mode: FileMode }
  /** Content already on disk (a streamed upload spooled into the quarantine). */
  | { readonly path: string; readonly file: string; readonly mode: FileMode }
  /** A big blob the chunk store holds for the repository and git never will (an upload stored there). */
  | { readonly path: string; readonly storedBlob: string; readonly mode: FileMode }
  | { readonly path: string; readonly delete: true }
  | { readonly path: string; readonly moveFrom: string };

export interface Signature {
  readonly name: string;
  readonly email: string;
  /** ISO 8601 or git's "<seconds> <tz>"; now when omitted. */
  readonly date?: string;
}

export interface CommitSpec {
  /** Parent commits; none for a root commit. The first one's tree is the starting point. */
  readonly parents: readonly string[];
  /** Start from this tree instead of the first parent's (merges and snapshots). */
  readonly tree?: string;
  readonly changes: readonly FileChange[];
  readonly message: string;
  readonly author: Signature;
  readonly committer: Signature;
  readonly allowEmpty: boolean;
}

export type CommitOutcome =
  | { readonly ok: true; readonly sha: string; readonly tree: string; readonly parents: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/** Why a path cannot be written, or null. Pure. */
export function checkTreePath(value: string): string | null {
  if (value.length === 0) return 'path must not be empty';
  if (Buffer.byteLength(value) > 4096) return 'path is longer than 4096 bytes';
  if (value.startsWith('/') || value.endsWith('/')) return `path ${JSON.stringify(value)} must not start or end with /`;
  if (/[\u0000\n\r]/.test(value)) return 'path must not contain NUL or line breaks';
  for (const part of value.split('/')) {
    if (part === '' || part === '.' || part === '..') return `path ${JSON.stringify(value)} has an empty, . or .. component`;
    if (part.toLowerCase() === '.git') return `path ${JSON.stringify(value)} may not contain a .git component`;
  }
  return null;
}

function signatureEnv(prefix: 'AUTHOR' | 'COMMITTER', signature: Signature): Record<string, string> {
  return {
    [`GIT_${prefix}_NAME`]: signature.name,
    [`GIT_${prefix}_EMAIL`]: signature.email,
    ...(signature.date ? { [`GIT_${prefix}_DATE`]: signature.date } : {}),
  };
}

/** Two written paths of which one is a directory of the other (`a` and `a/b`), or null. Pure. */
export function fileDirectoryClash(paths: readonly string[]): [string, string] | null {
  const set = new Set(paths);
  for (const p of paths) {
    for (let cut = p.indexOf('/'); cut !== -1; cut = p.indexOf('/', cut + 1)) {
      if (set.has(p.slice(0, cut))) return [p.slice(0, cut), p];
    }
  }
  return null;
}

export class CommitBuilder {
  readonly #git: GitRunner;

  constructor(git: GitRunner) {
    this.#git = git;
  }

  async build(gitDir: string, quarantine: Quarantine, spec: CommitSpec): Promise<CommitOutcome> {
    const index = path.join(quarantine.dir, 'index');
    const env = { ...quarantine.env, GIT_INDEX_FILE: index };
    const start = spec.tree ?? spec.parents[0];
    await this.#git.check(start === undefined ? ['read-tree', '--empty'] : ['read-tree', start], { gitDir, env });
    const baseTree = start === undefined ? null : (await this.#git.check(['rev-parse', '--verify', `${start}^{tree}`], { gitDir, env })).toString().trim();

    const writes = spec.changes.filter((c): c is Extract<FileChange, { content: Buffer } | { file: string }> => 'content' in c || 'file' in c);
    const blobIds: string[] = [];
    if (writes.length > 0) {
      const files = await Promise.all(writes.map(async (change, i) => {
        if ('file' in change) return change.file;
        const file = path.join(quarantine.dir, `blob-${i}`);
        await writeFile(file, change.content);
        return file;
      }));
      const out = await this.#git.check(['hash-object', '-w', '--no-filters', '--stdin-paths'], { gitDir, env, input: `${files.join('\n')}\n` });
      blobIds.push(...out.toString().trim().split('\n'));
    }
    const moves = spec.changes.filter((c): c is Extract<FileChange, { moveFrom: string }> => 'moveFrom' in c);
    const sources = new Map<string, { mode: string; oid: string }>();
    if (moves.length > 0) {
      const out = await this.#git.check(['ls-files', '-s', '-z', '--', ...moves.map((m) => `:(literal)${m.moveFrom}`)], { gitDir, env });
      for (const record of out.toString().split('\0')) {
        const match = /^(\d{6}) ([0-9a-f]{40}) \d\t(.*)$/s.exec(record);
        if (match) sources.set(match[3]!, { mode: match[1]!, oid: match[2]! });
      }
    }
    const clash = fileDirectoryClash(spec.changes.filter((c) => !('delete' in c)).map((c) => c.path));
    if (clash) return { ok: false, reason: `${clash[0]} cannot be both a file and the directory of ${clash[1]}` };
    let input = '';
    let blob = 0;
    for (const change of spec.changes) {
      if ('storedBlob' in change) {
        input += `${change.mode} ${change.storedBlob}\t${change.path}\0`;
      } else if ('mode' in change) {
        input += `${change.mode} ${blobIds[blob++]!}\t${change.path}\0`;
      } else if ('delete' in change) {
        input += `0 ${ZERO_OID}\t${change.path}\0`;
      } else {
        const source = sources.get(change.moveFrom);
        if (source === undefined) return { ok: false, reason: `moveFrom: ${change.moveFrom} does not exist` };
        input += `0 ${ZERO_OID}\t${change.moveFrom}\0${source.mode} ${source.oid}\t${change.path}\0`;
      }
    }
    if (input !== '') {
      const result = await this.#git.run(['update-index', '-z', '--index-info'], { gitDir, env, input });
      if (result.code !== 0) return { ok: false, reason: `cannot apply the file changes: ${lastLine(result.stderr)}` };
      // --index-info replaces a file by a directory (or the reverse) silently; such a
      // change would delete paths the request never named, so it is refused.
      if (start !== undefined) {
        const named = new Set(spec.changes.flatMap((c) => ('moveFrom' in c ? [c.path, c.moveFrom] : [c.path])));
        const changed = await this.#git.check(['diff-index', '--cached', '--name-only', '--no-renames', '-z', start], { gitDir, env });
        const unnamed = changed.toString('utf8').split('\0').filter((p) => p !== '' && !named.has(p));
        if (unnamed.length > 0) return { ok: false, reason: `the changes conflict with existing paths (a file and a directory at once): ${unnamed.slice(0, 5).join(', ')}` };
      }
    }
    // Big blobs evicted to the chunk store are absent from git: write-tree must not insist on
    // them. Every id in the index came from the start tree, hash-object or the chunk store,
    // none from the request.
    const written = await this.#git.run((await mayLackBlobs(gitDir)) ? ['write-tree', '--missing-ok'] : ['write-tree'], { gitDir, env });
    if (written.code !== 0) return { ok: false, reason: `cannot write the tree: ${lastLine(written.stderr)}` };
    const tree = written.stdout.toString().trim();
    if (!spec.allowEmpty && tree === baseTree && spec.parents.length <= 1) {
      return { ok: false, reason: 'the commit would not change anything (pass allowEmpty to create it anyway)' };
    }
    const commitEnv = { ...env, ...signatureEnv('AUTHOR', spec.author), ...signatureEnv('COMMITTER', spec.committer) };
    const args = ['commit-tree', tree, ...spec.parents.flatMap((p) => ['-p', p]), '-F', '-'];
    const committed = await this.#git.run(args, { gitDir, env: commitEnv, input: spec.message.endsWith('\n') ? spec.message : `${spec.message}\n` });
    if (committed.code !== 0) return { ok: false, reason: `cannot create the commit: ${lastLine(committed.stderr)}` };
    return { ok: true, sha: committed.stdout.toString().trim(), tree, parents: spec.parents };
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.replace(/^(fatal|error):\s*/, '') ?? 'failed';
}
