// The guest agent itself (guest/agent, C), built by scripts/guest-agent and run on the
// host as the VMs run it, but serving a Unix socket and, for its binds, in a mount
// namespace of its own (`unshare`), spoken to by the real host client. Whatever the agent
// binds is seen through its own commands: the test's namespace never has those mounts.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { AgentClient } from '../src/agent/agent.client';
import { FrameDecoder, encodeFrame } from '../src/agent/protocol';
import { rejection, unixDialer } from './agent-test-helpers';
import { GOLDEN_FRAME } from './golden-frame';

const REPO_ROOT = path.join(__dirname, '..', '..', '..');
const asRoot = process.getuid?.() === 0;
const itAsRoot = asRoot ? it : it.skip;

let dir: string;
let socketPath: string;
let agentProcess: ChildProcess;
let agentLog = '';
let client: AgentClient;

const dial = unixDialer(() => socketPath);

/** Sends raw bytes on a connection of its own and answers the frames that come back. */
async function rawExchange(bytes: Buffer, answers: number): Promise<unknown[]> {
  const socket = await dial();
  const decoder = new FrameDecoder();
  const frames: unknown[] = [];
  try {
    socket.write(bytes);
    for await (const chunk of socket) {
      frames.push(...decoder.push(chunk as Buffer).map((frame) => frame.header));
      if (frames.length >= answers) return frames;
    }
    return frames;
  } finally {
    socket.destroy();
  }
}

