/** `grove webhook …`, `grove events [--follow]`, `grove audit …`. */
import type { Command } from 'commander';
import { clientFromEnv, UsageError } from './client-commands.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function print(value: unknown): void {
  if (value !== undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function registerEventCommands(program: Command): void {
  const webhook = program.command('webhook').description("manage an org's webhooks");
  webhook.command('create <org>').requiredOption('--url <url>', 'receiver URL')
    .option('--event <type>', 'event type, or * (repeatable; default *)', collect)
    .option('--repo <name>', 'only events of this repo (repeatable)', collect)
    .option('--secret <secret>', 'HMAC secret (generated when omitted; printed once)')
    .action(async (org: string, options: { url: string; event?: string[]; repo?: string[]; secret?: string }) => {
      print(await clientFromEnv().webhooks.create(org, {
        url: options.url,
        events: options.event ?? ['*'],
        ...(options.repo ? { repos: options.repo } : {}),
        ...(options.secret ? { secret: options.secret } : {}),
      }));
    });
  webhook.command('list <org>').action(async (org: string) => print(await clientFromEnv().webhooks.list(org)));
  webhook.command('get <org> <id>').action(async (org: string, id: string) => print(await clientFromEnv().webhooks.get(org, id)));
  webhook.command('update <org> <id>').option('--url <url>', 'receiver URL').option('--event <type>', 'event type (repeatable)', collect)
    .option('--active <bool>', 'true or false')
    .action(async (org: string, id: string, options: { url?: string; event?: string[]; active?: string }) => {
      if (options.active !== undefined && options.active !== 'true' && options.active !== 'false') throw new UsageError('--active must be true or false');
      print(await clientFromEnv().webhooks.update(org, id, {
        ...(options.url ? { url: options.url } : {}),
        ...(options.event ? { events: options.event } : {}),
        ...(options.active !== undefined ? { active: options.active === 'true' } : {}),
      }));
    });
  webhook.command('delete <org> <id>').action(async (org: string, id: string) => {
    await clientFromEnv().webhooks.delete(org, id);
  });
  webhook.command('deliveries <org> <id>').option('--status <status>', 'pending, delivered or failed').option('--limit <n>', 'page size')
    .action(async (org: string, id: string, options: { status?: 'pending' | 'delivered' | 'failed'; limit?: string }) => {
      print(await clientFromEnv().webhooks.deliveries(org, id, { ...(options.status ? { status: options.status } : {}), ...(options.limit ? { limit: Number(options.limit) } : {}) }));
    });
  webhook.command('redeliver <org> <id> <deliveryId>').action(async (org: string, id: string, deliveryId: string) => print(await clientFromEnv().webhooks.redeliver(org, id, deliveryId)));

  program.command('events').description('print events as JSON lines; with --follow, keep streaming')
    .option('--org <org>', 'the org').option('--repo <repo>', 'only this repo').option('--type <type>', 'only this type (repeatable)', collect)
    .option('--after <id>', 'start after this event id (default: from now)')
    .option('--follow', 'keep streaming (else stop after the events so far)')
    .action(async (options: { org?: string; repo?: string; type?: string[]; after?: string; follow?: boolean }) => {
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      // Without --follow: replay what exists, then stop once the stream goes quiet.
      let quiet: NodeJS.Timeout | undefined;
      const armQuiet = () => {
        if (options.follow) return;
        clearTimeout(quiet);
        quiet = setTimeout(() => controller.abort(), 500);
      };
      armQuiet();
      // --follow starts from now unless --after says otherwise; a one-off listing starts from the beginning.
      const after = options.after !== undefined ? Number(options.after) : options.follow ? undefined : 0;
      try {
        for await (const event of clientFromEnv().events.stream({
          ...(options.org ? { org: options.org } : {}),
          ...(options.repo ? { repo: options.repo } : {}),
          ...(options.type ? { types: options.type } : {}),
          ...(after !== undefined ? { after } : {}),
          signal: controller.signal,
        })) {
          process.stdout.write(`${JSON.stringify(event)}\n`);
          armQuiet();
        }
      } catch (error) {
        if (!controller.signal.aborted) throw error;
      } finally {
        clearTimeout(quiet);
      }
    });

  program.command('audit <org>').description("an org's audit log, newest first")
    .option('--key <id>', 'only this key').option('--repo <repo>', 'only this repo').option('--action <action>', 'only this action (git.fetch, git.push, …)')
    .option('--since <iso>', 'from this time').option('--until <iso>', 'before this time').option('--limit <n>', 'page size').option('--cursor <cursor>', 'page cursor')
    .action(async (org: string, options: { key?: string; repo?: string; action?: string; since?: string; until?: string; limit?: string; cursor?: string }) => {
      const { limit, ...rest } = options;
      print(await clientFromEnv().events.audit(org, { ...rest, ...(limit ? { limit: Number(limit) } : {}) }));
    });
}
