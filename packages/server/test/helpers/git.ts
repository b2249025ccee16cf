/** Drives the real git CLI in an isolated environment (no user or system config). */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface GitRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const ISOLATED_HOME = path.join(os.tmpdir(), 'grove-test-git-home');

export function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: ISOLATED_HOME,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Agent Seven',
    GIT_AUTHOR_EMAIL: 'agent7@example.com',
    GIT_COMMITTER_NAME: 'Agent Seven',
    GIT_COMMITTER_EMAIL: 'agent7@example.com',
    LANG: 'C',
    LC_ALL: 'C',
    ...extra,
  };
}

/** Runs git; never throws for a non-zero exit (tests assert on code and output). */
export function git(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; input?: string | Buffer } = {}): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', [...args], { cwd: options.cwd, env: gitEnv(options.env), maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like git() but fails the test with git's stderr on a non-zero exit. */
export async function gitOk(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; input?: string | Buffer } = {}): Promise<string> {
  const result = await git(args, options);
  if (result.code !== 0) throw new Error(`git ${args.join(' ')} failed (${result.code}):\n${result.stderr}`);
  return result.stdout;
}

/** `-c` options that send the token on every request. */
export function auth(token: string): string[] {
  return ['-c', `http.extraHeader=Authorization: Bearer ${token}`];
}

export async function tempDir(prefix = 'grove-work-'): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { path: dir, [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }) };
}

/** A fresh non-bare repository with main as its initial branch. */
export async function initWorkRepo(dir: string): Promise<void> {
  await gitOk(['init', '-q', '-b', 'main', dir]);
}

export async function commitFile(dir: string, file: string, content: string | Buffer, message: string): Promise<string> {
  await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
  await writeFile(path.join(dir, file), content);
  await gitOk(['add', file], { cwd: dir });
  await gitOk(['commit', '-q', '-m', message], { cwd: dir });
  return (await gitOk(['rev-parse', 'HEAD'], { cwd: dir })).trim();
}

/**
 * Generates a history with branches, merges, an annotated and a lightweight tag and
 * a binary file: `commits` commits on main, a feature branch merged back every 5.
 */
export async function generateHistory(dir: string, commits = 20): Promise<void> {
  await initWorkRepo(dir);
  const binary = Buffer.alloc(64 * 1024);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 7919) % 256;
  await commitFile(dir, 'assets/logo.bin', binary, 'add a binary file');
  for (let i = 1; i <= commits; i++) {
    if (i % 5 === 0) {
      await gitOk(['checkout', '-q', '-b', `feature-${i}`], { cwd: dir });
      await commitFile(dir, `feature/${i}.txt`, `feature ${i}\n`, `feature ${i}`);
      await gitOk(['checkout', '-q', 'main'], { cwd: dir });
      await commitFile(dir, `main/${i}.txt`, `main ${i}\n`, `main ${i}`);
      await gitOk(['merge', '-q', '--no-ff', '-m', `merge feature ${i}`, `feature-${i}`], { cwd: dir });
    } else {
      await commitFile(dir, 'log.txt', `line ${i}\n`.repeat(i), `commit ${i}`);
    }
  }
  await gitOk(['tag', '-a', 'v1.0', '-m', 'release 1.0'], { cwd: dir });
  await gitOk(['tag', 'light'], { cwd: dir });
}
