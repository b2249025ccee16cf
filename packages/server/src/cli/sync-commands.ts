/**
 * Remote-sync commands (docs/remote-sync.md): `grove credential …` (an org's secrets for
 * remotes, read from stdin only: a secret never sits in argv, the shell history or `ps`),
 * `grove upstream …` (a repository's remotes and their rules) and `grove sync …` (runs:
 * queue one, follow it, list and show them). Resource reads print JSON like the other
 * client commands; `upstream set` and the `sync` commands print a report (`--json` for the
 * API answer). `grove sync run --wait` exits 0 when the run succeeded, 2 when it was partial,
 * 1 when it failed.
 */
import type { Command } from 'commander';
import { SyncWaitTimeoutError, type RefOutcome, type RefReport, type SyncRule, type SyncRun, type Upstream, type UpstreamInput } from '@grove/sdk';
import { clientFromEnv, splitRepo, UsageError } from './client-commands.ts';

/** In the order a summary names them. */
const OUTCOMES: readonly RefOutcome[] = ['created', 'updated', 'forced', 'deleted', 'kept', 'diverged', 'rejected', 'stale', 'failed', 'filtered', 'unchanged'];
const MOVED: ReadonlySet<RefOutcome> = new Set(['created', 'updated', 'forced', 'deleted']);
/** Exit codes of `sync run --wait`. */
const EXIT: Record<'succeeded' | 'partial' | 'failed', number> = { succeeded: 0, partial: 2, failed: 1 };

const collect = (value: string, previous: string[] = []) => [...previous, value];

