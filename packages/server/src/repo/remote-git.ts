/**
 * The git side of remote sync (docs/remote-sync.md, "Pull" and "Push"): the only place
 * Grove runs git against another server.
 *
 * A sync works in a *scratch repository* — the fetch quarantine — made inside the
 * repository's `objects/` under the quarantine prefix (so startup recovery removes what a
 * crash leaves): a bare repository whose alternates are the repository's objects and whose
 * refs are seeded, as one packed-refs file, with the tracking refs (the last values both
 * sides agreed on). `git fetch --prune` then brings it to the remote's refs and fetches only
 * what the repository lacks; its refs are the remote's now (U), merge bases are asked in it
 * (it sees both object stores), and its packs move into the repository like a push's
 * quarantine before any ref moves. Pushes run from it too (`git push --porcelain` with a
 * lease per ref, by object id), so the live repository is only ever read.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exitCode, type GitRunner } from './git-command.ts';
import { REPO_CONFIG } from './init.ts';
import { Quarantine, QUARANTINE_PREFIX } from './quarantine.ts';
import { classifyRemoteFailure, redact, remoteGitEnv, type RemoteAccess, type RemoteEnvOptions, type RemoteFailure } from './remote-env.ts';
import { compareRefNames } from './ref-view.ts';

export class RemoteGitError extends Error {
  override name = 'RemoteGitError';
  readonly failure: RemoteFailure;
  /** git's stderr, redacted. */
  readonly detail: string;
  constructor(action: string, failure: RemoteFailure, detail: string) {
    const line = detail.trim().split('\n').filter((l) => /^(fatal|error):/.test(l)).pop() ?? detail.trim().split('\n').pop() ?? '';
    // git words a refused header as a prompt it could not show: say what happened.
    const reason = failure === 'credential_rejected' ? 'the remote refused the credential (HTTP 401 or 403): rotate it or check its access' : line.replace(/^(fatal|error):\s*/, '') || 'git exited with an error';
    super(`${action} failed: ${reason}`);
    this.failure = failure;
    this.detail = detail;
  }
}

/** Branches and tags only: refs/pull/*, refs/changes/* and the like are never synced. */
const SYNCED_NAMESPACES = ['refs/heads/', 'refs/tags/'] as const;

function parseRefListing(text: string): Map<string, string> {
  const refs = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [oid, name] = line.split(/\s+/);
    if (oid === undefined || name === undefined || name.endsWith('^{}')) continue;
    if (SYNCED_NAMESPACES.some((prefix) => name.startsWith(prefix))) refs.set(name, oid);
  }
  return refs;
}

/** The remote's branches and tags (one ls-refs round trip; no objects move). */
export async function listRemoteRefs(git: GitRunner, access: RemoteAccess, options: RemoteEnvOptions, signal?: AbortSignal): Promise<Map<string, string>> {
  const result = await git.run(['ls-remote', '--heads', '--tags', '--', access.url], { env: remoteGitEnv(access, options), ...(signal ? { signal } : {}) });
  if (result.code !== 0) {
    const stderr = redact(result.stderr, access);
    throw new RemoteGitError('listing the remote refs', classifyRemoteFailure(stderr), stderr);
  }
  return parseRefListing(result.stdout.toString('utf8'));
}

export interface PushCommand {
  readonly ref: string;
  /** null deletes. */
  readonly oid: string | null;
  /** The value the remote must have (null: must not exist). */
  readonly lease: string | null;
}

export interface PushRefResult {
  readonly ref: string;
  readonly ok: boolean;
  /** Why the remote refused it (`stale info` when the lease failed). */
  readonly reason: string | null;
  /** The lease failed: the remote moved since this run read it. */
  readonly stale: boolean;
}

export interface PushResult {
  readonly refs: readonly PushRefResult[];
  /** The remote's `remote:` lines (redacted): GitHub puts its reasons there. */
  readonly remoteMessages: readonly string[];
}

/**
 * Progress of `git clone --progress` from its stderr (CR-separated lines), as one percentage:
 * receiving objects counts for 80 %, resolving deltas for the rest. Null for other lines. Pure.
 */
