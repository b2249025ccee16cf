/**
 * The audit trail: every git transfer (fetch, push) and every API mutation, with the
 * key, client address, user agent, outcome (denials included), bytes and duration —
 * recorded when the response closes, off the request's critical path.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Insertable } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Durability } from '../db/durability.ts';
import type { AuditLogTable } from '../db/schema.ts';

const GIT_ACTIONS: Record<string, string> = {
  'POST /:org/:repo/git-upload-pack': 'git.fetch',
  'POST /:org/:repo/git-receive-pack': 'git.push',
  'GET /:org/:repo/info/refs': 'git.connect',
};

/** What to call a request in the audit log, or null when it is not audited (reads, health, metrics). Pure. */
export function auditAction(method: string, route: string, status: number): string | null {
  const git = GIT_ACTIONS[`${method} ${route}`];
  // info/refs is noise when it succeeds (the fetch or push that follows is logged); its refusals are not.
  if (git !== undefined) return git === 'git.connect' && status < 400 ? null : git;
  if (route.startsWith('/api/v1/') && method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') return `${method} ${route}`;
  return null;
}

export function outcomeOf(status: number): 'ok' | 'denied' | 'failed' {
  if (status < 400) return 'ok';
  if (status === 401 || status === 403 || status === 404) return 'denied';
  return 'failed';
}

function keyIdOf(request: FastifyRequest): string | null {
  const principal = request.principal;
  if (principal === null || principal === undefined) return null;
  if (principal.kind === 'key') return principal.id;
  if (principal.kind === 'signed') return `signed:${principal.org}:${principal.id}`;
  return 'root';
}

type AuditRow = Insertable<AuditLogTable>;

/**
 * Buffers entries and writes them in one transaction every 100 ms (or 500 entries):
 * one fsync per batch instead of one per request, so auditing does not cap throughput.
 */
export class AuditWriter {
  readonly #db: Db;
  readonly #onError: (error: unknown) => void;
  #rows: AuditRow[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  readonly #durability: Durability;

  constructor(db: Db, durability: Durability, onError: (error: unknown) => void) {
    this.#db = db;
    this.#durability = durability;
    this.#onError = onError;
  }

  add(row: AuditRow): void {
    this.#rows.push(row);
    if (this.#rows.length >= 500) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), 100);
  }

  /** Writes what is buffered (also on shutdown). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const rows = this.#rows;
    this.#rows = [];
    if (rows.length > 0) {
      this.#writing = this.#writing.then(() => this.#db.transaction().execute(async (trx) => {
        for (let i = 0; i < rows.length; i += 100) await trx.insertInto('audit_log').values(rows.slice(i, i + 100)).execute();
      }).then(() => this.#durability.sync())).catch(this.#onError);
    }
    return this.#writing;
  }
}

/** Byte counters of each connection at the end of its previous request (keep-alive reuses sockets). */
const counted = new WeakMap<object, { read: number; written: number }>();

declare module 'fastify' {
  interface FastifyRequest {
    /** The org an audit entry belongs to, when the route has no :org (API keys). */
    auditOrg?: string | undefined;
  }
}

export function registerAudit(app: FastifyInstance, writer: AuditWriter): void {
  app.addHook('onRequest', async (request, reply) => {
    const started = Date.now();
    const socket = request.raw.socket;
    // The socket's counters already include this request's headers (and maybe body), so
    // count from where the previous request on this connection ended.
    const before = counted.get(socket) ?? { read: 0, written: 0 };
    reply.raw.once('close', () => {
      const now = { read: socket.bytesRead, written: socket.bytesWritten };
      counted.set(socket, now);
      const readBefore = before.read;
      const writtenBefore = before.written;
      const route = request.routeOptions.url ?? '';
      const status = reply.raw.statusCode;
      const action = auditAction(request.method, route, status);
      if (action === null) return;
      const params = request.params as { org?: string; repo?: string } | undefined;
      const repo = params?.repo?.replace(/\.git$/, '') ?? null;
      writer.add({
        org: params?.org ?? request.auditOrg ?? null,
        repo,
        action,
        key_id: keyIdOf(request),
        ip: request.ip,
        user_agent: (request.headers['user-agent'] ?? '').slice(0, 300) || null,
        outcome: outcomeOf(status),
        status,
        bytes_in: Math.max(0, now.read - readBefore),
        bytes_out: Math.max(0, now.written - writtenBefore),
        duration_ms: Date.now() - started,
        created_at: new Date(started).toISOString(),
      });
    });
  });
}

export async function pruneAudit(db: Db, before: string): Promise<void> {
  await db.deleteFrom('audit_log').where('created_at', '<', before).execute();
}
