/**
 * The push pipeline (architecture §2): Grove has already parsed the command list;
 * this runs
 *
 *   1. per-ref checks that need no objects (name, authorization, current branch);
 *   2. the pack into a quarantine (`git index-pack --stdin --fix-thin --strict`);
 *   3. connectivity and object types of the new tips, inside the quarantine;
 *   4. migration of the quarantine into the repository (fsync);
 *   5. one compare-and-swap ref transaction (all-or-nothing when `atomic`);
 *
 * and returns the report. A failed step leaves the repository as it was.
 */
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isZeroOid } from '../git/oid.ts';
import { checkWritableRefName } from '../git/ref-name.ts';
import type { RefCommand, ReceivePackRequest } from '../git/receive-pack-request.ts';
import type { RefResult } from '../git/report-status.ts';
import { exitCode, type GitRunner } from './git-command.ts';
import { Quarantine, removeKeepFiles } from './quarantine.ts';
import type { RefSnapshot } from './ref-snapshot.ts';
import type { NewEvent } from '../events/types.ts';
import type { RefStore } from './ref-store.ts';
import type { RefUpdate, TransactionResult } from './ref-transaction.ts';

/**
 * Where a push's time goes, in order: reading the command list (the route), the pack into
 * index-pack, object checks, migration out of the quarantine, the ref change with its events
 * (journal and ref transaction embedded; publish and database transaction in a cluster), and
 * the report (the route).
 */
export const PUSH_PHASES = ['parse', 'receive', 'objects', 'migrate', 'refs', 'report'] as const;
export type PushPhase = (typeof PUSH_PHASES)[number];

export interface PushLimits {
  readonly maxPackBytes: number;
}

export interface PushInput {
  readonly gitDir: string;
  readonly request: ReceivePackRequest;
  /** The bytes after the command list: the pack, if any. */
  readonly pack: AsyncIterable<Buffer>;
  /** Refs as they were when the request arrived (for the current-branch rule). */
  readonly snapshot: RefSnapshot;
  /**
   * Returns why a command is denied, or null. Called before any object is read
   * (`forced` undefined), and again with `forced` known for commands that
   * needsAncestry() names, once the new objects are in the quarantine.
   */
  readonly authorize: (command: RefCommand, forced?: boolean) => string | null;
  /** Whether deciding this update needs to know if it is a force push. */
  readonly needsAncestry: (command: RefCommand) => boolean;
  /** Progress text for the client (`remote: …`). */
  readonly progress: (text: string) => void;
  /** The repository's id (with gitDir, what the ref path needs). */
  readonly repoId: string;
  /** Where the refs move: the one compare-and-swap path (repo/ref-store.ts). */
  readonly refStore: RefStore;
  /**
   * The events of the push, given the commands that applied and which updates among them
   * were force pushes; written with the ref change.
   */
  readonly events?: (applied: readonly RefCommand[], forced: ReadonlyMap<RefCommand, boolean>) => readonly NewEvent[];
  /** Called once the whole request body has been read (possibly before the pack is indexed). */
  readonly onReceived?: () => void;
  readonly signal: AbortSignal;
  readonly limits: PushLimits;
  /** Told how long each phase took (see PUSH_PHASES). */
  readonly onPhase?: (phase: PushPhase, ms: number) => void;
}

export interface PushOutcome {
  readonly unpackError: string | null;
  readonly results: readonly RefResult[];
  readonly packBytes: number;
  /** The updates that were applied. */
  readonly applied: readonly RefCommand[];
}

const PACK_HEADER_BYTES = 12;

/** The pack could not be read; every non-delete command fails with "unpacker error". */
class UnpackError extends Error {
  override name = 'UnpackError';
}

export class PushPipeline {
  readonly #git: GitRunner;

  constructor(git: GitRunner) {
    this.#git = git;
  }

