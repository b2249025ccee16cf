/**
 * Long-lived `git update-ref --stdin -z` processes, one per busy repository: update-ref takes
 * any number of `start … prepare … commit` transactions on one stdin and answers each with
 * `start: ok`, `prepare: ok`, `commit: ok`, so a repository under a burst of pushes pays for
 * starting git once, not once per transaction (that start was most of a ref transaction's
 * time). A transaction that fails ends the process (git dies with the reason on stderr); the
 * next one starts a new process. Idle processes exit after a moment, and only a few are kept
 * at once; these few are not counted against the git process limits.
 */
import type { GitChild, GitRunner } from './git-command.ts';

/** How long an updater waits for its next transaction before it exits. */
const IDLE_MS = 2_000;
/** Updaters alive at once; a repository beyond them gets a process per transaction. */
const MAX_UPDATERS = 16;

export type UpdaterResult = { readonly ok: true } | { readonly ok: false; readonly stderr: string };

class Updater {
  readonly #child: GitChild;
  #stdout = '';
  #stderr = '';
  #waiter: ((result: UpdaterResult) => void) | null = null;
  #closed = false;
  #idle: NodeJS.Timeout | undefined;
  readonly #onGone: () => void;

  constructor(child: GitChild, onGone: () => void) {
    this.#child = child;
    this.#onGone = onGone;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      this.#stdout += text;
      if (this.#waiter !== null && this.#stdout.includes('commit: ok\n')) {
        this.#stdout = '';
        this.#settle({ ok: true });
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString('utf8')));
    child.once('close', (code) => {
      this.#closed = true;
      clearTimeout(this.#idle);
      this.#onGone();
      this.#settle({ ok: false, stderr: this.#stderr || `update-ref exited with ${code ?? 'a signal'}` });
    });
  }

  get usable(): boolean {
    return !this.#closed && this.#waiter === null;
  }

  run(input: string): Promise<UpdaterResult> {
    clearTimeout(this.#idle);
    return new Promise((resolve) => {
      this.#waiter = resolve;
      this.#child.stdin.write(input);
    });
  }

  #settle(result: UpdaterResult): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.(result);
    if (!this.#closed) this.#idle = setTimeout(() => this.close(), IDLE_MS);
  }

  close(): void {
    clearTimeout(this.#idle);
    if (!this.#closed) this.#child.stdin.end(); // update-ref exits at the end of its input
  }
}

export class RefUpdaters {
  readonly #git: GitRunner;
  readonly #updaters = new Map<string, Updater>();

  constructor(git: GitRunner) {
    this.#git = git;
  }

  /**
   * Runs one transaction (`transactionInput()`) in the repository's updater, starting one if
   * needed. The caller runs one transaction per repository at a time (RefTransaction's queue).
   */
  async run(gitDir: string, input: string): Promise<UpdaterResult> {
    let updater = this.#updaters.get(gitDir);
    if (updater === undefined || !updater.usable) {
      if (this.#updaters.size >= MAX_UPDATERS) {
        // Busy elsewhere: a process for this one transaction, through the usual limits.
        const result = await this.#git.run(['update-ref', '--stdin', '-z'], { gitDir, input });
        return result.code === 0 ? { ok: true } : { ok: false, stderr: result.stderr || `update-ref exited with ${result.code}` };
      }
      const child = await this.#git.spawn(['update-ref', '--stdin', '-z'], { gitDir, unlimited: true });
      const created: Updater = new Updater(child, () => {
        if (this.#updaters.get(gitDir) === created) this.#updaters.delete(gitDir);
      });
      updater = created;
      this.#updaters.set(gitDir, updater);
    }
    return updater.run(input);
  }

  /** Ends every updater (shutdown). */
  closeAll(): void {
    for (const updater of this.#updaters.values()) updater.close();
  }
}
