/**
 * Agent commands: `grove commit`, `grove branch …`, `grove tag …`, `grove merge`,
 * `grove repo fork` — writes without a clone, through the SDK.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { FileChange } from '@grove/sdk';
import { clientFromEnv, splitRepo, UsageError } from './client-commands.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function print(value: unknown): void {
  if (value !== undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function pair(value: string, flag: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new UsageError(`${flag} ${JSON.stringify(value)} must be A=B`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/** --file repo/path=local/file, --delete path, --move from=to → file changes. */
export async function changesFromOptions(options: { file?: string[]; delete?: string[]; move?: string[] }): Promise<FileChange[]> {
  const changes: FileChange[] = [];
  for (const spec of options.file ?? []) {
    const [path, local] = pair(spec, '--file');
    changes.push({ path, content: (await readFile(local)).toString('base64'), encoding: 'base64' });
  }
  for (const path of options.delete ?? []) changes.push({ path, delete: true });
  for (const spec of options.move ?? []) {
    const [from, to] = pair(spec, '--move');
    changes.push({ path: to, moveFrom: from });
  }
  return changes;
}

export function registerAgentCommands(program: Command): void {
  program.command('commit <org/repo>').description('commit file changes to a branch without a clone')
    .requiredOption('--branch <branch>', 'branch to commit to')
    .requiredOption('-m, --message <message>', 'commit message')
    .option('--file <path=local>', 'write the local file at path in the repository (repeatable)', collect)
    .option('--delete <path>', 'delete a path (repeatable)', collect)
    .option('--move <from=to>', 'move a path (repeatable)', collect)
    .option('--expected-head <sha>', 'only if the branch is still at this commit')
    .option('--start-from <rev>', 'create the branch from this branch, tag or sha')
    .option('--allow-empty', 'commit even if nothing changes')
    .option('--idempotency-key <key>', 'a retry with the same key returns the first result')
    .action(async (target: string, options: { branch: string; message: string; file?: string[]; delete?: string[]; move?: string[]; expectedHead?: string; startFrom?: string; allowEmpty?: boolean; idempotencyKey?: string }) => {
      const { org, repo } = splitRepo(target);
      const files = await changesFromOptions(options);
      print(await clientFromEnv().commits.create(org, repo, {
        branch: options.branch,
        message: options.message,
        files,
        ...(options.expectedHead ? { expectedHead: options.expectedHead } : {}),
        ...(options.startFrom ? { startFrom: options.startFrom } : {}),
        ...(options.allowEmpty ? { allowEmpty: true } : {}),
      }, options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}));
    });

  const branch = program.command('branch').description('branches without a clone');
  branch.command('list <org/repo>').option('--prefix <prefix>', 'only names starting with this').option('--limit <n>', 'page size').option('--cursor <cursor>', 'page cursor')
    .action(async (target: string, options: { prefix?: string; limit?: string; cursor?: string }) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().branches.list(org, repo, {
        ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
        ...(options.limit !== undefined ? { limit: Number(options.limit) } : {}),
        ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      }));
    });
  branch.command('get <org/repo> <name>').action(async (target: string, name: string) => {
    const { org, repo } = splitRepo(target);
    print(await clientFromEnv().branches.get(org, repo, name));
  });
  branch.command('create <org/repo> <name> <sha>').description('create a branch at a commit, branch or tag').option('--ttl <ttl>', 'delete it after 30m, 1h, 7d…')
    .action(async (target: string, name: string, sha: string, options: { ttl?: string }) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().branches.create(org, repo, { name, sha, ...(options.ttl ? { ttl: options.ttl } : {}) }));
    });
  branch.command('move <org/repo> <name> <sha>').requiredOption('--expected-sha <sha>', 'the branch must still be here')
    .action(async (target: string, name: string, sha: string, options: { expectedSha: string }) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().branches.move(org, repo, name, { sha, expectedSha: options.expectedSha }));
    });
  branch.command('delete <org/repo> <name>').option('--expected-sha <sha>', 'only if still here')
    .action(async (target: string, name: string, options: { expectedSha?: string }) => {
      const { org, repo } = splitRepo(target);
      await clientFromEnv().branches.delete(org, repo, name, options.expectedSha ? { expectedSha: options.expectedSha } : {});
    });

  const tag = program.command('tag').description('tags without a clone');
  tag.command('list <org/repo>').option('--prefix <prefix>', 'only names starting with this').action(async (target: string, options: { prefix?: string }) => {
    const { org, repo } = splitRepo(target);
    print(await clientFromEnv().tags.list(org, repo, options.prefix !== undefined ? { prefix: options.prefix } : {}));
  });
  tag.command('create <org/repo> <name> <sha>').option('-m, --message <message>', 'make it an annotated tag')
    .action(async (target: string, name: string, sha: string, options: { message?: string }) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().tags.create(org, repo, { name, sha, ...(options.message ? { message: options.message } : {}) }));
    });
  tag.command('delete <org/repo> <name>').option('--expected-sha <sha>', 'only if still here')
    .action(async (target: string, name: string, options: { expectedSha?: string }) => {
      const { org, repo } = splitRepo(target);
      await clientFromEnv().tags.delete(org, repo, name, options.expectedSha ? { expectedSha: options.expectedSha } : {});
    });

  program.command('merge <org/repo>').description('merge branch --head into branch --base (409 on conflicts, nothing moves)')
    .requiredOption('--base <branch>', 'the branch that moves')
    .requiredOption('--head <branch>', 'the branch merged into it')
    .option('--strategy <strategy>', 'fast-forward, merge, squash or rebase', 'merge')
    .option('-m, --message <message>', 'merge commit message')
    .option('--expected-base <sha>', 'only if base is still here')
    .option('--preview', 'say what would happen; move nothing')
    .action(async (target: string, options: { base: string; head: string; strategy: string; message?: string; expectedBase?: string; preview?: boolean }) => {
      const { org, repo } = splitRepo(target);
      if (!['fast-forward', 'merge', 'squash', 'rebase'].includes(options.strategy)) throw new UsageError('--strategy must be fast-forward, merge, squash or rebase');
      const input = {
        base: options.base,
        head: options.head,
        strategy: options.strategy as 'fast-forward' | 'merge' | 'squash' | 'rebase',
        ...(options.message ? { message: options.message } : {}),
        ...(options.expectedBase ? { expectedBase: options.expectedBase } : {}),
      };
      const grove = clientFromEnv();
      print(options.preview ? await grove.merges.preview(org, repo, input) : await grove.merges.merge(org, repo, input));
    });
}

/** `grove repo fork org/source name`: added to the repo command group. */
export function registerForkCommand(repoCommand: Command): void {
  repoCommand.command('fork <org/repo> <name>').description('fork a repository within its org (instant; shares objects)')
    .option('--snapshot', 'one root commit with the source\'s tree, no history')
    .option('--ttl <ttl>', 'delete the fork after 30m, 1h, 7d…')
    .action(async (target: string, name: string, options: { snapshot?: boolean; ttl?: string }) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().repos.fork(org, name, `${org}/${repo}`, { ...(options.snapshot ? { snapshot: true } : {}), ...(options.ttl ? { ttl: options.ttl } : {}) }));
    });
}
