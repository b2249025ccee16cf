/**
 * The push pipeline (architecture §2): Grove has already parsed the command list;
 * this runs
 *
 *   1. per-ref checks that need no objects (name, authorization, current branch);
 *   2. the pack into a quarantine (`git index-pack --stdin --fix-thin --strict`; pack-intake.ts);
 *   3. connectivity and object types of the new tips, inside the quarantine;
 *   4. migration of the quarantine into the repository (fsync);
 *   5. one compare-and-swap ref transaction (all-or-nothing when `atomic`);
 *
 * and returns the report. A failed step leaves the repository as it was.
 */
import { performance } from 'node:perf_hooks';
import { isZeroOid } from '../git/oid.ts';
import { checkWritableRefName } from '../git/ref-name.ts';
import type { RefCommand, ReceivePackRequest } from '../git/receive-pack-request.ts';
import type { RefResult } from '../git/report-status.ts';
import type { GitRunner } from './git-command.ts';
import { Quarantine, removeKeepFiles } from './quarantine.ts';
import { receivePack, UnpackError, type EvictedBlobs } from './pack-intake.ts';
import type { RefSnapshot } from './ref-snapshot.ts';
import type { NewEvent } from '../events/types.ts';
import type { RefStore } from './ref-store.ts';
import type { RefUpdate, TransactionResult } from './ref-transaction.ts';

export type { EvictedBlobs } from './pack-intake.ts';

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
  /** Set when big blobs of the repository were evicted to the chunk store: git lacks them. */
  readonly evicted?: EvictedBlobs | null;
}

export interface PushOutcome {
  readonly unpackError: string | null;
  readonly results: readonly RefResult[];
  readonly packBytes: number;
  /** The updates that were applied. */
  readonly applied: readonly RefCommand[];
  /** Evicted big blobs written back into git to resolve a thin pack (to be evicted again). */
  readonly materialized?: readonly string[];
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
    let materialized: readonly string[] = [];
    try {
      let unpackError: string | null = null;
      if (wantsObjects) {
        try {
          const intake = await receivePack(this.#git, input, quarantine!);
          packBytes = intake.bytes;
          materialized = intake.materialized;
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
        return { ...finish(request.commands, rejected, null, packBytes, applied), materialized };
      } finally {
        await removeKeepFiles(keeps);
      }
    } finally {
      await quarantine?.remove();
    }
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
      this.#connected(input.gitDir, revisions, env, input.evicted ?? null),
      Promise.all(updates.map((c) => this.#isAncestor(input.gitDir, c.oldOid, c.newOid, env))),
    ]);
    const types = allGood ? null : await this.#objectTypes(input.gitDir, tips, env);
    const connected = new Set<string>(allGood ? tips : []);
    // The rare path: which tips are there and connected (as themselves: `^{commit}` may be what failed).
    if (types !== null) {
      for (const oid of tips) if (types.has(oid) && (await this.#connected(input.gitDir, [oid], env, input.evicted ?? null))) connected.add(oid);
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

  /**
   * Whether every object the tips reach is in the repository or the quarantine. Where big
   * blobs were evicted, an object git lacks is acceptable only as a big blob the chunk store
   * holds for this repository (`--missing=print` lists them), never another tenant's.
   */
  async #connected(gitDir: string, oids: readonly string[], env: Record<string, string> | undefined, evicted: EvictedBlobs | null): Promise<boolean> {
    const options = { gitDir, ...(env ? { env } : {}), input: `${oids.join('\n')}\n` };
    const result = await this.#git.run(['rev-list', '--objects', '--stdin', '--not', '--all', '--quiet'], options);
    if (result.code === 0 || evicted === null) return result.code === 0;
    const listed = await this.#git.run(['rev-list', '--objects', '--no-object-names', '--missing=print', '--stdin', '--not', '--all'], options);
    if (listed.code !== 0) return false;
    const missing = listed.stdout.toString('latin1').split('\n').filter((line) => line.startsWith('?')).map((line) => line.slice(1));
    return missing.every((oid) => evicted.holds(oid));
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
