/**
 * The git launcher process (see spawner.ts for why it exists, launcher-protocol.ts for what
 * it says). Started by Grove with an IPC channel and the path of Grove's Unix socket; it
 * stays small, so its forks are cheap and never stall Grove's event loop. It exits when
 * Grove goes away; git children it started run on in their own process groups, as they
 * would after Grove's own death.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import type { BaseMessage, LauncherMessage, SpawnMessage } from './launcher-protocol.ts';

const socketPath = process.argv[2];
if (socketPath === undefined || typeof process.send !== 'function') {
  process.stderr.write('launcher-main: run by Grove only (needs an IPC channel and a socket path)\n');
  process.exit(2);
}
// Git children run at this niceness (the launcher itself stays at Grove's): when the CPU is
// short, Grove's event loop, answering every request, runs before its git children's bulk work.
const niceness = Number(process.argv[3] ?? 0);

function send(message: LauncherMessage): void {
  if (process.connected) process.send!(message);
}

/** One connection to Grove, announced by the command id and stream index; resolves once the header is written. */
function connect(id: string, index: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath!);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.pause();
      socket.write(`${id}${index}`, (error) => (error ? reject(error) : resolve(socket)));
    });
  });
}

let base: BaseMessage = { t: 'base', file: 'git', args: [], env: {} };

async function launch(message: SpawnMessage): Promise<void> {
  const connecting = [0, 1, 2].map((index) => connect(message.id, index));
  const settled = await Promise.allSettled(connecting);
  const sockets = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const refused = settled.find((s) => s.status === 'rejected');
    if (refused) throw (refused as PromiseRejectedResult).reason;
    const child = spawn(base.file, [...base.args, ...message.args], { env: { ...base.env, ...message.env }, stdio: [sockets[0]!, sockets[1]!, sockets[2]!], detached: true });
    if (niceness > 0 && child.pid !== undefined) {
      try {
        os.setPriority(child.pid, niceness); // a few microseconds into its life, before it does any real work
      } catch {
        // not allowed here: it runs at Grove's priority
      }
    }
    child.once('spawn', () => send({ t: 'spawned', id: message.id, pid: child.pid! }));
    child.once('error', (error) => send({ t: 'failed', id: message.id, message: error.message }));
    child.once('exit', (code, signal) => send({ t: 'exit', id: message.id, code, signal }));
  } catch (error) {
    send({ t: 'failed', id: message.id, message: (error as Error).message });
  } finally {
    // The child holds its own copies of the descriptors; closing ours never shuts the sockets down.
    for (const socket of sockets) socket.destroy();
  }
}

process.on('message', (message: SpawnMessage | BaseMessage) => {
  if (message?.t === 'spawn') void launch(message);
  else if (message?.t === 'base') base = message;
});
process.on('disconnect', () => process.exit(0));