  async run(input: PushInput): Promise<PushOutcome> {
    const { request, gitDir } = input;
    const rejected = new Map<RefCommand, string>();
    const seen = new Set<string>();
    for (const command of request.commands) {
      const reason = precheck(command, input, seen);
      if (reason !== null) rejected.set(command, reason);
      seen.add(command.ref);
    }
    const atomic = request.capabilities.has('atomic');
    let mark = performance.now();
    const phase = (name: PushPhase) => {
      const now = performance.now();
      input.onPhase?.(name, now - mark);
      mark = now;
    };
    const wantsObjects = request.commands.some((c) => c.kind !== 'delete');
    const quarantine = wantsObjects ? await Quarantine.create(gitDir) : null;
    let packBytes = 0;
    try {
      let unpackError: string | null = null;
      if (wantsObjects) {
        try {
          packBytes = await this.#receivePack(input, quarantine!);
        } catch (error) {
          if (!(error instanceof UnpackError)) throw error;
          unpackError = error.message;
        }
      } else {
        for await (const chunk of input.pack) packBytes += chunk.length; // nothing should follow; drain it
      }
      input.onReceived?.();
      phase('receive');
      if (unpackError !== null) {
        // Read what the client still sends, so it gets the report instead of a broken pipe.
        for await (const _ of input.pack) if (input.signal.aborted) break;
        for (const command of request.commands) {
          if (!rejected.has(command)) rejected.set(command, 'unpacker error');
        }
        return finish(request.commands, rejected, unpackError, packBytes, []);
      }
      const forced = await this.#checkObjects(input, quarantine, rejected);
      phase('objects');
      if (atomic && rejected.size > 0) {
        for (const command of request.commands) if (!rejected.has(command)) rejected.set(command, 'atomic push failure');
        return finish(request.commands, rejected, null, packBytes, []);
      }
      const accepted = request.commands.filter((c) => !rejected.has(c));
      if (accepted.length === 0) return finish(request.commands, rejected, null, packBytes, []);
      const keeps = quarantine ? await quarantine.migrate() : [];
      phase('migrate');
      try {
        const updates: RefUpdate[] = accepted.map((c) => ({ ref: c.ref, oldOid: c.oldOid, newOid: c.newOid }));
        const commandOf = new Map(updates.map((u, i) => [u, accepted[i]!]));
        const events = input.events === undefined ? undefined : (done: readonly RefUpdate[]) => input.events!(done.map((u) => commandOf.get(u)!), forced);
        const repo = { id: input.repoId, gitDir };
        let outcomes: TransactionResult[];
        if (atomic) {
          const result = await input.refStore.apply(repo, updates, events);
          outcomes = updates.map(() => result);
        } else {
          outcomes = await input.refStore.applyEach(repo, updates, events);
        }
        phase('refs');
        const applied: RefCommand[] = [];
        accepted.forEach((command, index) => {
          const outcome = outcomes[index]!;
          if (outcome.ok) applied.push(command);
          else rejected.set(command, outcome.reason);
        });
        if (applied.length > 0) input.progress(`grove: updated ${applied.length} ref${applied.length === 1 ? '' : 's'}\n`);
        return finish(request.commands, rejected, null, packBytes, applied);
      } finally {
        await removeKeepFiles(keeps);
      }
    } finally {
      await quarantine?.remove();
    }
  }

