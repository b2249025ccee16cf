/**
 * A load client that speaks Git smart HTTP protocol v2 directly: v2 `ls-refs` and `fetch`
 * POSTs and the v2 `info/refs` advertisement GET over keep-alive HTTP/1.1, `concurrency`
 * connections each carrying one request at a time. Every response body is read to the end
 * and checked (pkt-line framing, sections, the pack signature in side-band 1, no side-band
 * 3 error), so the server is measured and not client-side indexing.
 *
 * Two transports:
 * - `raw` (default): net sockets reading into one reused buffer per connection (`onread`),
 *   with a small HTTP/1.1 response parser (Content-Length, chunked, close-delimited). It
 *   costs the client about a sixth of the CPU per byte of `http`, which matters when client
 *   and servers share two cores.
 * - `http`: node:http with a keep-alive Agent (maxSockets = concurrency).
 */
import http from 'node:http';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { percentile, treeCpuMs } from './util.ts';

export type Transport = 'raw' | 'http';

export type LoadOp = 'ls-refs' | 'info-refs' | 'shallow-fetch' | 'full-fetch';

export const LOAD_OPS: readonly LoadOp[] = ['ls-refs', 'info-refs', 'shallow-fetch', 'full-fetch'];

export interface LoadTarget {
  /** e.g. http://127.0.0.1:8080/bench/app.git */
  readonly repoUrl: string;
  /** Extra headers for every request (Grove's Authorization). */
  readonly headers: Readonly<Record<string, string>>;
}

export interface LoadOptions {
  readonly op: LoadOp;
  /** The commit to fetch (fetch ops). */
  readonly tip: string;
  /** Requests to complete (upper bound). */
  readonly requests: number;
  readonly concurrency: number;
  /** No new request starts after this long (upper bound on the run). */
  readonly timeLimitMs: number;
  /** Unmeasured requests first (connections opened, caches warm); default = concurrency. */
  readonly warmup?: number;
  /** A single request is abandoned after this long. */
  readonly requestTimeoutMs?: number;
  readonly transport?: Transport;
  /** Keep the (de-chunked) body of the first warm-up response in `LoadResult.sampleBody`. */
  readonly recordBody?: boolean;
  /** Server processes whose CPU time (with their children's) is measured over the run. */
  readonly cpuRoots?: readonly number[];
}

export interface LoadResult {
  readonly op: LoadOp;
  readonly completed: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly elapsedMs: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  /** Mean response body size. */
  readonly meanBytes: number;
  /** From the first good response: refs listed (ls-refs) or pack objects (fetch). */
  readonly detail: ResponseInfo | null;
  /** True when the time limit, not the request count, ended the run. */
  readonly hitTimeLimit: boolean;
  readonly transport: Transport;
  /**
   * CPU of the server's process tree per good response, from /proc (own time plus reaped
   * children's). Exact for Grove (node waits for its git children); an undercount for
   * fcgiwrap, whose workers do not account their CGI children. NaN when not asked for.
   */
  readonly serverCpuMsPerRequest: number;
  /** CPU of this (client) process per good response. */
  readonly clientCpuMsPerRequest: number;
  /** CPU the whole machine used per good response, the client's included (from /proc/stat). */
  readonly machineCpuMsPerRequest: number;
  /** How busy the machine was during the run, in percent of all cores. */
  readonly machineBusyPercent: number;
  readonly sampleBody: Buffer | null;
  /** Raw material for merging rounds (mergeLoads). */
  readonly latencies: readonly number[];
  readonly totals: { readonly bytes: number; readonly serverCpuMs: number; readonly clientCpuMs: number; readonly machineBusyMs: number };
  /** How many interleaved rounds this result sums up. */
  readonly rounds: number;
}