function print(value: unknown): void {
  if (value !== undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function line(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/**
 * The secret piped to the command: everything on stdin, one trailing line break dropped
 * (`echo "$TOKEN" | grove credential add …`). A terminal is refused: what is typed there
 * would echo, and a script waiting on it would hang.
 */
async function secretFromStdin(command: string): Promise<string> {
  if (process.stdin.isTTY) {
    throw new UsageError(`refusing to read the secret from a terminal: pipe it to stdin, e.g. \`grove ${command} < token.txt\` or \`printenv TOKEN | grove ${command}\``);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const secret = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (secret === '') throw new UsageError(`no secret on stdin: pipe the token or password to \`grove ${command}\``);
  return secret;
}

/** A glob over full ref names; one without `refs/` names branches (`agent/*` = `refs/heads/agent/*`). */
function refGlob(glob: string): string {
  return glob.startsWith('refs/') ? glob : `refs/heads/${glob}`;
}

function positiveInteger(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a whole number of seconds, got ${JSON.stringify(value)}`);
  return n;
}

function short(oid: string | null): string {
  return oid === null ? '0000000' : oid.slice(0, 7);
}

// ---- credentials ------------------------------------------------------------------------

/**
 * Commander repeats a refused option or argument in its error; on the commands that take a
 * secret, that could be the secret itself (`--secret=…`, or an extra argument): say what was
 * wrong without repeating it.
 */
const noEcho = {
  outputError: (text: string, write: (text: string) => void) =>
    write(text.replace(/^error: (unknown option|too many arguments)\b.*$/m, 'error: $1 (not repeated here): secrets are read from stdin only, never from arguments')),
};

function registerCredentialCommands(program: Command): void {
  const credential = program.command('credential').description("an org's credentials for remotes (secrets are read from stdin, never from arguments, and never shown)");
  credential.command('add <org>').configureOutput(noEcho).description('store a credential; the secret (token or password) is read from stdin, e.g. `grove credential add acme --name github < token.txt`')
    .requiredOption('--name <name>', 'a name for the credential')
    .option('--kind <kind>', 'token (sent as the Basic password) or basic (a user name and password)', 'token')
    .option('--username <user>', 'the Basic user name (required for basic; a token defaults to x-access-token)')
    .option('--expires-at <date-time>', 'when the secret expires (ISO 8601; shown, not enforced)')
    .action(async (org: string, options: { name: string; kind: string; username?: string; expiresAt?: string }) => {
      if (options.kind !== 'token' && options.kind !== 'basic') throw new UsageError('--kind must be token or basic');
      if (options.kind === 'basic' && options.username === undefined) throw new UsageError('a basic credential needs --username');
      const client = clientFromEnv();
      const secret = await secretFromStdin(`credential add ${org} --name ${options.name}`);
      print(await client.credentials.create(org, {
        name: options.name,
        kind: options.kind,
        secret,
        ...(options.username !== undefined ? { username: options.username } : {}),
        ...(options.expiresAt !== undefined ? { expiresAt: options.expiresAt } : {}),
      }));
    });
  credential.command('list <org>').description("list an org's credentials (fingerprints and status, never secrets)")
    .action(async (org: string) => print(await clientFromEnv().credentials.list(org)));
  credential.command('show <org> <id>').description('show a credential (never its secret)')
    .action(async (org: string, id: string) => print(await clientFromEnv().credentials.get(org, id)));
  credential.command('rotate <org> <id>').configureOutput(noEcho).description('replace the secret with the one on stdin; upstreams its rejection paused resume')
    .option('--expires-at <date-time>', 'when the new secret expires (ISO 8601)')
    .action(async (org: string, id: string, options: { expiresAt?: string }) => {
      const client = clientFromEnv();
      const secret = await secretFromStdin(`credential rotate ${org} ${id}`);
      print(await client.credentials.rotate(org, id, { secret, ...(options.expiresAt !== undefined ? { expiresAt: options.expiresAt } : {}) }));
    });
  credential.command('delete <org> <id>').description('delete a credential no upstream uses')
    .action(async (org: string, id: string) => {
      await clientFromEnv().credentials.delete(org, id);
    });
}

// ---- upstreams --------------------------------------------------------------------------

/** Rules in the order their flags were given: each --pull/--push/--both carries a sequence number. */
let ruleSequence = 0;
const ruleFlag = (direction: SyncRule['direction']) => (glob: string, previous: { at: number; refs: string; direction: SyncRule['direction'] }[] = []) => [...previous, { at: ruleSequence++, refs: refGlob(glob), direction }];
type RuleFlags = { at: number; refs: string; direction: SyncRule['direction'] }[];

interface SetOptions {
  name: string;
  credential?: string;
  pull?: RuleFlags;
  push?: RuleFlags;
  both?: RuleFlags;
  onDivergence?: string;
  propagateDeletions?: boolean;
  mirror?: boolean;
  poll?: string;
  pushForward: boolean;
  json?: boolean;
}

export function upstreamInputFromOptions(url: string, options: SetOptions): UpstreamInput {
  const flags = [...(options.pull ?? []), ...(options.push ?? []), ...(options.both ?? [])].sort((a, b) => a.at - b.at);
  const divergence = options.onDivergence;
  if (divergence !== undefined && divergence !== 'skip' && divergence !== 'overwrite' && divergence !== 'keep') throw new UsageError('--on-divergence must be skip, overwrite or keep');
  if (flags.length === 0 && (divergence !== undefined || options.propagateDeletions)) {
    throw new UsageError('--on-divergence and --propagate-deletions apply to the rules: name them with --pull, --push or --both (without rules the server defaults apply)');
  }
  const rules: SyncRule[] = flags.map(({ refs, direction }) => ({ refs, direction, onDivergence: divergence ?? 'skip', deletions: options.propagateDeletions ? 'propagate' : 'ignore' }));
  return {
    url,
    credentialId: options.credential ?? null,
    ...(rules.length > 0 ? { rules } : {}),
    ...(options.mirror ? { readOnly: true } : {}),
    ...(options.poll !== undefined ? { pollIntervalSeconds: positiveInteger(options.poll, '--poll') } : {}),
    ...(options.pushForward === false ? { pushForward: false } : {}),
  };
}

/** The webhook URL as the remote must call it: the server answers a path, resolved against GROVE_URL. */
function webhookUrl(upstream: Upstream): string {
  return new URL(upstream.webhook.url, process.env.GROVE_URL ?? 'http://127.0.0.1:8080').toString();
}

function printUpstream(upstream: Upstream, target: string): void {
  line(`upstream ${upstream.name} of ${target}: ${upstream.url}${upstream.readOnly ? ' (read-only mirror)' : ''}`);
  line(`  credential:   ${upstream.credentialId ?? 'none'}`);
  line('  rules:');
  for (const rule of upstream.rules) line(`    ${rule.direction.padEnd(4)}  ${rule.refs}  (on divergence ${rule.onDivergence}, deletions ${rule.deletions})`);
  line(`  poll:         every ${upstream.pollIntervalSeconds} s; push-forward ${upstream.pushForward ? 'on' : 'off'}`);
  line(`  state:        ${upstream.status.state}${upstream.status.pausedReason ? ` (${upstream.status.pausedReason})` : ''}`);
  if (upstream.syncRun !== undefined) line(`  sync run:     ${upstream.syncRun} queued (grove sync show ${target} ${upstream.syncRun}${upstream.name === 'origin' ? '' : ` --upstream ${upstream.name}`})`);
  if (upstream.webhook.secret !== undefined) {
    line('webhook for the remote (push events, JSON; the secret is shown only this once):');
    line(`  url:          ${webhookUrl(upstream)}`);
    line(`  secret:       ${upstream.webhook.secret}`);
  }
}

function registerUpstreamCommands(program: Command): void {
  const upstream = program.command('upstream').description("a repository's remotes: what syncs in which direction (docs/remote-sync.md)");
  upstream.command('set <org/repo> <url>')
    .description('attach an upstream or replace its whole configuration (give every option again), after checking the remote answers; queues a sync run. '
      + 'Rules are --pull/--push/--both GLOB in the order given, the first match deciding a ref (a glob without refs/ names branches: agent/* = refs/heads/agent/*); '
      + 'without any, every branch and tag is pulled, fast-forward only')
    .option('--name <name>', 'the upstream name', 'origin')
    .option('--credential <id>', 'a credential of the org (grove credential add); none for a public remote')
    .option('--pull <glob>', 'a rule pulling matching refs from the remote (repeatable)', ruleFlag('pull'))
    .option('--push <glob>', 'a rule pushing matching refs to the remote (repeatable)', ruleFlag('push'))
    .option('--both <glob>', 'a rule syncing matching refs both ways (repeatable)', ruleFlag('both'))
    .option('--on-divergence <what>', 'for every rule given: skip (report it), overwrite (keeping a backup ref) or keep (publish upstream/<branch>)')
    .option('--propagate-deletions', 'for every rule given: a ref deleted on one side is deleted on the other')
    .option('--mirror', 'a read-only mirror: the remote is the truth; pushes and API writes are refused')
    .option('--poll <seconds>', 'seconds between polls of the remote (10 to 86400)')
    .option('--no-push-forward', 'do not push push-rule refs after every accepted Grove change (only on a sync run)')
    .option('--json', 'print the API answer as JSON')
    .action(async (target: string, url: string, options: SetOptions) => {
      const { org, repo } = splitRepo(target);
      const input = upstreamInputFromOptions(url, options);
      const answer = await clientFromEnv().upstreams.set(org, repo, options.name, input);
      if (options.json) print(answer);
      else printUpstream(answer, target);
    });
  upstream.command('list <org/repo>').description("a repository's upstreams with their status (JSON)")
    .action(async (target: string) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().upstreams.list(org, repo));
    });
  upstream.command('show <org/repo> [name]').description('an upstream: configuration and status (JSON; name defaults to origin)')
    .action(async (target: string, name = 'origin') => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().upstreams.get(org, repo, name));
    });
  upstream.command('delete <org/repo> [name]').description('detach an upstream (name defaults to origin): its runs, tracking refs and backup refs go')
    .action(async (target: string, name = 'origin') => {
      const { org, repo } = splitRepo(target);
      await clientFromEnv().upstreams.delete(org, repo, name);
    });
  upstream.command('resume <org/repo> [name]').description('resume a paused upstream now (name defaults to origin); prints it (JSON)')
    .action(async (target: string, name = 'origin') => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().upstreams.resume(org, repo, name));
    });
}

// ---- sync runs --------------------------------------------------------------------------

function summary(counts: SyncRun['counts']): string {
  const parts = OUTCOMES.filter((o) => (counts[o] ?? 0) > 0).map((o) => `${counts[o]} ${o}`);
  return parts.length === 0 ? 'no refs' : parts.join(', ');
}

/** Old → new: for a pull Grove's value before and after; for a push what reached the remote. */
function change(report: RefReport): string {
  if (report.side === 'push') {
    return MOVED.has(report.outcome) ? `pushed → ${short(report.upstream)}` : `grove ${short(report.before)}, remote ${short(report.upstream)}`;
  }
  const moved = `${short(report.before)} → ${short(report.after)}`;
  return report.upstream !== report.after && report.upstream !== null ? `${moved} (remote ${short(report.upstream)})` : moved;
}

function seconds(run: SyncRun): string {
  if (run.startedAt === null || run.finishedAt === null) return '';
  return `, ${((Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000).toFixed(1)} s`;
}

/** One line per ref (outcome, ref, old → new, message), the remote's messages, then a summary. */
function printRun(run: SyncRun): void {
  const width = Math.min(60, Math.max(0, ...run.refs.map((r) => r.ref.length)));
  for (const report of run.refs) {
    line(`${report.outcome.padEnd(9)} ${report.ref.padEnd(width)}  ${change(report)}${report.message !== undefined ? `  ${report.message}` : ''}`);
  }
  if (run.refsTruncated) line(`… only the first ${run.refs.length} refs are listed`);
  for (const message of run.remoteMessages) line(`remote: ${message}`);
  const what = `${run.dryRun ? 'dry run, ' : ''}${run.direction}, ${run.trigger}${seconds(run)}`;
  const status = run.status === 'failed' && run.error !== null ? `failed: ${run.error.code}: ${run.error.message}` : `${run.status}: ${summary(run.counts)}`;
  line(`${status} (run ${run.id}, ${what})`);
}

function registerSyncRunCommands(program: Command): void {
  const sync = program.command('sync')
    .description('sync runs of an upstream: `grove sync <org/repo>` is short for `grove sync run <org/repo>`')
    .addHelpText('after', `
Examples:
  grove sync acme/app --wait                 pull and push under the upstream's rules, wait, print every ref
  grove sync run acme/app --pull --ref 'agent-7/*' --dry-run --wait
  grove sync list acme/app                   runs of origin, newest first
  grove sync show acme/app sync_…            one run, ref by ref

Exit codes with --wait: 0 the run succeeded, 2 it was partial (a ref diverged, was rejected,
stale or failed: listed), 1 it failed (nothing changed) or the command failed.`);

  sync.command('run <org/repo>', { isDefault: true })
    .description('queue a sync run (joins one already queued); with --wait follow it and print its per-ref outcomes. The default command: `grove sync <org/repo>` runs it')
    .option('--upstream <name>', 'the upstream', 'origin')
    .option('--pull', 'only pull (remote → Grove)')
    .option('--push', 'only push (Grove → remote)')
    .option('--ref <glob>', 'only refs matching the glob (repeatable; without refs/ a branch: agent-7/* = refs/heads/agent-7/*)', collect)
    .option('--dry-run', 'decide and report every ref; change nothing on either side')
    .option('--wait', 'wait for the run to end; exit 0 succeeded, 2 partial, 1 failed')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit 1)', '600')
    .option('--json', 'print the run as JSON (with --wait, the finished run)')
    .action(async (target: string, options: { upstream: string; pull?: boolean; push?: boolean; ref?: string[]; dryRun?: boolean; wait?: boolean; timeout: string; json?: boolean }) => {
      const { org, repo } = splitRepo(target);
      if (options.pull && options.push) throw new UsageError('--pull and --push exclude each other (neither: both directions)');
      const timeout = positiveInteger(options.timeout, '--timeout');
      const client = clientFromEnv();
      const queued = await client.syncs.create(org, repo, options.upstream, {
        ...(options.pull ? { direction: 'pull' as const } : options.push ? { direction: 'push' as const } : {}),
        ...(options.ref !== undefined ? { refs: options.ref.map(refGlob) } : {}),
        ...(options.dryRun ? { dryRun: true } : {}),
      });
      if (!options.wait) {
        if (options.json) print(queued);
        else line(`${queued.status} ${queued.id} (${queued.direction}${queued.dryRun ? ', dry run' : ''}): grove sync show ${target} ${queued.id}${options.upstream === 'origin' ? '' : ` --upstream ${options.upstream}`}`);
        return;
      }
      let seen = queued.status;
      let run: SyncRun;
      try {
        run = await client.syncs.wait(org, repo, options.upstream, queued.id, {
          timeoutMs: timeout * 1000,
          intervalMs: 250,
          onProgress: (current) => {
            if (current.status !== seen && process.stderr.isTTY) process.stderr.write(`grove: ${current.id} ${current.status}\n`);
            seen = current.status;
          },
        });
      } catch (error) {
        if (!(error instanceof SyncWaitTimeoutError)) throw error;
        throw new UsageError(`${error.message}; it goes on: grove sync show ${target} ${queued.id}${options.upstream === 'origin' ? '' : ` --upstream ${options.upstream}`}`);
      }
      if (options.json) print(run);
      else printRun(run);
      if (run.status === 'failed') process.stderr.write(`grove: ${run.error?.code ?? 'sync_failed'}: ${run.error?.message ?? 'the sync run failed'}\n`);
      process.exitCode = EXIT[run.status as keyof typeof EXIT] ?? 1;
    });

  sync.command('list <org/repo>').description("an upstream's runs, newest first: one line each (or --json)")
    .option('--upstream <name>', 'the upstream', 'origin')
    .option('--limit <n>', 'page size').option('--cursor <cursor>', 'page cursor')
    .option('--json', 'print the page as JSON')
    .action(async (target: string, options: { upstream: string; limit?: string; cursor?: string; json?: boolean }) => {
      const { org, repo } = splitRepo(target);
      const page = await clientFromEnv().syncs.list(org, repo, options.upstream, {
        ...(options.limit !== undefined ? { limit: Number(options.limit) } : {}),
        ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      });
      if (options.json) return print(page);
      for (const run of page.items) {
        line(`${run.id}  ${run.status.padEnd(9)} ${run.direction.padEnd(4)} ${run.trigger.padEnd(7)} ${run.createdAt}  ${run.dryRun ? 'dry run: ' : ''}${run.status === 'failed' && run.error ? run.error.code : summary(run.counts)}`);
      }
      if (page.nextCursor !== null) line(`more: grove sync list ${target}${options.upstream === 'origin' ? '' : ` --upstream ${options.upstream}`} --cursor ${page.nextCursor}`);
    });

  sync.command('show <org/repo> <id>').description('one run: every ref with its outcome, then a summary (or --json)')
    .option('--upstream <name>', 'the upstream', 'origin')
    .option('--json', 'print the run as JSON')
    .action(async (target: string, id: string, options: { upstream: string; json?: boolean }) => {
      const { org, repo } = splitRepo(target);
      const run = await clientFromEnv().syncs.get(org, repo, options.upstream, id);
      if (options.json) print(run);
      else printRun(run);
    });
}

export function registerSyncCommands(program: Command): void {
  registerCredentialCommands(program);
  registerUpstreamCommands(program);
  registerSyncRunCommands(program);
}
