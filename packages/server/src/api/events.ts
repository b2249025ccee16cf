/**
 * The live event stream: `GET /api/v1/events?org=&repo=&types=` as Server-Sent Events.
 * Each event is `id: <n>`, `event: <type>`, `data: <json>`; a client that reconnects
 * with `Last-Event-ID` (or `?after=`) gets everything it missed from the durable log,
 * then the live feed, with no gap and no duplicate.
 */
import type { FastifyInstance } from 'fastify';
import { GroveError } from '../errors.ts';
import { matches, type EventFilter } from '../events/event-log.ts';
import { EVENT_TYPES, type StoredEvent } from '../events/types.ts';
import type { AppContext } from '../http/context.ts';
import { principalOf, requireAccess } from './principal.ts';

const HEARTBEAT_MS = 15_000;
const REPLAY_BATCH = 500;

export async function eventRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Querystring: { org?: string; repo?: string; types?: string; after?: number } }>('/events', {
    schema: {
      tags: ['events'],
      summary: 'Server-Sent Events of an org (or repo); resume with Last-Event-ID',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          org: { type: 'string' },
          repo: { type: 'string', description: 'Needs org' },
          types: { type: 'string', description: `Comma-separated: ${EVENT_TYPES.join(', ')}` },
          after: { type: 'integer', minimum: 0, description: 'Replay events after this id (as Last-Event-ID)' },
        },
      },
      response: {
        200: {
          description: 'text/event-stream: for each event `id: <id>`, `event: <type>`, `data: <Event JSON>`; comments as keepalives every 15 s',
          content: { 'text/event-stream': { schema: { $ref: 'Event#' } } },
        },
      },
    },
  }, async (request, reply) => {
    const principal = principalOf(request);
    const { org, repo, types } = request.query;
    if (repo !== undefined && org === undefined) throw new GroveError('invalid_request', 'repo needs org');
    if (org === undefined && principal.kind !== 'root') throw new GroveError('invalid_request', 'org is required');
    if (repo !== undefined) requireAccess(request, 'read', { kind: 'repo', org: org!, repo });
    else if (org !== undefined) requireAccess(request, 'read', { kind: 'org', org });
    const typeList = types === undefined || types === '' ? undefined : types.split(',');
    for (const type of typeList ?? []) {
      if (!(EVENT_TYPES as readonly string[]).includes(type)) throw new GroveError('invalid_request', `unknown event type ${JSON.stringify(type)}`);
    }
    let visibleRepos: string[] | undefined;
    if (principal.kind !== 'root' && org !== undefined) {
      const grants = principal.resources.filter((g) => g.org === org);
      if (!grants.some((g) => g.repo === undefined)) visibleRepos = grants.map((g) => g.repo!);
    }
    const filter: EventFilter = { org, repo, types: typeList, visibleRepos };
    // Where to start: after Last-Event-ID (or ?after=), else from now.
    const header = request.headers['last-event-id'];
    const resumeFrom = Array.isArray(header) ? header[0] : header;
    let last: number;
    if (resumeFrom !== undefined) {
      last = Number(resumeFrom);
      if (!Number.isSafeInteger(last) || last < 0) throw new GroveError('invalid_request', 'Last-Event-ID must be an event id');
    } else {
      last = request.query.after ?? (await latestSeq(ctx));
    }

    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    raw.write(': grove events\n\n');
    const send = (event: StoredEvent) => {
      if (event.id <= last) return;
      last = event.id;
      raw.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    };
    // Subscribe first and buffer, then replay from the log: nothing falls in between.
    const buffered: StoredEvent[] = [];
    let replaying = true;
    const unsubscribe = ctx.events.subscribe((event) => {
      if (!matches(event, filter)) return;
      if (replaying) buffered.push(event);
      else send(event);
    });
    const heartbeat = setInterval(() => raw.write(': keepalive\n\n'), HEARTBEAT_MS);
    raw.once('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
    });
    try {
      // Page by rows scanned, not by events sent: a filter may skip whole batches.
      for (let cursor = last; ;) {
        const batch = await ctx.events.since(cursor, filter, REPLAY_BATCH);
        for (const event of batch.events) send(event);
        if (batch.done || raw.destroyed) break;
        cursor = batch.scannedTo;
      }
    } finally {
      replaying = false;
      for (const event of buffered) send(event);
    }
  });
}

async function latestSeq(ctx: AppContext): Promise<number> {
  const row = await ctx.db.selectFrom('events').select((eb) => eb.fn.max('commit_seq').as('top')).executeTakeFirst();
  return Number(row?.top ?? 0);
}