/** Sums up rounds of the same workload on the same server into one result. */
export function mergeLoads(parts: readonly LoadResult[]): LoadResult {
  const first = parts[0];
  if (!first) throw new Error('nothing to merge');
  if (parts.length === 1) return first;
  const latencies = parts.flatMap((p) => p.latencies);
  const n = latencies.length;
  const sum = (f: (p: LoadResult) => number): number => parts.reduce((a, p) => a + f(p), 0);
  const elapsedMs = sum((p) => p.elapsedMs);
  const bytes = sum((p) => p.totals.bytes);
  const serverCpuMs = sum((p) => p.totals.serverCpuMs);
  const clientCpuMs = sum((p) => p.totals.clientCpuMs);
  const machineBusyMs = sum((p) => p.totals.machineBusyMs);
  return {
    op: first.op,
    completed: n,
    errors: sum((p) => p.errors),
    firstError: parts.find((p) => p.firstError)?.firstError ?? null,
    elapsedMs,
    rps: (n / elapsedMs) * 1000,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    maxMs: n ? latencies.reduce((a, b) => Math.max(a, b), 0) : Number.NaN,
    meanBytes: n ? bytes / n : 0,
    detail: parts.find((p) => p.detail)?.detail ?? null,
    hitTimeLimit: parts.some((p) => p.hitTimeLimit),
    transport: first.transport,
    serverCpuMsPerRequest: n ? serverCpuMs / n : Number.NaN,
    clientCpuMsPerRequest: n ? clientCpuMs / n : Number.NaN,
    machineCpuMsPerRequest: n ? machineBusyMs / n : Number.NaN,
    machineBusyPercent: (machineBusyMs / (elapsedMs * availableParallelism())) * 100,
    sampleBody: parts.find((p) => p.sampleBody)?.sampleBody ?? null,
    latencies,
    totals: { bytes, serverCpuMs, clientCpuMs, machineBusyMs },
    rounds: sum((p) => p.rounds),
  };
}

// ---------------------------------------------------------------------------
// pkt-line

function pkt(line: string): Buffer {
  const payload = Buffer.from(line, 'utf8');
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0'), 'latin1'), payload]);
}
const FLUSH = Buffer.from('0000', 'latin1');
const DELIM = Buffer.from('0001', 'latin1');
const AGENT = 'agent=git/2.39.5';

/** The v2 request body for an op, framed as git 2.39 frames it (command, capabilities, delim, args, flush). */
export function requestBody(op: LoadOp, tip: string): Buffer | null {
  switch (op) {
    case 'info-refs':
      return null;
    case 'ls-refs':
      return Buffer.concat([
        pkt('command=ls-refs\n'),
        pkt(AGENT),
        pkt('object-format=sha1'),
        DELIM,
        pkt('peel\n'),
        pkt('symrefs\n'),
        pkt('unborn\n'),
        pkt('ref-prefix HEAD\n'),
        pkt('ref-prefix refs/heads/\n'),
        pkt('ref-prefix refs/tags/\n'),
        FLUSH,
      ]);
    case 'shallow-fetch':
      return Buffer.concat([
        pkt('command=fetch'),
        pkt(AGENT),
        pkt('object-format=sha1'),
        DELIM,
        pkt('ofs-delta'),
        pkt('no-progress'),
        pkt('deepen 1'),
        pkt(`want ${tip}\n`),
        pkt('done\n'),
        FLUSH,
      ]);
    case 'full-fetch':
      return Buffer.concat([
        pkt('command=fetch'),
        pkt(AGENT),
        pkt('object-format=sha1'),
        DELIM,
        pkt('ofs-delta'),
        pkt('no-progress'),
        pkt(`want ${tip}\n`),
        pkt('done\n'),
        FLUSH,
      ]);
  }
}

export interface ResponseInfo {
  /** Text packets outside the packfile section. */
  readonly lines: number;
  readonly refs: number;
  readonly sections: readonly string[];
  readonly packObjects: number | null;
  readonly packBytes: number;
  readonly shallowLines: number;
}

/** Hex digit values for pkt-line lengths (lowercase and uppercase), -1 otherwise. */
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[97 + i] = 10 + i;
  HEX[65 + i] = 10 + i;
}
const PACKFILE = Buffer.from('packfile');
const REFS_HEADS = Buffer.from(' refs/heads/');
const VERSION_2 = Buffer.from('version 2');

/**
 * A streaming pkt-line walker: validates framing chunk by chunk without buffering the
 * pack and without decoding every line (lines are counted and checked on their bytes;
 * they are kept as strings only when asked, for the first response of a run).
 */
