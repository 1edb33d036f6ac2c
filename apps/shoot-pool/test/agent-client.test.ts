import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { AgentClient } from '../src/agent/agent.client';
import { AgentError, type AgentErrorKind } from '../src/agent/agent.errors';
import { rejection, unixDialer } from './agent-test-helpers';
import { FakeAgent, PING_FIELDS } from './fake-agent';

let dir: string;
let socketPath: string;
let agent: FakeAgent;
let client: AgentClient;

const dial = unixDialer(() => socketPath);

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'agent-client-'));
  socketPath = path.join(dir, 'agent.sock');
  agent = new FakeAgent(socketPath);
  client = new AgentClient(dial, { label: 'test-vm', requestTimeoutMs: 1_000, execGraceMs: 200 });
});

afterEach(async () => {
  client.close();
  await agent.close();
  await rm(dir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<AgentErrorKind> {
  return (await rejection(promise)).kind;
}

describe('AgentClient', () => {
  it('sends numbered requests on one connection and reads typed answers', async () => {
    agent.answer = (request) => request.reply(PING_FIELDS);
    await agent.listen();
    expect(await client.ping()).toEqual(PING_FIELDS);
    agent.answer = (request) => request.reply({ previousEpochMs: 42 });
    expect(await client.setClock(1_800_000_000_000)).toEqual({ previousEpochMs: 42 });
    expect(agent.requests.map((r) => [r.id, r.op])).toEqual([
      [1, 'ping'],
      [2, 'setClock'],
    ]);
    expect(agent.requests[1]?.header.epochMs).toBe(1_800_000_000_000);
    expect(agent.connections).toHaveLength(1);
  });

  it('carries stdin and output as raw blobs', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    agent.answer = (request) =>
      request.reply(
        {
          exitCode: 3,
          timedOut: false,
          durationMs: 12,
          stdoutTruncated: false,
          stderrTruncated: false,
        },
        [request.blobs[0] ?? Buffer.alloc(0), Buffer.from('warn\n')],
      );
    await agent.listen();
    const result = await client.exec({
      argv: ['cat'],
      env: { A: 'b' },
      stdin: all,
      timeoutMs: 1_000,
    });
    expect(result.stdout.equals(all)).toBe(true);
    expect(result.stderr.toString()).toBe('warn\n');
    expect(result.exitCode).toBe(3);
    expect(agent.requests[0]?.header).toEqual({
      id: 1,
      op: 'exec',
      argv: ['cat'],
      env: { A: 'b' },
      timeoutMs: 1_000,
    });
  });

  it('runs requests one at a time, in order', async () => {
    const order: string[] = [];
    agent.answer = (request) => {
      order.push(`start ${request.id}`);
      setTimeout(() => {
        order.push(`end ${request.id}`);
        request.reply(PING_FIELDS);
      }, 20);
    };
    await agent.listen();
    await Promise.all([client.ping(), client.ping(), client.ping()]);
    expect(order).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  });

  it('times a request out and drops its late answer', async () => {
    agent.answer = (request) => {
      // The first answer comes after the client gave up; the second comes at once.
      setTimeout(
        () => request.reply({ ...PING_FIELDS, uptimeMs: request.id }),
        request.id === 1 ? 300 : 0,
      );
    };
    await agent.listen();
    expect(await failure(client.ping({ timeoutMs: 100 }))).toBe('timeout');
    await new Promise((resolve) => setTimeout(resolve, 300)); // the late answer arrives now
    expect((await client.ping()).uptimeMs).toBe(2);
  });

  it('gives exec its command timeout plus a grace', async () => {
    agent.answer = () => undefined; // never answers
    await agent.listen();
    const started = Date.now();
    expect(await failure(client.exec({ argv: ['sleep', '9'], timeoutMs: 300 }))).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });

  it('turns an agent error into a rejected AgentError with the failure', async () => {
    agent.answer = (request) =>
      request.fail({ kind: 'failed', message: 'mount: busy', code: 'EBUSY' });
    await agent.listen();
    const error = await client
      .mount({ fstype: '9p', source: 'shoot', target: '/mnt', readOnly: false })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentError);
    expect(error).toMatchObject({
      kind: 'rejected',
      op: 'mount',
      failure: { kind: 'failed', code: 'EBUSY' },
    });
  });

  it("sends an exec's binds in its header, and reports a refused one by its step", async () => {
    agent.answer = (request) =>
      request.fail({
        kind: 'failed',
        message: 'stat /run/shoot/vol0: no such',
        code: 'ENOENT',
        step: 'bind',
      });
    await agent.listen();
    const bind = { source: '/run/shoot/vol0', target: '/data', readOnly: false };
    const error = await client
      .exec({ argv: ['true'], timeoutMs: 1_000, binds: [bind] })
      .catch((e: unknown) => e);
    expect(agent.requests[0]?.header).toEqual({
      id: 1,
      op: 'exec',
      argv: ['true'],
      timeoutMs: 1_000,
      binds: [bind],
    });
    expect(error).toMatchObject({
      kind: 'rejected',
      op: 'exec',
      failure: { kind: 'failed', code: 'ENOENT', step: 'bind' },
    });
  });

  it('fails the request in flight when the connection drops, and redials on the next', async () => {
    agent.answer = (request) => {
      if (request.id === 1) agent.dropConnections();
      else request.reply(PING_FIELDS);
    };
    await agent.listen();
    expect(await failure(client.ping())).toBe('closed');
    expect(await client.ping()).toEqual(PING_FIELDS);
    expect(agent.requests).toHaveLength(2);
    await client.reconnect();
    expect(client.connected).toBe(true);
  });

  it('drops a connection that sends garbage', async () => {
    agent.answer = (request) => request.socket.write('HTTP/1.1 200 OK\r\n\r\n');
    await agent.listen();
    expect(await failure(client.ping())).toBe('protocol');
    expect(client.connected).toBe(false);
  });

  it('attack: an agent answer beyond the output cap its exec asked for is refused at its length field', async () => {
    // The guest announces more than the cap (+1 byte) and never sends it: the client stops
    // at the length field instead of buffering what follows.
    agent.answer = (request) => {
      const head = Buffer.alloc(12);
      Buffer.from('SEED').copy(head);
      const json = Buffer.from(JSON.stringify({ id: request.id, ok: true }));
      head.writeUInt32BE(json.length, 4);
      head.writeUInt32BE(2, 8);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(1001, 0);
      request.socket.write(Buffer.concat([head, json, length]));
    };
    await agent.listen();
    const started = Date.now();
    expect(
      await failure(client.exec({ argv: ['yes'], timeoutMs: 5_000, maxOutputBytes: 1000 })),
    ).toBe('protocol');
    expect(Date.now() - started).toBeLessThan(5_000); // refused, not timed out
    expect(client.connected).toBe(false);

    // The same answer is read when it fits the cap.
    agent.answer = (request) =>
      request.reply(
        {
          exitCode: 0,
          timedOut: false,
          durationMs: 1,
          stdoutTruncated: true,
          stderrTruncated: false,
        },
        [Buffer.alloc(1000), Buffer.alloc(0)],
      );
    const result = await client.exec({ argv: ['yes'], timeoutMs: 5_000, maxOutputBytes: 1000 });
    expect(result.stdout.length).toBe(1000);

    // A ping answered with output is no ping answer.
    agent.answer = (request) => request.reply(PING_FIELDS, [Buffer.from('x')]);
    expect(await failure(client.ping())).toBe('protocol');
  });

  it('reports an unreachable agent, and waitReady retries until it answers', async () => {
    expect(await failure(client.ping())).toBe('unreachable');
    agent.answer = (request) => request.reply(PING_FIELDS);
    setTimeout(() => void agent.listen(), 150);
    expect(await client.waitReady({ timeoutMs: 5_000, retryDelayMs: 10 })).toEqual(PING_FIELDS);
  });

  it('stops waiting when the signal fires or the deadline passes', async () => {
    const vmmExit = new AbortController();
    setTimeout(() => vmmExit.abort(), 100);
    const started = Date.now();
    const kind = await failure(client.waitReady({ timeoutMs: 5_000, signal: vmmExit.signal }));
    expect(kind).toMatch(/closed|unreachable/);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await failure(client.waitReady({ timeoutMs: 100 }))).toMatch(/unreachable|timeout/);
  });

  it('rejects everything after close', async () => {
    agent.answer = (request) => request.reply(PING_FIELDS);
    await agent.listen();
    await client.ping();
    client.close();
    expect(await failure(client.ping())).toBe('closed');
    expect(client.connected).toBe(false);
  });
});