export function cloneProgress(line: string): number | null {
  const match = /^(?:remote: )?(Receiving objects|Resolving deltas):\s+(\d+)%/.exec(line.trim());
  if (!match) return null;
  const percent = Number(match[2]);
  return match[1] === 'Receiving objects' ? Math.floor(percent * 0.8) : 80 + Math.floor(percent * 0.2);
}

export interface ClonedRepo {
  readonly dir: string;
  /** Branches and tags. */
  readonly refs: Map<string, string>;
  /** The branch the remote's HEAD names, if any. */
  readonly head: string | null;
}

/**
 * `git clone --bare` of the remote into a staging repository under the repository's
 * `objects/` (the quarantine prefix: startup recovery removes what a crash leaves); the caller
 * migrates its objects (ScratchRepo.adopt) and moves the refs. Clone is used, not a fetch into
 * an empty repository: it skips fetch's connectivity walk (index-pack checks the pack is
 * self-contained), ~1.3–1.8x faster and half the memory here (remote-sync.md).
 */
export async function cloneBare(git: GitRunner, gitDir: string, access: RemoteAccess, options: RemoteEnvOptions, onProgress: (percent: number) => void, signal?: AbortSignal): Promise<ClonedRepo> {
  const objectsDir = path.resolve(gitDir, 'objects');
  const parent = await mkdtemp(path.join(objectsDir, `${QUARANTINE_PREFIX}import-`));
  const dir = path.join(parent, 'clone.git');
  const child = await git.spawn(['clone', '--bare', '--progress', '--no-local', '--', access.url, dir], { env: remoteGitEnv(access, options), ...(signal ? { signal } : {}) });
  let stderr = '';
  let pending = '';
  child.stdout.resume();
  child.stderr.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    if (stderr.length < 64 * 1024) stderr += text;
    pending += text;
    const lines = pending.split(/[\r\n]/);
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const percent = cloneProgress(line);
      if (percent !== null) onProgress(percent);
    }
  });
  child.stdin.end();
  const code = await exitCode(child);
  if (code !== 0) {
    await rm(parent, { recursive: true, force: true });
    const redacted = redact(stderr, access);
    throw new RemoteGitError('cloning the remote', classifyRemoteFailure(redacted), redacted);
  }
  const listing = await git.check(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads/', 'refs/tags/'], { gitDir: dir });
  const headText = await readFile(path.join(dir, 'HEAD'), 'utf8').catch(() => '');
  const head = /^ref: refs\/heads\/(\S+)/.exec(headText)?.[1] ?? null;
  return { dir: parent, refs: parseRefListing(listing.toString('utf8')), head };
}

/** Moves a staging repository's objects (a clone's: `<parent>/clone.git/objects`) into `gitDir`, durably. */
export async function adoptClone(cloned: ClonedRepo, gitDir: string): Promise<void> {
  await Quarantine.of(path.join(cloned.dir, 'clone.git', 'objects'), gitDir).migrate();
}

export class ScratchRepo {
  readonly dir: string;
  readonly #git: GitRunner;
  readonly #quarantine: Quarantine;

  private constructor(dir: string, gitDir: string, git: GitRunner) {
    this.dir = dir;
    this.#git = git;
    this.#quarantine = Quarantine.of(path.join(dir, 'objects'), gitDir);
  }

  /** A scratch repository for `gitDir`, its refs seeded with `seed` (ref name → object id). */
  static async create(git: GitRunner, gitDir: string, seed: ReadonlyMap<string, string>): Promise<ScratchRepo> {
    const objectsDir = path.resolve(gitDir, 'objects');
    const dir = await mkdtemp(path.join(objectsDir, `${QUARANTINE_PREFIX}sync-`));
    await mkdir(path.join(dir, 'objects', 'info'), { recursive: true });
    await mkdir(path.join(dir, 'objects', 'pack'));
    await mkdir(path.join(dir, 'refs'));
    await writeFile(path.join(dir, 'HEAD'), 'ref: refs/heads/main\n');
    await writeFile(path.join(dir, 'config'), REPO_CONFIG);
    await writeFile(path.join(dir, 'objects', 'info', 'alternates'), `${objectsDir}\n`);
    const lines = [...seed].sort(([a], [b]) => compareRefNames(a, b)).map(([ref, oid]) => `${oid} ${ref}\n`);
    await writeFile(path.join(dir, 'packed-refs'), `# pack-refs with: sorted \n${lines.join('')}`);
    return new ScratchRepo(dir, gitDir, git);
  }

