/**
 * Access commands: `grove key …` (API keys), `grove signing-key …` (org public keys),
 * `grove token mint` (offline-signed tokens, no network) and `grove policy …`.
 * `key create` and `token mint` print only the token, so they pipe into an agent's env.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { mintToken, type Grant, type RefRule, type Scope } from '@grove/sdk';
import { clientFromEnv, splitRepo, UsageError } from './client-commands.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface GrantOptions {
  org?: string[];
  repo?: string[];
  branch?: string[];
}

/** --org acme / --repo acme/app (repeatable), --branch applies to each of them. */
export function grantsFromOptions(options: GrantOptions): Grant[] {
  const branches = options.branch && options.branch.length > 0 ? { branches: options.branch } : {};
  const grants: Grant[] = [
    ...(options.org ?? []).map((org) => ({ org, ...branches })),
    ...(options.repo ?? []).map((target) => ({ ...splitRepo(target), ...branches })),
  ];
  if (grants.length === 0) throw new UsageError('name at least one --org ORG or --repo ORG/REPO');
  return grants;
}

function parseScope(value: string): Scope {
  if (value !== 'read' && value !== 'write' && value !== 'admin') throw new UsageError('--scope must be read, write or admin');
  return value;
}

function parseLabels(values: string[] = []): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label ${JSON.stringify(value)} must be name=value`);
    labels[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return labels;
}

function print(value: unknown): void {
  if (value !== undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function withGrantOptions(command: Command): Command {
  return command
    .option('--org <org>', 'every repository of an org (repeatable)', collect)
    .option('--repo <org/repo>', 'one repository (repeatable)', collect)
    .option('--branch <glob>', 'limit writes to branches matching the glob, e.g. agent-7/* (repeatable)', collect);
}

export function registerAccessCommands(program: Command): void {
  const key = program.command('key').description('manage API keys');
  withGrantOptions(key.command('create').description('create an API key and print only its token'))
    .requiredOption('--scope <scope>', 'read, write or admin')
    .option('--ttl <ttl>', 'lifetime: 90s, 30m, 1h, 7d or seconds')
    .option('--name <name>', 'a name to recognise the key by')
    .option('--label <name=value>', 'label (repeatable)', collect)
    .option('--json', 'print the whole key as JSON, not only the token')
    .action(async (options: GrantOptions & { scope: string; ttl?: string; name?: string; label?: string[]; json?: boolean }) => {
      const created = await clientFromEnv().apiKeys.create({
        scope: parseScope(options.scope),
        resources: grantsFromOptions(options),
        ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
        ...(options.name !== undefined ? { name: options.name } : {}),
        ...(options.label ? { labels: parseLabels(options.label) } : {}),
      });
      if (options.json) print(created);
      else process.stdout.write(`${created.token}\n`);
    });
  key.command('list').description('list API keys (never their tokens)')
    .option('--org <org>', 'only keys with a resource in this org')
    .option('--label <name:value>', 'only keys with this label')
    .option('--limit <n>', 'page size').option('--cursor <cursor>', 'page cursor')
    .action(async (options: { org?: string; label?: string; limit?: string; cursor?: string }) => {
      print(await clientFromEnv().apiKeys.list({
        ...(options.org !== undefined ? { org: options.org } : {}),
        ...(options.label !== undefined ? { label: options.label } : {}),
        ...(options.limit !== undefined ? { limit: Number(options.limit) } : {}),
        ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      }));
    });
  key.command('get <id>').description('show an API key').action(async (id: string) => print(await clientFromEnv().apiKeys.get(id)));
  key.command('revoke <id>').description('revoke an API key (effective on its next request)').action(async (id: string) => {
    await clientFromEnv().apiKeys.revoke(id);
  });

  const signing = program.command('signing-key').description("manage an org's Ed25519 public keys for signed tokens");
  signing.command('add <org>').description('register a public key (JWK JSON or SPKI PEM file)')
    .requiredOption('--public-key-file <path>', 'file with the public key')
    .requiredOption('--name <name>', 'a name for the key')
    .action(async (org: string, options: { publicKeyFile: string; name: string }) => {
      const text = (await readFile(options.publicKeyFile, 'utf8')).trim();
      const publicKey = text.startsWith('{') ? (JSON.parse(text) as Record<string, string>) : text;
      print(await clientFromEnv().signingKeys.create(org, { publicKey, name: options.name }));
    });
  signing.command('list <org>').description("list an org's signing keys").action(async (org: string) => print(await clientFromEnv().signingKeys.list(org)));
  signing.command('delete <org> <id>').description('delete a signing key; its tokens stop working').action(async (org: string, id: string) => {
    await clientFromEnv().signingKeys.delete(org, id);
  });

  const token = program.command('token').description('offline-signed tokens');
  withGrantOptions(token.command('mint').description('sign a token with an org private key (no network); prints only the token'))
    .requiredOption('--private-key-file <path>', 'Ed25519 private key: PKCS#8 PEM or JWK JSON')
    .requiredOption('--scope <scope>', 'read, write or admin')
    .option('--ttl <ttl>', 'lifetime, at most 24h', '1h')
    .option('--key-id <id>', 'the signing key id (sent as kid)')
    .action(async (options: GrantOptions & { privateKeyFile: string; scope: string; ttl: string; keyId?: string }) => {
      const text = (await readFile(options.privateKeyFile, 'utf8')).trim();
      const privateKey = text.startsWith('{') ? (JSON.parse(text) as Record<string, string>) : text;
      const minted = await mintToken({ privateKey, scope: parseScope(options.scope), resources: grantsFromOptions(options), ttl: options.ttl, ...(options.keyId ? { keyId: options.keyId } : {}) });
      process.stdout.write(`${minted}\n`);
    });

  token.command('revoke <org> <signing-key-id> <jti>').description('revoke one signed token by its jti (other tokens of the key keep working)')
    .option('--exp <seconds>', "the token's exp (epoch seconds), so the server keeps the entry only that long")
    .action(async (org: string, signingKeyId: string, jti: string, options: { exp?: string }) => {
      const exp = options.exp === undefined ? undefined : Number(options.exp);
      if (exp !== undefined && !Number.isInteger(exp)) throw new UsageError('--exp must be epoch seconds');
      await clientFromEnv().signingKeys.revokeToken(org, signingKeyId, jti, exp === undefined ? {} : { exp });
    });

  const policy = program.command('policy').description('repository ref policies');
  policy.command('get <org/repo>').description("show a repository's ref rules").action(async (target: string) => {
    const { org, repo } = splitRepo(target);
    print(await clientFromEnv().policies.get(org, repo));
  });
  policy.command('set <org/repo> <rules-json>').description(`replace the ref rules, e.g. '[{"pattern":"main","protected":true}]'`)
    .action(async (target: string, rulesJson: string) => {
      const { org, repo } = splitRepo(target);
      let rules: RefRule[];
      try {
        rules = JSON.parse(rulesJson) as RefRule[];
      } catch {
        throw new UsageError('rules must be a JSON array');
      }
      print(await clientFromEnv().policies.set(org, repo, rules));
    });
}
