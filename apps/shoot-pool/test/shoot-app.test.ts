// The whole daemon over HTTP and gRPC with real microVMs (QEMU, TCG), the caller given by
// a StaticCallerResolver for 127.0.0.1 (127.0.0.2 is an unknown caller).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { createShootClient, shootAnswerSchema, type ShootResult__Output } from '@seed/contracts';
import { loadShootPoolConfig } from '../src/config';
import { createShootPoolApp, type ShootPoolApp } from '../src/shoot-pool.app';
import { isAlive, processesReferencing } from '../src/vm/vmm-process';
import { GUEST_IMAGE_TIMEOUT_MS, guestImage, qemuMissing } from './guest-image';

const missing = qemuMissing();
if (missing !== undefined) console.warn(missing);
const describeVm = missing === undefined ? describe : describe.skip;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** A body sent as these bytes, with this content type, rather than as JSON. */
class RawBody {
  constructor(
    readonly bytes: Buffer,
    readonly contentType: string,
  ) {}
}

/** POST /shoot (or GET when body is undefined) from a chosen loopback source address. */
function request(
  url: string,
  route: string,
  body?: unknown,
  localAddress = '127.0.0.1',
  authorization?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const raw = body instanceof RawBody ? body : undefined;
    const data = body === undefined ? undefined : (raw?.bytes ?? Buffer.from(JSON.stringify(body)));
    const req = http.request(
      `${url}${route}`,
      {
        method: data === undefined ? 'GET' : 'POST',
        localAddress,
        headers: {
          ...(authorization === undefined ? {} : { authorization }),
          ...(data === undefined
            ? {}
            : {
                'content-type': raw?.contentType ?? 'application/json',
                'content-length': data.length,
              }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(text) as Record<string, unknown>,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describeVm('shoot pool daemon', () => {
  let root: string;
  let runRoot: string;
  let guestDir: string;
  let volume: string;
  let store: string;
  let otherStore: string;
  let app: ShootPoolApp | undefined;
  let url: string;

  const shoot = (body: unknown, from?: string) => request(url, '/shoot', body, from);
  const STATUS_TOKEN = 'status-token-'.padEnd(32, '0');
  const status = async () =>
    (await request(url, '/status', undefined, '127.0.0.1', `Bearer ${STATUS_TOKEN}`)).body;
  const fullyIdle = (size: number) => async () => {
    const now = await status();
    return now.idle === size && now.busy === 0;
  };

  async function startApp(env: Record<string, string>): Promise<ShootPoolApp> {
    const config = loadShootPoolConfig({
      SEED_SHOOT_HOST: '127.0.0.1',
      SEED_SHOOT_PORT: '0',
      SEED_SHOOT_GRPC_PORT: '0',
      SEED_SHOOT_ACCEL: 'tcg',
      SEED_SHOOT_RUN_ROOT: runRoot,
      SEED_GUEST_DIR: guestDir,
      SEED_LOG_LEVEL: 'silent',
      SEED_SHOOT_STATUS_TOKEN_FILE: path.join(root, 'status.token'),
      SEED_SHOOT_LOCAL_CALLER: JSON.stringify({
        '127.0.0.1': { store, volumes: [{ hostPath: volume, mountPoint: '/data' }] },
        '127.0.0.3': { store: otherStore, volumes: [] },
        '127.0.0.4': { store, volumes: [{ hostPath: volume, mountPoint: '/srv/deep/mount' }] },
      }),
      ...env,
    });
    const started = await createShootPoolApp(config);
    await started.http.listen(0, '127.0.0.1');
    url = await started.http.getUrl();
    url = url.replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
    return started;
  }

  beforeAll(async () => {
    guestDir = path.dirname((await guestImage()).kernel);
    root = await mkdtemp(path.join(tmpdir(), 'shoot-app-'));
    runRoot = path.join(root, 'run');
    volume = path.join(root, 'volume');
    store = path.join(root, 'store');
    otherStore = path.join(root, 'other-store');
    await mkdir(volume);
    await mkdir(store);
    await mkdir(otherStore);
    await writeFile(path.join(otherStore, 'other.txt'), 'another store\n');
    await writeFile(path.join(store, 'hello.txt'), 'from the store\n');
    await writeFile(path.join(volume, 'in.txt'), 'from the volume\n');
    await writeFile(path.join(root, 'status.token'), STATUS_TOKEN);
    app = await startApp({ SEED_SHOOT_POOL_SIZE: '2' });
    await waitFor('a full warm pool', fullyIdle(2));
  }, GUEST_IMAGE_TIMEOUT_MS);

  afterAll(async () => {
    await app?.http.close();
    if (runRoot !== undefined) expect(await processesReferencing(`${runRoot}/`)).toEqual([]);
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('runs echo and reports status', async () => {
    const answer = await shoot({ command: ['echo', 'hello', 'world'] });
    expect(answer.status).toBe(200);
    const body = shootAnswerSchema.parse(answer.body);
    expect(body).toMatchObject({
      exitCode: 0,
      stdout: 'hello world\n',
      stderr: '',
      timedOut: false,
      stdoutTruncated: false,
      stderrTruncated: false,
    });
    expect(body.encoding).toBeUndefined();
    expect(typeof body.durationMs).toBe('number');
    const now = await status();
    expect(now).toMatchObject({ capacity: 2, ready: true, queued: 0 });
  });

  it("times every phase of a shoot, its transport's receiving and answering included", async () => {
    const counts = async () => {
      const { values } = await app!.metrics.phaseSeconds.get();
      return Object.fromEntries(
        values
          .filter((value) => value.metricName === 'seed_shoot_phase_seconds_count')
          .map((value) => [String(value.labels.phase), value.value]),
      );
    };
    const before = await counts();
    expect((await shoot({ command: ['true'] })).status).toBe(200);
    const afterHttp = await counts();
    for (const phase of ['receive', 'parse', 'caller', 'lease', 'host-binds', 'agent', 'answer']) {
      expect([phase, afterHttp[phase]! - before[phase]!]).toEqual([phase, 1]);
    }
    // gRPC: the answer is timed, the receiving is not (grpc-js does not say when a call came).
    const client = createShootClient(`127.0.0.1:${app!.grpc.port}`);
    try {
      await new Promise<void>((resolve, reject) =>
        client.Run({ command: ['true'], timeoutMs: 5_000 }, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
    } finally {
      client.close();
    }
    const afterGrpc = await counts();
    expect(afterGrpc.answer! - afterHttp.answer!).toBe(1);
    expect(afterGrpc.receive).toBe(afterHttp.receive);
  });

  it('answers exit codes, stderr, stdin and env', async () => {
    const [failing, stdin, stdin64, env] = await Promise.all([
      shoot({ command: ['sh', '-c', 'echo oops >&2; exit 42'] }),
      shoot({ command: ['cat'], stdin: 'from the host\n' }),
      shoot({
        command: ['cat'],
        stdin: Buffer.from('bytes\n').toString('base64'),
        stdinEncoding: 'base64',
      }),
      shoot({ command: ['sh', '-c', 'echo "$GREETING"'], env: { GREETING: 'hi there' } }),
    ]);
    expect(failing.body).toMatchObject({ exitCode: 42, stderr: 'oops\n', stdout: '' });
    expect(stdin.body).toMatchObject({ exitCode: 0, stdout: 'from the host\n' });
    expect(stdin64.body).toMatchObject({ exitCode: 0, stdout: 'bytes\n' });
    expect(env.body).toMatchObject({ exitCode: 0, stdout: 'hi there\n' });
  });

  it('answers binary output as base64', async () => {
    const answer = await shoot({ command: ['printf', '\\377\\376\\000A'] });
    expect(answer.status).toBe(200);
    expect(answer.body.encoding).toBe('base64');
    expect(Buffer.from(answer.body.stdout as string, 'base64')).toEqual(
      Buffer.from([0xff, 0xfe, 0, 0x41]),
    );
  });

  it('kills a command at its timeout: 124 and timedOut', async () => {
    const started = Date.now();
    const answer = await shoot({ command: ['sleep', '30'], timeout: 300 });
    expect(answer.body).toMatchObject({ exitCode: 124, timedOut: true });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('shares the volume read-write and the store read-only', async () => {
    const answer = await shoot({
      command: [
        'sh',
        '-c',
        'cat /data/in.txt /nix/store/hello.txt && echo written > /data/out.txt',
      ],
    });
    expect(answer.body).toMatchObject({ exitCode: 0, stdout: 'from the volume\nfrom the store\n' });
    expect(await readFile(path.join(volume, 'out.txt'), 'utf8')).toBe('written\n');

    const refused = await shoot({ command: ['sh', '-c', 'echo x > /nix/store/new.txt'] });
    expect(refused.body.exitCode).not.toBe(0);
    expect(refused.body.stderr).toMatch(/read-only/i);
    expect(await readdir(store)).toEqual(['hello.txt']);
  });

  it('binds a caller store that is not the pre-bound one over /nix/store', async () => {
    const answer = await shoot({ command: ['ls', '/nix/store'] }, '127.0.0.3');
    expect(answer.body).toMatchObject({ exitCode: 0, stdout: 'other.txt\n' });
    const refused = await shoot({ command: ['sh', '-c', 'echo x > /nix/store/x'] }, '127.0.0.3');
    expect(refused.body.stderr).toMatch(/read-only/i);
  });

  it('gives concurrent shoots their own VM: no shared /tmp', async () => {
    const script = (mark: string) => `echo ${mark} > /tmp/${mark}; sleep 1; ls /tmp`;
    const [a, b] = await Promise.all([
      shoot({ command: ['sh', '-c', script('mark-a')] }),
      shoot({ command: ['sh', '-c', script('mark-b')] }),
    ]);
    expect(a.body).toMatchObject({ exitCode: 0, stdout: 'mark-a\n' });
    expect(b.body).toMatchObject({ exitCode: 0, stdout: 'mark-b\n' });
    // And a later shoot gets a fresh VM, not a used one.
    const later = await shoot({ command: ['ls', '/tmp'] });
    expect(later.body).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('never hands a used clone to the next shoot: no /tmp, no processes left over', async () => {
    // Lists /tmp and says `sleeping` for each process whose command line is exactly
    // `sleep 271` (the script's own shell has a longer one).
    const leftovers = `ls /tmp; for p in /proc/[0-9]*; do [ "$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)" = 'sleep 271 ' ] && echo sleeping; done; true`;
    const first = await shoot({
      command: [
        'sh',
        '-c',
        `echo left > /tmp/left-over; sleep 271 </dev/null >/dev/null 2>&1 & ${leftovers}`,
      ],
    });
    // The check sees the first shoot's own leftovers, so it would see a reused clone's.
    expect(first.body).toMatchObject({ exitCode: 0, stdout: 'left-over\nsleeping\n' });
    // The pool holds 2 clones and hands out the oldest idle one: were the first clone put
    // back, one of the next two shoots would get it.
    for (let i = 0; i < 2; i += 1) {
      const later = await shoot({ command: ['sh', '-c', leftovers] });
      expect(later.body).toMatchObject({ exitCode: 0, stdout: '' });
    }
  });

  it("shows nothing of its template's priming: one mount of the share, no primed bind", async () => {
    const look = "grep -c ' /run/shoot 9p ' /proc/mounts; ls -d /run/template-prime 2>&1; true";
    const result = await shoot({ command: ['sh', '-c', look] });
    expect(result.body).toMatchObject({
      exitCode: 0,
      stdout: '1\nls: /run/template-prime: No such file or directory\n',
    });
  });

  it("attack: a clone prepared with one caller's mount points shows none to a caller of another layout", async () => {
    // Two shoots of one layout: both clones warming afterwards bind /srv/deep/mount ahead.
    for (let i = 0; i < 2; i += 1) {
      const deep = await shoot({ command: ['cat', '/srv/deep/mount/in.txt'] }, '127.0.0.4');
      expect(deep.body).toMatchObject({ exitCode: 0, stdout: 'from the volume\n' });
      await waitFor('a full warm pool', fullyIdle(2));
    }
    const look = 'ls -d /srv/deep /srv 2>/dev/null; grep /srv /proc/mounts; true';
    const other = await shoot({ command: ['sh', '-c', look] }, '127.0.0.3');
    expect(other.body).toMatchObject({ exitCode: 0, stdout: '' });
    // And the layout's own caller still gets its volume, prepared or not.
    await waitFor('a full warm pool', fullyIdle(2));
    const again = await shoot({ command: ['cat', '/srv/deep/mount/in.txt'] }, '127.0.0.4');
    expect(again.body).toMatchObject({ exitCode: 0, stdout: 'from the volume\n' });
  });

  it('refuses invalid requests with reasons', async () => {
    const cases: unknown[] = [
      {},
      { command: [] },
      { command: 'echo hi' },
      { command: ['echo'], timeout: 0 },
      { command: ['echo'], timeout: 600_001 },
      { command: ['echo'], env: { 'BAD NAME': 'x' } },
      { command: ['echo'], stdin: '***', stdinEncoding: 'base64' },
      { command: ['echo'], unknown: true },
      { command: Array.from({ length: 257 }, () => 'x') },
    ];
    for (const body of cases) {
      const answer = await shoot(body);
      expect(answer.status).toBe(400);
      expect(typeof answer.body.error).toBe('string');
      expect((answer.body.reasons as string[]).length).toBeGreaterThan(0);
    }
  });

  it('answers a body that does not parse, or is not JSON, with a JSON error', async () => {
    const broken = await shoot(new RawBody(Buffer.from('{"command": ['), 'application/json'));
    expect(broken.status).toBe(400);
    expect(broken.body.error).toMatch(/JSON/);
    const bytes = await shoot(new RawBody(Buffer.from('true'), 'application/octet-stream'));
    expect(bytes.status).toBe(415);
    expect(typeof bytes.body.error).toBe('string');
  });

  it('refuses an unknown caller with 403', async () => {
    const answer = await shoot({ command: ['true'] }, '127.0.0.2');
    expect(answer.status).toBe(403);
    expect(answer.body.error).toMatch(/127\.0\.0\.2/);
  });

  it('answers 502 when the VM dies mid-command, and refills', async () => {
    const pending = shoot({ command: ['sleep', '30'] });
    await waitFor('a busy VM', () => Promise.resolve(app!.pool.busyPids().length === 1));
    const [pid] = app!.pool.busyPids() as [number];
    process.kill(pid, 'SIGKILL');
    const answer = await pending;
    expect(answer.status).toBe(502);
    expect(answer.body.error).toMatch(/VM/);
    await waitFor('the pool to refill', fullyIdle(2));
    expect(isAlive(pid)).toBe(false);
  });

  it('restarts on the same run root without leaving QEMU behind; queues then 429', async () => {
    const before = await processesReferencing(`${runRoot}/`);
    expect(before.length).toBeGreaterThanOrEqual(2);
    await app!.http.close();
    app = undefined;
    expect(await processesReferencing(`${runRoot}/`)).toEqual([]);
    expect(
      existsSync(path.join(runRoot, 'vms')) ? await readdir(path.join(runRoot, 'vms')) : [],
    ).toEqual([]);

    app = await startApp({ SEED_SHOOT_POOL_SIZE: '1', SEED_SHOOT_QUEUE_BOUND: '1' });
    await waitFor('a full warm pool', fullyIdle(1));
    for (const pid of before) expect(isAlive(pid)).toBe(false);

    // One runs, one queues, the third is refused.
    const sleeper = () => shoot({ command: ['sleep', '2'] });
    const first = sleeper();
    await waitFor('a busy VM', () => Promise.resolve(app!.pool.busyPids().length === 1));
    const second = sleeper();
    await waitFor('a queued shoot', async () => (await status()).queued === 1);
    const third = await sleeper();
    expect(third.status).toBe(429);
    expect(third.body.error).toMatch(/full/);
    expect((await first).body).toMatchObject({ exitCode: 0 });
    expect((await second).body).toMatchObject({ exitCode: 0 });
  });

  it('serves seed.v1.Shoot Run over gRPC', async () => {
    const client = createShootClient(`127.0.0.1:${app!.grpc.port}`);
    try {
      const result = await new Promise<ShootResult__Output>((resolve, reject) =>
        client.Run(
          {
            command: ['sh', '-c', 'cat; echo err >&2'],
            stdin: Buffer.from('grpc\n'),
            timeoutMs: 5_000,
          },
          (error, value) =>
            error || value === undefined ? reject(error ?? new Error('no answer')) : resolve(value),
        ),
      );
      expect(result.exitCode).toBe(0);
      expect(Buffer.from(result.stdout).toString()).toBe('grpc\n');
      expect(Buffer.from(result.stderr).toString()).toBe('err\n');
    } finally {
      client.close();
    }
  });

  it("keeps the pool's status behind its token, over HTTP and gRPC", async () => {
    const bare = await request(url, '/status');
    expect(bare).toEqual({
      status: 401,
      body: { error: 'this API needs Authorization: Bearer <token>' },
    });
    expect((await request(url, '/status', undefined, '127.0.0.1', 'Bearer wrong')).status).toBe(
      401,
    );
    const client = createShootClient(`127.0.0.1:${app!.grpc.port}`);
    const ask = (metadata: grpc.Metadata) =>
      new Promise<string>((resolve) =>
        client.Status({}, metadata, (error) => resolve(error ? grpc.status[error.code] : 'OK')),
      );
    const authorized = new grpc.Metadata();
    authorized.set('authorization', `Bearer ${STATUS_TOKEN}`);
    try {
      expect(await ask(new grpc.Metadata())).toBe('UNAUTHENTICATED');
      expect(await ask(authorized)).toBe('OK');
    } finally {
      client.close();
    }
  });
});
