/**
 * `node bench/range-ceiling.ts`: the ceiling for the Range rows of bench/large.ts on this
 * machine. A Node HTTP server in its own process answers every request with 1 MiB held in
 * memory (no store, no file, no git); this process is the clients, as in the bench: 200
 * reads by one client, then 25 each by 16 clients at once, p50/p99. No server that reads
 * the bytes from anywhere can beat it here. Run on a quiet machine; nothing is written.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { percentile } from './util.ts';

const READ_BYTES = 1024 * 1024;

if (process.argv.includes('--serve')) {
  const body = randomBytes(READ_BYTES);
  const server = http.createServer((_request, response) => {
    response.writeHead(206, { 'content-length': body.length });
    response.end(body);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
} else {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<string>((resolve) => child.stdout.once('data', (data: Buffer) => resolve(data.toString('utf8').trim())));
    const url = `http://127.0.0.1:${port}/`;
    const read = async (): Promise<number> => {
      const t0 = performance.now();
      const response = await fetch(url);
      const body = Buffer.from(await response.arrayBuffer());
      if (body.length !== READ_BYTES) throw new Error(`got ${body.length} bytes`);
      return performance.now() - t0;
    };
    for (let i = 0; i < 20; i++) await read(); // warm
    const single: number[] = [];
    for (let i = 0; i < 200; i++) single.push(await read());
    const concurrent = (await Promise.all(Array.from({ length: 16 }, async () => {
      const mine: number[] = [];
      for (let i = 0; i < 25; i++) mine.push(await read());
      return mine;
    }))).flat();
    const f1 = (v: number) => v.toFixed(1);
    console.log(`1 MiB from memory through Node HTTP: 1 client p50 ${f1(percentile(single, 50))} ms, p99 ${f1(percentile(single, 99))} ms; 16 clients p50 ${f1(percentile(concurrent, 50))} ms, p99 ${f1(percentile(concurrent, 99))} ms`);
  } finally {
    child.kill();
  }
}