  /**
   * Brings the scratch refs to the remote's branches and tags (pruning what the remote no
   * longer has), fetching what neither repository has; returns them.
   */
  async fetch(access: RemoteAccess, options: RemoteEnvOptions, signal?: AbortSignal): Promise<Map<string, string>> {
    const result = await this.#git.run(
      ['-c', 'fetch.unpackLimit=1', 'fetch', '--prune', '--no-tags', '--no-write-fetch-head', '--no-auto-gc', '--no-recurse-submodules', '--no-show-forced-updates', '--quiet', '--', access.url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'],
      { gitDir: this.dir, env: remoteGitEnv(access, options), ...(signal ? { signal } : {}) },
    );
    if (result.code !== 0) {
      const stderr = redact(result.stderr, access);
      throw new RemoteGitError('fetching from the remote', classifyRemoteFailure(stderr), stderr);
    }
    return this.refs();
  }

  async refs(): Promise<Map<string, string>> {
    const out = await this.#git.check(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads/', 'refs/tags/'], { gitDir: this.dir });
    return parseRefListing(out.toString('utf8'));
  }

  /** The merge base of two commits (null: unrelated histories, or one is not a commit). */
  async mergeBase(a: string, b: string): Promise<string | null> {
    const result = await this.#git.run(['merge-base', a, b], { gitDir: this.dir });
    return result.code === 0 ? result.stdout.toString('utf8').trim() : null;
  }

  /** Moves what the fetch brought into the repository (durably), before any ref there names it. */
  async migrate(): Promise<void> {
    await this.#quarantine.migrate();
  }

  /** Pushes by object id with a lease per ref; per-ref results, never all-or-nothing. */
  async push(access: RemoteAccess, options: RemoteEnvOptions, commands: readonly PushCommand[], signal?: AbortSignal): Promise<PushResult> {
    const args = ['push', '--porcelain', '--no-verify', '--no-follow-tags'];
    for (const { ref, lease } of commands) args.push(`--force-with-lease=${ref}:${lease ?? ''}`);
    args.push('--', access.url, ...commands.map(({ ref, oid }) => `${oid ?? ''}:${ref}`));
    const result = await this.#git.run(args, { gitDir: this.dir, env: remoteGitEnv(access, options), ...(signal ? { signal } : {}) });
    const stdout = redact(result.stdout.toString('utf8'), access);
    const stderr = redact(result.stderr, access);
    const refs = parsePorcelain(stdout, commands.map((c) => c.ref));
    if (refs.length === 0) throw new RemoteGitError('pushing to the remote', classifyRemoteFailure(stderr), stderr);
    const remoteMessages = stderr.split('\n').filter((l) => l.startsWith('remote: ')).map((l) => l.slice('remote: '.length).trimEnd()).filter((l) => l !== '');
    return { refs, remoteMessages };
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * `git push --porcelain` output: after `To <url>`, one line per ref, `<flag>\t<from>:<to>\t<summary>`,
 * flags ' ' (fast-forward), '+' (forced), '-' (deleted), '*' (new), '=' (up to date), '!' (rejected).
 * Refs git printed nothing for are missing from the result. Pure.
 */
export function parsePorcelain(stdout: string, refs: readonly string[]): PushRefResult[] {
  const wanted = new Set(refs);
  const results: PushRefResult[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^([ +\-*=!])\t([^\t]*)\t(.*)$/.exec(line);
    if (!match) continue;
    const [, flag, spec, summary] = match as unknown as [string, string, string, string];
    const ref = spec.slice(spec.lastIndexOf(':') + 1);
    if (!wanted.has(ref)) continue;
    if (flag !== '!') {
      results.push({ ref, ok: true, reason: null, stale: false });
      continue;
    }
    const reason = /\((.*)\)\s*$/.exec(summary)?.[1] ?? summary.replace(/^\[[^\]]*\]\s*/, '');
    // A lease that failed on our side (stale info), or the remote's own compare-and-swap losing a race at update time.
    results.push({ ref, ok: false, reason, stale: /stale info|fetch first|failed to update ref|cannot lock ref|failed to lock/.test(summary) });
  }
  return results;
}