beforeAll(async () => {
  const built = execFileSync(path.join(REPO_ROOT, 'scripts', 'guest-agent'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const binary = path.join(built.trim().split('\n').at(-1)!, 'shoot-agent');
  dir = await mkdtemp(path.join(tmpdir(), 'guest-agent-'));
  socketPath = path.join(dir, 'agent.sock');
  const args = [binary, '--unix', socketPath, '--port', '', '--vsock-port', '0'];
  // Root gets a mount namespace of its own, so the agent's binds never reach the host.
  agentProcess = asRoot
    ? spawn('unshare', ['--mount', '--propagation', 'private', ...args], { stdio: 'pipe' })
    : spawn(args[0]!, args.slice(1), { stdio: 'pipe' });
  agentProcess.stderr!.on('data', (chunk: Buffer) => (agentLog += chunk.toString()));
  for (let tries = 0; !existsSync(socketPath); tries += 1) {
    if (tries > 200) throw new Error(`the agent did not listen: ${agentLog}`);
    await sleep(10);
  }
}, 120_000);

// A listener serves one session at a time, as vsock does: each test's client hangs up
// after it, so that raw exchanges get the agent too.
beforeEach(() => {
  client = new AgentClient(dial, { label: 'host-agent', requestTimeoutMs: 5_000 });
});

afterEach(() => client.close());

afterAll(async () => {
  agentProcess?.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('the guest agent', () => {
  it('answers the golden frame the host writes', async () => {
    expect(await rawExchange(GOLDEN_FRAME, 1)).toEqual([
      expect.objectContaining({ id: 1, ok: true, version: 1, reseeds: 0 }),
    ]);
    const ping = await client.ping();
    expect(ping).toMatchObject({ version: 1, reseeds: 0 });
    expect(Math.abs(ping.epochMs - Date.now())).toBeLessThan(5_000);
  });

  it('refuses unknown ops and fields, and a header that is not JSON, by id', async () => {
    const answers = await rawExchange(
      Buffer.concat([
        encodeFrame({ id: 2, op: 'reboot' }),
        encodeFrame({ id: 3, op: 'ping', surprise: true }),
        encodeFrame({
          id: 4,
          op: 'exec',
          argv: ['true'],
          binds: [{ source: '/', target: '/', x: 1 }],
        }),
        encodeFrame({ id: 5, op: 'exec', argv: [] }),
        encodeFrame({ id: 6, op: 'exec', argv: ['true'], maxOutputBytes: 64 << 20 }),
        encodeFrame({ id: 7, op: 'exec', argv: ['true'], unbinds: ['relative'] }),
        encodeFrame({ id: 8, op: 'setClock', epochMs: -1 }),
        encodeFrame({ id: 9, op: 'reseed' }, [Buffer.alloc(8)]),
        encodeFrame({ id: 2 ** 32, op: 'ping' }),
      ]),
      9,
    );
    expect(answers).toEqual(
      [2, 3, 4, 5, 6, 7, 8, 9, 0].map((id) => ({
        id,
        ok: false,
        error: expect.objectContaining({ kind: 'bad-request' }),
      })),
    );
    expect(JSON.stringify(answers[1])).toContain('surprise');
    const notJson = Buffer.from('SEED\0\0\0\x07\0\0\0\0{"id":1', 'latin1');
    expect(await rawExchange(notJson, 1)).toEqual([
      { id: 0, ok: false, error: expect.objectContaining({ kind: 'bad-request' }) },
    ]);
  });

  it('skips bytes that are not a frame and lengths over its limits, then reads on', async () => {
    const tooLong = Buffer.from('SEED\x01\0\0\0\0\0\0\0', 'latin1'); // a 16 MiB header
    const tooMany = Buffer.from('SEED\0\0\0\x02\0\0\0\x05', 'latin1'); // five blobs
    const answers = await rawExchange(
      Buffer.concat([
        Buffer.from('garbage'),
        tooLong,
        tooMany,
        encodeFrame({ id: 10, op: 'ping' }),
      ]),
      1,
    );
    expect(answers).toEqual([expect.objectContaining({ id: 10, ok: true })]);
    // A frame cut off by the host going away ends only that session.
    const cut = await dial();
    cut.end(encodeFrame({ id: 11, op: 'ping' }).subarray(0, 20));
    await new Promise((resolve) => cut.once('close', resolve));
    expect(await client.ping()).toMatchObject({ version: 1 });
  });

  it('runs a command with stdin, byte-exact output and its exit code', async () => {
    const result = await client.exec({
      argv: ['sh', '-c', 'cat; printf "\\377err" >&2; exit 3'],
      stdin: Buffer.from('in\0put'),
      timeoutMs: 5_000,
    });
    expect(result).toMatchObject({ exitCode: 3, timedOut: false });
    expect(result.stdout).toEqual(Buffer.from('in\0put'));
    expect(result.stderr).toEqual(Buffer.from([0xff, ...Buffer.from('err')]));
  });

  it('carries megabytes of stdin and output, read or not by the command', async () => {
    const stdin = Buffer.alloc(12 << 20, 'x');
    const counted = await client.exec({
      argv: ['sh', '-c', 'wc -c; head -c 3145728 /dev/zero'],
      stdin,
      maxOutputBytes: 8 << 20,
      timeoutMs: 20_000,
    });
    expect(counted.stdout.subarray(0, 9).toString()).toBe('12582912\n');
    expect(counted.stdout).toHaveLength(9 + (3 << 20));
    // A command that never reads its stdin still answers: the rest meets a closed pipe.
    const ignored = await client.exec({ argv: ['true'], stdin, timeoutMs: 20_000 });
    expect(ignored).toMatchObject({ exitCode: 0, timedOut: false });
  });

  it('gives the command the base environment, the request env over it, and its cwd', async () => {
    const result = await client.exec({
      argv: ['sh', '-c', 'echo "$PATH|$HOME|$GREETING|$(pwd)"'],
      env: { GREETING: 'hi', HOME: '/home/caller' },
      cwd: dir,
      timeoutMs: 5_000,
    });
    expect(result.stdout.toString()).toBe(
      `/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin|/home/caller|hi|${dir}\n`,
    );
    const missing = await rejection(
      client.exec({ argv: ['true'], cwd: `${dir}/none`, timeoutMs: 5_000 }),
    );
    expect(missing.failure).toMatchObject({ kind: 'failed', code: 'ENOENT' });
  });

  it('answers like a shell for a command that cannot run', async () => {
    const notFound = await client.exec({ argv: ['no-such-command'], timeoutMs: 5_000 });
    expect(notFound.exitCode).toBe(127);
    expect(notFound.stderr.toString()).toContain('no-such-command: command not found');
    await writeFile(`${dir}/not-executable`, 'echo hi\n', { mode: 0o644 });
    const viaPath = await client.exec({
      argv: ['not-executable'],
      env: { PATH: dir },
      timeoutMs: 5_000,
    });
    expect(viaPath.exitCode).toBe(126);
    const byPath = await client.exec({ argv: [`${dir}/not-executable`], timeoutMs: 5_000 });
    expect(byPath.exitCode).toBe(126);
    expect(byPath.stderr.toString()).toMatch(/permission denied/i);
  });

  it('ends the whole group at the deadline and when the command exits', async () => {
    const timedOut = await client.exec({
      argv: ['sh', '-c', 'sleep 30 & sleep 30'],
      timeoutMs: 300,
    });
    expect(timedOut).toMatchObject({ exitCode: 124, timedOut: true });
    expect(timedOut.durationMs).toBeLessThan(5_000);
    // A background child holding the output open does not hold the answer back.
    const started = Date.now();
    const leftover = await client.exec({
      argv: ['sh', '-c', 'sleep 30 & echo bg'],
      timeoutMs: 10_000,
    });
    expect(leftover).toMatchObject({ exitCode: 0, timedOut: false });
    expect(leftover.stdout.toString()).toBe('bg\n');
    expect(Date.now() - started).toBeLessThan(5_000);
    const killed = await client.exec({ argv: ['sh', '-c', 'kill -9 $$'], timeoutMs: 5_000 });
    expect(killed).toMatchObject({ exitCode: 137, signal: 9 });
  });

  it('caps each output stream and keeps reading past the cap', async () => {
    const result = await client.exec({
      argv: ['sh', '-c', 'head -c 3000000 /dev/zero; echo tail >&2'],
      maxOutputBytes: 10,
      timeoutMs: 10_000,
    });
    expect(result).toMatchObject({ exitCode: 0, stdoutTruncated: true, stderrTruncated: false });
    expect(result.stdout).toHaveLength(10);
    expect(result.stderr.toString()).toBe('tail\n');
  });

  itAsRoot(
    'binds a missing target of the source kind, read-only, and takes back what it made',
    async () => {
      const src = `${dir}/src`;
      const dst = `${dir}/dst`;
      await mkdir(src);
      await mkdir(dst);
      await writeFile(`${src}/file`, 'a file');
      await writeFile(`${dst}/existing`, '');
      for (const [source, target, read] of [
        [src, `${dst}/dir/nested`, `${dst}/dir/nested/file`],
        [`${src}/file`, `${dst}/new-file`, `${dst}/new-file`],
        [`${src}/file`, `${dst}/existing`, `${dst}/existing`],
      ] as const) {
        await client.bind({ source, target, readOnly: true });
        const through = await client.exec({ argv: ['cat', read], timeoutMs: 5_000 });
        expect(through.stdout.toString()).toBe('a file');
        const write = await client.exec({
          argv: ['sh', '-c', `echo x > ${read}`],
          timeoutMs: 5_000,
        });
        expect(write.stderr.toString()).toMatch(/read-only file system/i);
      }
      // A missing source: refused, and the target made for it is gone again.
      const missing = await rejection(
        client.bind({ source: `${src}/missing`, target: `${dst}/for-missing`, readOnly: false }),
      );
      expect(missing.failure).toMatchObject({ kind: 'failed', code: 'ENOENT' });
      expect(existsSync(`${dst}/for-missing`)).toBe(false);
      // A directory onto an existing file: refused, and the file stays a file.
      await writeFile(`${dst}/plain`, '');
      await rejection(client.bind({ source: src, target: `${dst}/plain`, readOnly: false }));
      expect((await lstat(`${dst}/plain`)).isFile()).toBe(true);
      // Unmount with remove takes away what the bind made (target and parents), not more.
      await client.unmount({ target: `${dst}/dir/nested/`, lazy: false, remove: true });
      expect(existsSync(`${dst}/dir`)).toBe(false);
      await client.unmount({ target: `${dst}/existing`, lazy: false, remove: true });
      expect((await lstat(`${dst}/existing`)).isFile()).toBe(true);
    },
  );

  itAsRoot(
    'makes an exec’s unbinds, then its binds, then runs it; a failed step runs nothing',
    async () => {
      const src = `${dir}/exec-src`;
      const dst = `${dir}/exec-dst`;
      await mkdir(src);
      await mkdir(dst);
      const prepared = `${dst}/prepared/mount`;
      const next = `${dst}/next`;
      const marker = `${dst}/ran`;
      const first = await client.exec({
        argv: ['true'],
        timeoutMs: 5_000,
        binds: [{ source: src, target: prepared, readOnly: false }],
      });
      expect(first.exitCode).toBe(0);
      const second = await client.exec({
        argv: ['sh', '-c', `test ! -e ${dst}/prepared && mountpoint -q ${next}`],
        timeoutMs: 5_000,
        unbinds: [prepared],
        binds: [{ source: src, target: next, readOnly: false }],
      });
      expect(second.exitCode).toBe(0);
      const unbind = await rejection(
        client.exec({ argv: ['touch', marker], timeoutMs: 5_000, unbinds: [prepared] }),
      );
      expect(unbind.failure).toMatchObject({ kind: 'failed', code: 'ENOENT', step: 'unbind' });
      const bind = await rejection(
        client.exec({
          argv: ['touch', marker],
          timeoutMs: 5_000,
          binds: [{ source: '/no/such/dir', target: `${dst}/x`, readOnly: false }],
        }),
      );
      expect(bind.failure).toMatchObject({ kind: 'failed', code: 'ENOENT', step: 'bind' });
      expect(existsSync(marker)).toBe(false);
    },
  );
});