  /** Streams the pack into the quarantine; returns its size in bytes. */
  async #receivePack(input: PushInput, quarantine: Quarantine): Promise<number> {
    const iterator = input.pack[Symbol.asyncIterator]();
    let head = Buffer.alloc(0);
    while (head.length < PACK_HEADER_BYTES) {
      const next = await iterator.next();
      if (next.done) throw new UnpackError(head.length === 0 ? 'eof before pack header was fully read' : 'truncated pack header');
      head = Buffer.concat([head, next.value]);
    }
    if (head.toString('latin1', 0, 4) !== 'PACK') throw new UnpackError('protocol error (pack signature mismatch detected)');
    const version = head.readUInt32BE(4);
    if (version !== 2 && version !== 3) throw new UnpackError(`protocol error (pack version ${version} unsupported)`);
    const objectCount = head.readUInt32BE(8);
    let total = head.length;
    const maxBytes = input.limits.maxPackBytes;
    const received = () => input.onReceived?.();
    const counted = async function* (): AsyncGenerator<Buffer> {
      yield head;
      for (;;) {
        const next = await iterator.next();
        if (next.done) {
          received(); // the whole body is in: the client now waits for Grove
          return;
        }
        total += next.value.length;
        if (total > maxBytes) throw new UnpackError(`pack exceeds the maximum size of ${maxBytes} bytes`);
        yield next.value;
      }
    };
    if (objectCount === 0) {
      // The empty pack git sends when every new tip already exists: nothing to index.
      for await (const _ of counted()) void _;
      if (total !== PACK_HEADER_BYTES + 20) throw new UnpackError('malformed empty pack');
      return total;
    }
    input.progress(`grove: receiving ${objectCount} object${objectCount === 1 ? '' : 's'}\n`);
    // A shallow client's pack stops at its shallow commits: tell index-pack (as receive-pack does),
    // and let the connectivity check decide whether the push would add shallow roots.
    const shallowArgs: string[] = [];
    if (input.request.shallow.length > 0) {
      const shallowFile = path.join(quarantine.dir, 'shallow');
      await writeFile(shallowFile, `${input.request.shallow.join('\n')}\n`);
      shallowArgs.push('--shallow-file', shallowFile);
    }
    const child = await this.#git.spawn(
      [...shallowArgs, 'index-pack', '--stdin', '--fix-thin', '--strict', `--keep=grove push ${process.pid}`, `--max-input-size=${maxBytes}`],
      { gitDir: input.gitDir, env: quarantine.env, signal: input.signal },
    );
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdout.resume();
    const exited = exitCode(child);
    try {
      await pipeline(Readable.from(counted()), child.stdin);
    } catch (error) {
      child.kill('SIGKILL');
      await exited;
      if (error instanceof UnpackError) throw error;
      if (input.signal.aborted) throw error;
      // index-pack closed its stdin early: it found the pack bad; its stderr says why.
    }
    const code = await exited;
    if (code !== 0) {
      const message = Buffer.concat(stderr).toString('utf8').trim().split('\n').filter(Boolean);
      const reason = message.find((line) => line.startsWith('fatal:') || line.startsWith('error:')) ?? message.pop() ?? 'index-pack failed';
      throw new UnpackError(reason.replace(/^(fatal|error):\s*/, ''));
    }
    return total;
  }

  /**
   * Connectivity and types of every accepted new tip, inside the quarantine, and whether each
   * update is a force push. The common case costs one rev-list for all tips (as receive-pack's
   * check does), given branch tips as `<oid>^{commit}` so that a tree or blob for a branch fails
   * it too, beside one merge-base per update; only when rev-list fails does a cat-file and a
   * rev-list per tip find which commands to refuse, before anything is migrated. (An annotated
   * tag object pushed as a branch passes `^{commit}`: the ref transaction refuses it, and its
   * objects stay behind unreferenced.)
   */
  async #checkObjects(input: PushInput, quarantine: Quarantine | null, rejected: Map<RefCommand, string>): Promise<Map<RefCommand, boolean>> {
    const forcedBy = new Map<RefCommand, boolean>();
    const candidates = input.request.commands.filter((c) => !rejected.has(c) && c.kind !== 'delete');
    if (candidates.length === 0) return forcedBy;
    const env = quarantine?.env;
    const tips = [...new Set(candidates.map((c) => c.newOid))];
    const revisions = [...new Set(candidates.map((c) => (c.ref.startsWith('refs/heads/') ? `${c.newOid}^{commit}` : c.newOid)))];
    const updates = candidates.filter((c) => c.kind === 'update');
    // Independent questions, asked at once: their git processes run side by side.
    const [allGood, ancestries] = await Promise.all([
      this.#connected(input.gitDir, revisions, env),
      Promise.all(updates.map((c) => this.#isAncestor(input.gitDir, c.oldOid, c.newOid, env))),
    ]);
    const types = allGood ? null : await this.#objectTypes(input.gitDir, tips, env);
    const connected = new Set<string>(allGood ? tips : []);
    // The rare path: which tips are there and connected (as themselves: `^{commit}` may be what failed).
    if (types !== null) {
      for (const oid of tips) if (types.has(oid) && (await this.#connected(input.gitDir, [oid], env))) connected.add(oid);
    }
    const shallowClient = input.request.shallow.length > 0;
    for (const command of types === null ? [] : candidates) {
      const type = types!.get(command.newOid);
      if (type === undefined || !connected.has(command.newOid)) {
        rejected.set(command, shallowClient ? 'shallow update not allowed' : 'missing necessary objects');
      } else if (command.ref.startsWith('refs/heads/') && type !== 'commit') {
        rejected.set(command, `branches must point at commits, not a ${type}`);
      }
    }
    updates.forEach((command, i) => {
      if (rejected.has(command)) return;
      const forced = !ancestries[i]!;
      forcedBy.set(command, forced);
      if (!input.needsAncestry(command)) return;
      const denial = input.authorize(command, forced);
      if (denial !== null) rejected.set(command, denial);
    });
    return forcedBy;
  }

  /** Force-push detection by ancestry on the pushed objects (there is no flag on the wire). */
  async #isAncestor(gitDir: string, ancestor: string, descendant: string, env: Record<string, string> | undefined): Promise<boolean> {
    const result = await this.#git.run(['merge-base', '--is-ancestor', ancestor, descendant], { gitDir, ...(env ? { env } : {}) });
    return result.code === 0;
  }

  async #objectTypes(gitDir: string, oids: readonly string[], env: Record<string, string> | undefined): Promise<Map<string, string>> {
    const out = await this.#git.check(['cat-file', '--batch-check=%(objectname) %(objecttype)'], {
      gitDir,
      ...(env ? { env } : {}),
      input: `${oids.join('\n')}\n`,
    });
    const types = new Map<string, string>();
    for (const line of out.toString('utf8').split('\n')) {
      const [oid, type] = line.split(' ');
      if (oid && type && type !== 'missing') types.set(oid, type);
    }
    return types;
  }

  async #connected(gitDir: string, oids: readonly string[], env: Record<string, string> | undefined): Promise<boolean> {
    const result = await this.#git.run(['rev-list', '--objects', '--stdin', '--not', '--all', '--quiet'], {
      gitDir,
      ...(env ? { env } : {}),
      input: `${oids.join('\n')}\n`,
    });
    return result.code === 0;
  }
}

function precheck(command: RefCommand, input: PushInput, seen: ReadonlySet<string>): string | null {
  const nameProblem = checkWritableRefName(command.ref);
  if (nameProblem !== null) return nameProblem;
  if (seen.has(command.ref)) return 'duplicate ref in the same push';
  const denial = input.authorize(command);
  if (denial !== null) return denial;
  if (command.kind === 'delete' && !isZeroOid(command.oldOid) && input.snapshot.head?.target === command.ref) {
    return 'deletion of the current branch prohibited (change the default branch first)';
  }
  return null;
}

function finish(
  commands: readonly RefCommand[],
  rejected: ReadonlyMap<RefCommand, string>,
  unpackError: string | null,
  packBytes: number,
  applied: readonly RefCommand[],
): PushOutcome {
  const results: RefResult[] = commands.map((command) => {
    const reason = rejected.get(command);
    return reason === undefined ? { ref: command.ref, ok: true } : { ref: command.ref, ok: false, reason };
  });
  return { unpackError, results, packBytes, applied };
}
