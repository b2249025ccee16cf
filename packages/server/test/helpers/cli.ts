/** Runs the grove command line as a child process, as a user would. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const GROVE_BIN = path.join(ROOT, 'bin/grove.js');
/** Every run loads the whole server; V8's compile cache roughly halves that start-up cost. */
export const COMPILE_CACHE = path.join(os.tmpdir(), 'grove-test-node-compile-cache');

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node bin/grove.js ...args` with only the environment given (plus PATH); never throws for a non-zero exit. */
export function grove(args: readonly string[], env: Record<string, string | undefined>, timeoutMs = 30_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE };
    for (const [key, value] of Object.entries(env)) if (value !== undefined) childEnv[key] = value;
    execFile(process.execPath, [GROVE_BIN, ...args], { cwd: ROOT, env: childEnv, encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

/** Asserts a zero exit with nothing on stderr and returns stdout parsed as JSON (any shape: tests read what they assert). */
export function json(run: CliRun): any {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  assert.equal(run.stderr, '');
  return JSON.parse(run.stdout);
}

/** Asserts a zero exit with no output at all. */
export function silent(run: CliRun): void {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  assert.equal(run.stderr, '');
  assert.equal(run.stdout, '');
}
