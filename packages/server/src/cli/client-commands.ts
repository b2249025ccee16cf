/**
 * Client commands (`grove org …`, `grove repo …`): thin wrappers over the SDK that
 * read GROVE_URL and GROVE_TOKEN and print JSON, so agents and scripts can parse them.
 */
import type { Command } from 'commander';
import { Grove, GroveApiError } from '@grove/sdk';

export class UsageError extends Error {
  override name = 'UsageError';
}

export function clientFromEnv(env: NodeJS.ProcessEnv = process.env): Grove {
  const token = env.GROVE_TOKEN;
  if (!token) throw new UsageError('GROVE_TOKEN is not set: export the admin token or an API key');
  return new Grove({ baseUrl: env.GROVE_URL ?? 'http://127.0.0.1:8080', token });
}

/** `org/repo` → its two names. */
export function splitRepo(value: string): { org: string; repo: string } {
  const parts = value.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new UsageError(`expected ORG/REPO, got ${JSON.stringify(value)}`);
  return { org: parts[0], repo: parts[1] };
}

function print(value: unknown): void {
  if (value !== undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function pageOptions(options: { limit?: string; cursor?: string }): { limit?: number; cursor?: string } {
  return {
    ...(options.limit !== undefined ? { limit: Number(options.limit) } : {}),
    ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
  };
}

export function registerClientCommands(program: Command): void {
  const admin = program.command('admin').description('server administration (root token)');
  admin.command('rotate-secret-key').description('re-seal every stored secret under a new server key (see docs/security.md)')
    .action(async () => print(await clientFromEnv().admin.rotateSecretKey()));
  const org = program.command('org').description('manage organizations');
  org.command('create <name>').description('create an organization').action(async (name: string) => print(await clientFromEnv().orgs.create({ name })));
  org.command('list').description('list organizations').option('--limit <n>', 'page size').option('--cursor <cursor>', 'page cursor')
    .action(async (options: { limit?: string; cursor?: string }) => print(await clientFromEnv().orgs.list(pageOptions(options))));
  org.command('get <name>').description('show an organization').action(async (name: string) => print(await clientFromEnv().orgs.get(name)));
  org.command('delete <name>').description('delete an organization with no repositories').action(async (name: string) => {
    await clientFromEnv().orgs.delete(name);
  });

  const repo = program.command('repo').description('manage repositories');
  repo.command('create <org/repo>').description('create a repository')
    .option('--default-branch <branch>', 'branch HEAD points at', 'main')
    .option('--description <text>', 'description')
    .action(async (target: string, options: { defaultBranch: string; description?: string }) => {
      const { org: orgName, repo: name } = splitRepo(target);
      print(await clientFromEnv().repos.create(orgName, { name, defaultBranch: options.defaultBranch, ...(options.description !== undefined ? { description: options.description } : {}) }));
    });
  repo.command('list <org>').description("list an organization's repositories")
    .option('--limit <n>', 'page size').option('--cursor <cursor>', 'page cursor')
    .action(async (orgName: string, options: { limit?: string; cursor?: string }) => print(await clientFromEnv().repos.list(orgName, pageOptions(options))));
  repo.command('get <org/repo>').description('show a repository').action(async (target: string) => {
    const { org: orgName, repo: name } = splitRepo(target);
    print(await clientFromEnv().repos.get(orgName, name));
  });
  repo.command('update <org/repo>').description('rename a repository or change its default branch or description')
    .option('--name <name>', 'new name').option('--default-branch <branch>', 'new default branch').option('--description <text>', 'new description')
    .action(async (target: string, options: { name?: string; defaultBranch?: string; description?: string }) => {
      const { org: orgName, repo: name } = splitRepo(target);
      print(await clientFromEnv().repos.update(orgName, name, options));
    });
  repo.command('fsck <org/repo>').description("check a repository's objects (git fsck --strict, big blobs verified in the chunk store); prints the report, exits 1 on a problem")
    .action(async (target: string) => {
      const { org: orgName, repo: name } = splitRepo(target);
      const report = await clientFromEnv().repos.fsck(orgName, name);
      print(report);
      if (!report.ok) process.exitCode = 1;
    });
  repo.command('delete <org/repo>').description('delete a repository and all its data').action(async (target: string) => {
    const { org: orgName, repo: name } = splitRepo(target);
    await clientFromEnv().repos.delete(orgName, name);
  });
}

/** How a failed command reports itself: one line on stderr, exit 1. */
export function describeCliError(error: unknown): string {
  if (error instanceof GroveApiError) return `grove: ${error.code}: ${error.message}`;
  if (error instanceof UsageError) return `grove: ${error.message}`;
  if (error instanceof TypeError && /fetch failed/.test(error.message)) {
    return `grove: cannot reach the server (${(error.cause as Error | undefined)?.message ?? error.message}); check GROVE_URL`;
  }
  return `grove: ${(error as Error).message ?? String(error)}`;
}