export class PktWalker {
  #hdr = Buffer.alloc(4);
  #hdrLen = 0;
  #remaining = 0;
  #inPack = false;
  #cur: Buffer[] = [];
  #band = -1;
  #packHead = Buffer.alloc(12);
  #packHeadLen = 0;
  #bandErr = '';
  #endedAt = -1;
  #bytes = 0;
  error: string | null = null;
  /** Text lines outside the pack (only when keepLines). */
  lines: string[] = [];
  sections: string[] = [];
  packBytes = 0;
  lastWasFlush = false;
  sawPackfile = false;
  lineCount = 0;
  refLines = 0;
  shallowLines = 0;
  sawBranch = false;
  sawVersion2 = false;
  firstLine = '';
  readonly #keepLines: boolean;

  constructor(keepLines = true) {
    this.#keepLines = keepLines;
  }

  feed(chunk: Buffer): void {
    if (this.error) return;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#endedAt >= 0) {
        this.error = 'data after the final flush of a v2 fetch response';
        return;
      }
      if (this.#remaining === 0) {
        let len: number;
        if (this.#hdrLen === 0 && i + 4 <= n) {
          len = (HEX[chunk[i]!]! << 12) | (HEX[chunk[i + 1]!]! << 8) | (HEX[chunk[i + 2]!]! << 4) | HEX[chunk[i + 3]!]!;
          if (HEX[chunk[i]!]! < 0 || HEX[chunk[i + 1]!]! < 0 || HEX[chunk[i + 2]!]! < 0 || HEX[chunk[i + 3]!]! < 0) len = -1;
          if (len < 0) {
            this.error = `bad pkt-line length ${JSON.stringify(chunk.toString('latin1', i, i + 4))} at byte ${this.#bytes}`;
            return;
          }
          i += 4;
          this.#bytes += 4;
        } else {
          const take = Math.min(4 - this.#hdrLen, n - i);
          chunk.copy(this.#hdr, this.#hdrLen, i, i + take);
          this.#hdrLen += take;
          i += take;
          this.#bytes += take;
          if (this.#hdrLen < 4) return;
          this.#hdrLen = 0;
          const h = this.#hdr;
          if (HEX[h[0]!]! < 0 || HEX[h[1]!]! < 0 || HEX[h[2]!]! < 0 || HEX[h[3]!]! < 0) {
            this.error = `bad pkt-line length ${JSON.stringify(h.toString('latin1'))} at byte ${this.#bytes - 4}`;
            return;
          }
          len = (HEX[h[0]!]! << 12) | (HEX[h[1]!]! << 8) | (HEX[h[2]!]! << 4) | HEX[h[3]!]!;
        }
        if (len < 4) {
          this.#special(len);
          continue;
        }
        if (len === 4) {
          this.error = 'empty data packet (0004)';
          return;
        }
        this.lastWasFlush = false;
        this.#remaining = len - 4;
        this.#band = -1;
        continue;
      }
      const take = Math.min(this.#remaining, n - i);
      const part = chunk.subarray(i, i + take);
      this.#remaining -= take;
      i += take;
      this.#bytes += take;
      if (this.#inPack) {
        this.#packPayload(part);
        if (this.#remaining === 0 && this.#band === 3) this.error = `side-band error: ${this.#bandErr.trim()}`;
      } else if (this.#remaining === 0 && this.#cur.length === 0) {
        this.#line(part); // the whole packet is in this chunk: no copy
      } else {
        this.#cur.push(Buffer.from(part)); // copy: the raw transport reuses its read buffer
        if (this.#remaining === 0) {
          const whole = Buffer.concat(this.#cur);
          this.#cur = [];
          this.#line(whole);
        }
      }
    }
  }

  #special(len: number): void {
    if (len === 0) {
      this.lastWasFlush = true;
      if (this.#inPack) this.#endedAt = this.#bytes;
    } else if (len === 1) {
      this.lastWasFlush = false;
      if (this.#inPack) this.error = 'delim inside the packfile section';
    } else {
      this.error = `unexpected special packet ${len.toString(16).padStart(4, '0')} on the wire`;
    }
  }

  #packPayload(part: Buffer): void {
    let data = part;
    if (this.#band === -1) {
      this.#band = data[0]!;
      data = data.subarray(1);
    }
    if (this.#band === 1) {
      this.packBytes += data.length;
      if (this.#packHeadLen < 12) {
        const take = Math.min(12 - this.#packHeadLen, data.length);
        data.copy(this.#packHead, this.#packHeadLen, 0, take);
        this.#packHeadLen += take;
      }
    } else if (this.#band === 3) {
      this.#bandErr += data.toString('utf8');
    } else if (this.#band !== 2) {
      this.error = `bad side-band ${this.#band}`;
    }
  }

  /** One text packet outside the pack, checked on its bytes. */
  #line(payload: Buffer): void {
    const end = payload.length > 0 && payload[payload.length - 1] === 10 ? payload.length - 1 : payload.length;
    const body = payload.subarray(0, end);
    this.lineCount++;
    if (this.lineCount === 1) this.firstLine = body.toString('utf8', 0, Math.min(body.length, 200));
    if (body.length >= 4 && body[0] === 0x45 && body[1] === 0x52 && body[2] === 0x52 && body[3] === 0x20) {
      this.error = body.toString('utf8'); // ERR <message>
      return;
    }
    if (body.length < 20) {
      if (body.equals(PACKFILE)) {
        this.#inPack = true;
        this.sawPackfile = true;
        this.sections.push('packfile');
        return;
      }
      const text = body.toString('latin1');
      if (text === 'acknowledgments' || text === 'shallow-info' || text === 'wanted-refs' || text === 'packfile-uris') this.sections.push(text);
      if (body.equals(VERSION_2)) this.sawVersion2 = true;
    } else if (body[40] === 0x20 || (body.length > 7 && body.toString('latin1', 0, 7) === 'unborn ')) {
      // "<oid> <refname> …" (ls-refs) or "shallow <oid>" (shallow-info)
      if (body.toString('latin1', 0, 8) === 'shallow ') this.shallowLines++;
      else {
        this.refLines++;
        if (!this.sawBranch && body.indexOf(REFS_HEADS) >= 0) this.sawBranch = true;
      }
    } else if (body.toString('latin1', 0, 8) === 'shallow ') this.shallowLines++;
    if (this.#keepLines) this.lines.push(body.toString('utf8'));
  }

  /** Call at the end of the body; returns an error string or null. */
  finish(op: LoadOp): string | null {
    if (this.error) return this.error;
    if (this.#remaining !== 0 || this.#hdrLen !== 0) return 'body ends inside a pkt-line';
    if (!this.lastWasFlush) return 'body does not end with a flush packet';
    if (op === 'shallow-fetch' || op === 'full-fetch') {
      if (!this.sawPackfile) return `no packfile section (first line: ${JSON.stringify(this.firstLine)})`;
      if (this.#packHeadLen < 12 || this.#packHead.subarray(0, 4).toString('latin1') !== 'PACK') return 'side-band 1 does not start with a PACK header';
      if (op === 'shallow-fetch' && !this.sections.includes('shallow-info')) return 'shallow fetch answered without a shallow-info section';
      if (op === 'shallow-fetch' && this.shallowLines === 0) return 'shallow fetch answered without a shallow line';
    }
    if (op === 'ls-refs' && !this.sawBranch) return 'ls-refs listed no branch';
    if (op === 'info-refs' && !this.sawVersion2) return 'advertisement is not protocol v2';
    return null;
  }

  info(): ResponseInfo {
    return {
      lines: this.lineCount,
      refs: this.refLines,
      sections: [...this.sections],
      packObjects: this.#packHeadLen >= 12 ? this.#packHead.readUInt32BE(8) : null,
      packBytes: this.packBytes,
      shallowLines: this.shallowLines,
    };
  }
}

// ---------------------------------------------------------------------------
// One request

interface OneResult {
  readonly ms: number;
  readonly bytes: number;
  readonly error: string | null;
  readonly info: ResponseInfo | null;
  readonly body: Buffer | null;
}

interface Prepared {
  readonly url: URL;
  readonly method: 'GET' | 'POST';
  readonly headers: Record<string, string>;
  readonly body: Buffer | null;
  readonly expectedType: string;
  /** The whole request as bytes, for the raw transport. */
  readonly wire: Buffer;
}

function prepare(target: LoadTarget, op: LoadOp, tip: string): Prepared {
  const url = new URL(target.repoUrl + (op === 'info-refs' ? '/info/refs?service=git-upload-pack' : '/git-upload-pack'));
  const body = requestBody(op, tip);
  const headers: Record<string, string> = { 'User-Agent': 'git/2.39.5', 'Git-Protocol': 'version=2', ...target.headers };
  if (body) {
    headers['Content-Type'] = 'application/x-git-upload-pack-request';
    headers['Accept'] = 'application/x-git-upload-pack-result';
    headers['Content-Length'] = String(body.length);
  }
  const method = body ? 'POST' : 'GET';
  const head = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  return {
    url,
    method,
    headers,
    body,
    expectedType: op === 'info-refs' ? 'application/x-git-upload-pack-advertisement' : 'application/x-git-upload-pack-result',
    wire: Buffer.concat([Buffer.from(head, 'latin1'), body ?? Buffer.alloc(0)]),
  };
}

/** Collects the de-chunked body when asked to. */
function bodySink(record: boolean): { push(b: Buffer): void; take(): Buffer | null } {
  const parts: Buffer[] = [];
  return {
    push(b) {
      if (record) parts.push(Buffer.from(b));
    },
    take: () => (record ? Buffer.concat(parts) : null),
  };
}

function httpRequestOnce(agent: http.Agent, p: Prepared, op: LoadOp, timeoutMs: number, keepLines: boolean, record: boolean): Promise<OneResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    const sink = bodySink(record);
    const done = (error: string | null, bytes: number, info: ResponseInfo | null): void => {
      if (settled) return;
      settled = true;
      resolve({ ms: performance.now() - started, bytes, error, info, body: error ? null : sink.take() });
    };
    const req = http.request({ agent, host: p.url.hostname, port: p.url.port, path: p.url.pathname + p.url.search, method: p.method, headers: p.headers }, (res) => {
      const walker = new PktWalker(keepLines);
      let bytes = 0;
      const statusError = res.statusCode !== 200 ? `HTTP ${res.statusCode}` : (res.headers['content-type'] ?? '') !== p.expectedType ? `content-type ${res.headers['content-type']}` : null;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (!statusError) {
          walker.feed(chunk);
          sink.push(chunk);
        }
      });
      res.on('end', () => {
        if (statusError) return done(statusError, bytes, null);
        const error = walker.finish(op);
        done(error, bytes, error ? null : walker.info());
      });
      res.on('error', (error) => done(`response: ${error.message}`, bytes, null));
      res.on('aborted', () => done('response aborted', bytes, null));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no progress for ${timeoutMs} ms`)));
    req.on('error', (error) => done(`request: ${error.message}`, 0, null));
    req.end(p.body ?? undefined);
  });
}

interface RawState {
  op: LoadOp;
  expectedType: string;
  walker: PktWalker;
  sink: ReturnType<typeof bodySink>;
  started: number;
  bytes: number;
  state: 'head' | 'body-cl' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailer' | 'body-eof';
  head: string;
  line: string;
  remaining: number;
  keepAlive: boolean;
  statusError: string | null;
  timer: NodeJS.Timeout;
  resolve: (r: OneResult) => void;
}

/**
 * One keep-alive HTTP/1.1 connection carrying one request at a time. Reads go into one
 * reused buffer (`onread`), so a large response allocates nothing per chunk.
 */
class RawConnection {
  readonly #host: string;
  readonly #port: number;
  readonly #buffer = Buffer.allocUnsafe(256 * 1024);
  #socket: net.Socket | null = null;
  #current: RawState | null = null;

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  request(p: Prepared, op: LoadOp, timeoutMs: number, keepLines: boolean, record: boolean): Promise<OneResult> {
    return new Promise((resolve) => {
      const socket = this.#socket ?? this.#connect();
      const timer = setTimeout(() => this.#fail(`no answer within ${timeoutMs} ms`), timeoutMs);
      this.#current = {
        op,
        expectedType: p.expectedType,
        walker: new PktWalker(keepLines),
        sink: bodySink(record),
        started: performance.now(),
        bytes: 0,
        state: 'head',
        head: '',
        line: '',
        remaining: 0,
        keepAlive: true,
        statusError: null,
        timer,
        resolve,
      };
      socket.write(p.wire);
    });
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }

  #connect(): net.Socket {
    const socket = net.connect({
      host: this.#host,
      port: this.#port,
      noDelay: true,
      onread: {
        buffer: this.#buffer,
        callback: (n: number, buf: Uint8Array) => {
          this.#onData(buf as Buffer, n);
          return true;
        },
      },
    });
    socket.on('error', (error) => {
      if (this.#socket === socket) this.#socket = null;
      this.#fail(`connection: ${error.message}`);
    });
    socket.on('close', () => {
      if (this.#socket === socket) this.#socket = null;
      const c = this.#current;
      if (c && c.state === 'body-eof') this.#finish();
      else if (c) this.#fail('connection closed before the response ended');
    });
    this.#socket = socket;
    return socket;
  }

  #fail(message: string): void {
    const c = this.#current;
    this.#socket?.destroy();
    this.#socket = null;
    if (!c) return;
    this.#current = null;
    clearTimeout(c.timer);
    c.resolve({ ms: performance.now() - c.started, bytes: c.bytes, error: message, info: null, body: null });
  }

  #finish(): void {
    const c = this.#current;
    if (!c) return;
    this.#current = null;
    clearTimeout(c.timer);
    if (!c.keepAlive) {
      this.#socket?.destroy();
      this.#socket = null;
    }
    const error = c.statusError ?? c.walker.finish(c.op);
    c.resolve({ ms: performance.now() - c.started, bytes: c.bytes, error, info: error ? null : c.walker.info(), body: error ? null : c.sink.take() });
  }

  #body(c: RawState, part: Buffer): void {
    c.bytes += part.length;
    if (c.statusError) return;
    c.walker.feed(part);
    c.sink.push(part);
  }

  #onData(buf: Buffer, n: number): void {
    let i = 0;
    while (i < n) {
      const c = this.#current;
      if (!c) {
        this.#fail('data outside a response');
        return;
      }
      switch (c.state) {
        case 'head': {
          const text = c.head + buf.toString('latin1', i, n);
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) {
            if (text.length > 65536) return this.#fail('response head over 64 KiB');
            c.head = text;
            i = n;
            break;
          }
          i += end + 4 - c.head.length;
          const lines = text.slice(0, end).split('\r\n');
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
          if (!status) return this.#fail(`bad status line ${JSON.stringify(lines[0])}`);
          const headers = new Map<string, string>();
          for (const line of lines.slice(1)) {
            const colon = line.indexOf(':');
            if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
          }
          const code = Number(status[1]);
          c.keepAlive = !/close/i.test(headers.get('connection') ?? '') && lines[0]!.startsWith('HTTP/1.1');
          const type = headers.get('content-type') ?? '';
          c.statusError = code !== 200 ? `HTTP ${code}` : type !== c.expectedType ? `content-type ${type}` : null;
          if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) c.state = 'chunk-size';
          else if (headers.has('content-length')) {
            c.remaining = Number(headers.get('content-length'));
            c.state = 'body-cl';
            if (c.remaining === 0) return this.#finish();
          } else {
            c.state = 'body-eof';
            c.keepAlive = false;
          }
          c.head = '';
          break;
        }
        case 'body-cl':
        case 'chunk-data': {
          const take = Math.min(c.remaining, n - i);
          this.#body(c, buf.subarray(i, i + take));
          c.remaining -= take;
          i += take;
          if (c.remaining === 0) {
            if (c.state === 'body-cl') return this.#finish();
            c.state = 'chunk-crlf';
            c.remaining = 2;
          }
          break;
        }
        case 'chunk-crlf': {
          const take = Math.min(c.remaining, n - i);
          i += take;
          c.remaining -= take;
          if (c.remaining === 0) c.state = 'chunk-size';
          break;
        }
        case 'chunk-size':
        case 'trailer': {
          const nl = buf.indexOf(10, i);
          const stop = nl < 0 || nl >= n ? n : nl;
          c.line += buf.toString('latin1', i, stop);
          if (c.line.length > 4096) return this.#fail('chunk-size line too long');
          if (stop === n) {
            i = n;
            break;
          }
          i = stop + 1;
          const line = c.line.replace(/\r$/, '');
          c.line = '';
          if (c.state === 'trailer') {
            if (line === '') return this.#finish();
            break;
          }
          const size = parseInt(line.split(';')[0]!.trim(), 16);
          if (!Number.isFinite(size) || size < 0) return this.#fail(`bad chunk size ${JSON.stringify(line)}`);
          if (size === 0) c.state = 'trailer';
          else {
            c.state = 'chunk-data';
            c.remaining = size;
          }
          break;
        }
        case 'body-eof': {
          this.#body(c, buf.subarray(i, n));
          i = n;
          break;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Machine-wide CPU (to see how much of it the server and the client did not use)

function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n')[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: busy = all - idle - iowait
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return ((total - (f[3] ?? 0) - (f[4] ?? 0)) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

// ---------------------------------------------------------------------------
// A load run

/** Runs `requests` requests (bounded by `timeLimitMs`) at `concurrency`, all bodies read. */
export async function runLoad(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  const transport = options.transport ?? 'raw';
  const prepared = prepare(target, options.op, options.tip);
  const timeoutMs = options.requestTimeoutMs ?? 120_000;
  const keepLines = false;
  const agent = transport === 'http' ? new http.Agent({ keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency }) : null;
  const connections = transport === 'raw' ? Array.from({ length: options.concurrency }, () => new RawConnection(prepared.url.hostname, Number(prepared.url.port))) : [];
  const one = (slot: number, wantInfo: boolean, record: boolean): Promise<OneResult> =>
    agent ? httpRequestOnce(agent, prepared, options.op, timeoutMs, keepLines || wantInfo, record) : connections[slot]!.request(prepared, options.op, timeoutMs, keepLines || wantInfo, record);
  try {
    // Warm-up: connections opened, server caches warm; not measured.
    const warmup = Math.min(options.warmup ?? options.concurrency, options.concurrency * 4);
    const warm: OneResult[] = [];
    for (let round = 0; round * options.concurrency < warmup; round++) {
      const n = Math.min(options.concurrency, warmup - round * options.concurrency);
      warm.push(...(await Promise.all(Array.from({ length: n }, (_, slot) => one(slot, round === 0 && slot === 0, round === 0 && slot === 0 && options.recordBody === true)))));
    }
    const detail = warm[0]?.info ?? null;
    const sampleBody = warm[0]?.body ?? null;

    const latencies: number[] = [];
    let errors = warm.filter((r) => r.error).length;
    let firstError: string | null = warm.find((r) => r.error)?.error ?? null;
    let bytes = 0;
    let issued = 0;
    let hitTimeLimit = false;
    const cpuServer0 = options.cpuRoots ? treeCpuMs(options.cpuRoots) : Number.NaN;
    const cpuClient0 = process.cpuUsage();
    const busy0 = machineBusyMs();
    const started = performance.now();
    const deadline = started + options.timeLimitMs;
    const worker = async (slot: number): Promise<void> => {
      while (issued < options.requests) {
        if (performance.now() >= deadline) {
          hitTimeLimit = true;
          return;
        }
        issued++;
        const r = await one(slot, false, false);
        if (r.error) {
          errors++;
          firstError ??= r.error;
        } else {
          latencies.push(r.ms);
          bytes += r.bytes;
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, (_, slot) => worker(slot)));
    const elapsedMs = performance.now() - started;
    const serverCpu = options.cpuRoots ? treeCpuMs(options.cpuRoots) - cpuServer0 : Number.NaN;
    const clientUsage = process.cpuUsage(cpuClient0);
    const clientCpu = (clientUsage.user + clientUsage.system) / 1000;
    const busy = machineBusyMs() - busy0;
    const n = latencies.length;
    return {
      op: options.op,
      completed: n,
      errors,
      firstError,
      elapsedMs,
      rps: (n / elapsedMs) * 1000,
      p50Ms: percentile(latencies, 50),
      p95Ms: percentile(latencies, 95),
      maxMs: n ? latencies.reduce((a, b) => Math.max(a, b), 0) : Number.NaN,
      meanBytes: n ? bytes / n : 0,
      detail,
      hitTimeLimit,
      transport,
      serverCpuMsPerRequest: n ? serverCpu / n : Number.NaN,
      clientCpuMsPerRequest: n ? clientCpu / n : Number.NaN,
      machineCpuMsPerRequest: n ? busy / n : Number.NaN,
      machineBusyPercent: (busy / (elapsedMs * availableParallelism())) * 100,
      sampleBody,
      latencies,
      totals: { bytes, serverCpuMs: serverCpu, clientCpuMs: clientCpu, machineBusyMs: busy },
      rounds: 1,
    };
  } finally {
    agent?.destroy();
    for (const c of connections) c.close();
  }
}
