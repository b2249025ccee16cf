/**
 * The client ceiling: a trivial HTTP server that answers every request with one recorded
 * response body (given as a file) and its content type, nothing computed. The load client
 * against it shows the most that this client can receive on this machine for that
 * workload; a server measured near that figure is limited by the harness, not by itself.
 *
 * usage: node bench/replay-server.ts BODY_FILE CONTENT_TYPE   (prints the port it listens on)
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [file, contentType] = process.argv.slice(2);
if (!file || !contentType) {
  process.stderr.write('usage: node bench/replay-server.ts BODY_FILE CONTENT_TYPE\n');
  process.exit(2);
}
const body = readFileSync(file);
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
    res.end(body);
  });
});
server.keepAliveTimeout = 300_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
// Bounded: the harness stops it; it also ends by itself after 10 minutes.
setTimeout(() => process.exit(0), 600_000).unref();
process.on('SIGTERM', () => process.exit(0));
