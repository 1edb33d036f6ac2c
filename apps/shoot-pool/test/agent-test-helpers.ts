// What the tests of the host client (agent-client.test.ts, against a fake agent) and of
// the agent itself (guest-agent.test.ts, the real one) both need.
import net from 'node:net';
import { AgentError } from '../src/agent/agent.errors';

/** An AgentClient dialer for a Unix socket. */
export function unixDialer(socketPath: () => string): () => Promise<net.Socket> {
  return () =>
    new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: socketPath() });
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    });
}

/** The AgentError a request rejects with; anything else fails the test. */
export async function rejection(promise: Promise<unknown>): Promise<AgentError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof AgentError)) {
    throw new Error(`expected an AgentError, got ${String(error)}`);
  }
  return error;
}
