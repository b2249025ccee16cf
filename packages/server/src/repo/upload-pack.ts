/**
 * Serving fetches by delegating pack work to `git upload-pack --stateless-rpc`
 * (architecture §2): the decoded request body goes to its stdin, its stdout streams to
 * the client with backpressure. A child that fails before writing anything is turned
 * into an `ERR` packet so the git client prints why instead of a framing error.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pktLine } from '../git/pkt-line.ts';
import { exitCode, type GitRunner } from './git-command.ts';

export type ProtocolVersion = 0 | 1 | 2;

/** How upload-pack is told to run a pack-objects hook (big blobs spliced from the chunk store). */
export interface PackObjectsHook {
  /** The shell command git runs in place of `git pack-objects` (its arguments appended). */
  readonly command: string;
  /** What the hook needs to know, through the environment. */
  readonly env: Readonly<Record<string, string>>;
}

export interface UploadPackOutput {
  /** Called once, before the first byte (so the caller can send headers late). */
  readonly start: (contentLength?: number) => Writable;
}

export class UploadPack {
  readonly #git: GitRunner;

  constructor(git: GitRunner) {
    this.#git = git;
  }

  /** The v0/v1 ref advertisement, written by git (HEAD, symref, peeled tags). */
  async advertiseRefs(gitDir: string, version: ProtocolVersion, signal: AbortSignal): Promise<Buffer> {
    return this.#git.check(['upload-pack', '--stateless-rpc', '--http-backend-info-refs', gitDir], {
      env: protocolEnv(version),
      signal,
    });
  }

  /** Runs one stateless request; returns the bytes written and git's exit code. */
  async serve(gitDir: string, version: ProtocolVersion, body: Buffer, output: UploadPackOutput, signal: AbortSignal, hook: PackObjectsHook | null = null): Promise<{ bytes: number; code: number }> {
    // Given with -c, the hook is protected config (git ignores it in a repository's own config).
    const hookArgs = hook === null ? [] : ['-c', `uploadpack.packObjectsHook=${hook.command}`];
    const child = await this.#git.spawn([...hookArgs, 'upload-pack', '--stateless-rpc', gitDir], { env: { ...protocolEnv(version), ...hook?.env }, signal });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 64) stderr.push(chunk);
    });
    const exited = exitCode(child);
    child.stdin.end(body);
    let sink: Writable | null = null;
    let written = 0;
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
        sink ??= output.start();
        written += chunk.length;
        if (!sink.write(chunk)) await once(sink, 'drain', { signal });
      }
    } catch (error) {
      child.kill('SIGKILL');
      await exited;
      throw error;
    }
    const code = await exited;
    if (code !== 0 && written === 0) {
      const message = Buffer.concat(stderr).toString('utf8').trim().split('\n').pop() ?? '';
      const text = `upload-pack: ${message.replace(/^fatal:\s*/, '') || `failed with exit code ${code}`}`;
      const error = pktLine(`ERR ${text}\n`);
      output.start().write(error);
      return { bytes: error.length, code };
    }
    return { bytes: written, code };
  }
}

function protocolEnv(version: ProtocolVersion): Record<string, string> {
  return version === 0 ? {} : { GIT_PROTOCOL: `version=${version}` };
}
