/**
 * A free loopback TCP port for a server a test starts in another process (grove serve,
 * nginx, Swift, PostgreSQL), which binds it a moment later.
 *
 * Not a kernel-chosen ephemeral port: between our release and the child's bind, any
 * outgoing connection of this machine (a git client, a fetch) may be given that same port,
 * and the parallel test process does the same dance. Ports are drawn at random below
 * Linux's ephemeral range (32768–60999), where connections never land, and checked free.
 */
import net from 'node:net';

const LOWEST = 20_000;
const ABOVE_HIGHEST = 32_768;
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (ABOVE_HIGHEST - LOWEST));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port between ${LOWEST} and ${ABOVE_HIGHEST - 1} after 200 tries`);
}
