/**
 * Rebasing without a working tree on git 2.39, whose `merge-tree --write-tree` takes
 * no explicit merge base: to replay commit C onto tip T, make a throwaway commit X with
 * T's tree and C's parent as its parent. The merge base of X and C is then exactly
 * C's parent, so merging X with C is the cherry-pick of C onto T. Objects go to the
 * caller's quarantine; X is never referenced.
 */
import type { Signature } from './commit-builder.ts';
import type { GitRunner } from './git-command.ts';
import { mergeTrees, type Conflict } from './merge.ts';

export type ReplayOutcome =
  | { readonly ok: true; readonly tip: string; readonly tree: string; readonly replayed: number }
  | { readonly ok: false; readonly commit: string; readonly conflicts: readonly Conflict[] }
  | { readonly ok: false; readonly commit: string; readonly reason: string };

export const MAX_REPLAYED_COMMITS = 1000;

interface CommitInfo {
  readonly parent: string | null;
  readonly author: { name: string; email: string; date: string };
  readonly message: string;
}

/** Parses a raw commit object. Pure. */
export function parseCommitObject(raw: string): CommitInfo {
  const split = raw.indexOf('\n\n');
  const header = split === -1 ? raw : raw.slice(0, split);
  const message = split === -1 ? '' : raw.slice(split + 2);
  let parent: string | null = null;
  let author = { name: 'unknown', email: '', date: '' };
  for (const line of header.split('\n')) {
    if (line.startsWith('parent ') && parent === null) parent = line.slice(7);
    const match = /^author (.*) <([^>]*)> (\d+ [+-]\d{4})$/.exec(line);
    if (match) author = { name: match[1]!, email: match[2]!, date: match[3]! };
  }
  return { parent, author, message };
}

export async function replayCommits(git: GitRunner, gitDir: string, env: Record<string, string>, onto: string, commits: readonly string[], committer: Signature): Promise<ReplayOutcome> {
  let tip = onto;
  let tree = (await git.check(['rev-parse', `${onto}^{tree}`], { gitDir, env })).toString().trim();
  const committerEnv = { GIT_COMMITTER_NAME: committer.name, GIT_COMMITTER_EMAIL: committer.email };
  for (const commit of commits) {
    const info = parseCommitObject((await git.check(['cat-file', 'commit', commit], { gitDir, env })).toString('utf8'));
    if (info.parent === null) return { ok: false, commit, reason: `${commit} is a root commit: the histories are unrelated` };
    const probe = (await git.check(['commit-tree', tree, '-p', info.parent, '-m', 'grove rebase probe'], {
      gitDir,
      env: { ...env, ...committerEnv, GIT_AUTHOR_NAME: committer.name, GIT_AUTHOR_EMAIL: committer.email },
    })).toString().trim();
    const merged = await mergeTrees(git, gitDir, env, probe, commit);
    if (!merged.clean) return { ok: false, commit, conflicts: merged.conflicts };
    tip = (await git.check(['commit-tree', merged.tree, '-p', tip, '-F', '-'], {
      gitDir,
      env: { ...env, ...committerEnv, GIT_AUTHOR_NAME: info.author.name, GIT_AUTHOR_EMAIL: info.author.email, GIT_AUTHOR_DATE: info.author.date },
      input: info.message,
    })).toString().trim();
    tree = merged.tree;
  }
  return { ok: true, tip, tree, replayed: commits.length };
}
