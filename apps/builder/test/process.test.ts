import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_USERS } from '@seed/builds-queue';
import {
  startRedis,
  startServiceProcess,
  type FlakeRepo,
  type ServiceProcess,
  type LocalRedis,
} from '@seed/testing';
import { FakeReconciler } from './fake-reconciler';
import {
  Pushes,
  builderCredentialEnv,
  builderCredentials,
  finished,
  flake,
  getBuilds,
} from './harness';

const MAIN = path.resolve(__dirname, '../dist/main.js');

describe('builder processes', () => {
  let redis: LocalRedis;
  let reconciler: FakeReconciler;
  let pushes: Pushes;
  let scratch: string;
  const repos: FlakeRepo[] = [];
  const processes: ServiceProcess[] = [];

  async function builder(graceMs = 20_000): Promise<{ process: ServiceProcess; url: string }> {
    const process = startServiceProcess(MAIN, {
      ...redis.serviceEnv(REDIS_USERS.builder),
      ...(await builderCredentialEnv()),
      SEED_RECONCILER_ADDRESS: reconciler.address,
      SEED_BUILDER_PORT: '0',
      SEED_BUILDER_CONCURRENCY: '1',
      SEED_JOB_LOCK_MS: '2000',
      SEED_SHUTDOWN_GRACE_MS: String(graceMs),
    });
    processes.push(process);
    const listening = await process.waitForLog((line) => line.msg === 'builder listening');
    return { process, url: String(listening.url).replace('[::1]', '127.0.0.1') };
  }

  async function slowFlake(
    tag: string,
    seconds: number,
  ): Promise<{ repo: FlakeRepo; started: string }> {
    const started = path.join(scratch, `${tag}.started`);
    const repo = await flake({
      web: { build: `echo started > ${started}; /bin/sleep ${seconds}; echo ${tag} > $out` },
    });
    repos.push(repo);
    return { repo, started };
  }

  async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    for (const deadline = Date.now() + timeoutMs; !condition();) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  beforeAll(async () => {
    redis = await startRedis();
    reconciler = await FakeReconciler.start();
    pushes = new Pushes(redis);
    scratch = await mkdtemp(path.join(tmpdir(), 'seed-builder-'));
  });

  afterAll(async () => {
    for (const process of processes) process.kill('SIGKILL');
    await pushes.close();
    await reconciler.stop();
    await redis.dispose();
    await Promise.all(repos.map((repo) => repo.dispose()));
    await rm(scratch, { recursive: true, force: true });
  });

  it('completes a build exactly once on another worker after one is killed mid-build', async () => {
    const { repo, started } = await slowFlake('killed', 5);
    const first = await builder();
    const jobId = await pushes.push(repo, await repo.head());
    await until(() => existsSync(started), 'the build to start');
    first.process.kill('SIGKILL');
    await first.process.exited;

    const second = await builder();
    const record = await finished(second.url, jobId, 60_000);
    expect(record.state).toBe('succeeded');
    expect(await (await pushes.queue.getJob(jobId))?.getState()).toBe('completed');
    expect(reconciler.generationsOf(repo.url())).toEqual([record.generation]);
    second.process.kill('SIGTERM');
    expect((await second.process.exited).code).toBe(0);
  });

  it('drains on SIGTERM: the running build finishes and the process exits 0', async () => {
    const { repo, started } = await slowFlake('drained', 3);
    const worker = await builder();
    const jobId = await pushes.push(repo, await repo.head());
    await until(() => existsSync(started), 'the build to start');
    worker.process.kill('SIGTERM');
    await worker.process.waitForLog((line) => line.msg === 'shutting down');
    // While it drains, the HTTP face still answers: records readable, not ready.
    const ready = await fetch(`${worker.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toContain('draining');
    const record = (await (await getBuilds(`${worker.url}/builds/${jobId}`)).json()) as {
      state: string;
    };
    expect(record.state).toBe('building');
    expect(await worker.process.exited).toEqual({ code: 0, signal: null });
    expect(await (await pushes.queue.getJob(jobId))?.getState()).toBe('completed');
    expect(reconciler.generationsOf(repo.url())).toHaveLength(1);
    expect(worker.process.logs.map((line) => line.msg)).toEqual(
      expect.arrayContaining(['shutting down', 'build succeeded', 'stopped']),
    );
  });

  it('hands a build back past the grace period, without spending an attempt', async () => {
    const { repo, started } = await slowFlake('handed-back', 30);
    const worker = await builder(500);
    const jobId = await pushes.push(repo, await repo.head());
    await until(() => existsSync(started), 'the build to start');
    worker.process.kill('SIGTERM');
    expect(await worker.process.exited).toEqual({ code: 0, signal: null });
    const job = await pushes.queue.getJob(jobId);
    expect(['delayed', 'waiting']).toContain(await job?.getState());
    expect(job?.attemptsMade).toBe(0);

    const next = await builder(500);
    const record = (await (await getBuilds(`${next.url}/builds/${jobId}`)).json()) as {
      state: string;
      log: string[];
    };
    expect(record.log.join('\n')).toContain('worker shutting down: the build will run again');
    next.process.kill('SIGTERM'); // hands it back too, killing its nix build
    await next.process.exited;
  });

  it('says at start that it publishes no binary cache when no signing key is set', async () => {
    const { process } = await builder();
    const listening = await process.waitForLog((line) => line.msg === 'builder listening');
    expect(listening.binaryCache).toBe('off');
    const warning = await process.waitForLog((line) =>
      String(line.msg).startsWith('binary cache off: SEED_BINARY_CACHE_SECRET_KEY_FILE is not set'),
    );
    expect(warning.level).toBe(40);
    process.kill('SIGTERM');
    await process.exited;
  });

  it('refuses to start on bad configuration, naming every problem', async () => {
    const process = startServiceProcess(MAIN, {
      SEED_RECONCILER_ADDRESS: 'reconciler',
      SEED_BUILDER_CONCURRENCY: '0',
      SEED_CANCEL_SUPERSEDED: 'yes',
      SEED_BINARY_CACHE_SECRET_KEY_FILE: '/nonexistent/cache.sec',
    });
    expect((await process.exited).code).toBe(1);
    expect(process.stderr()).toContain(
      'SEED_BINARY_CACHE_SECRET_KEY_FILE="/nonexistent/cache.sec": cannot read it',
    );
    expect(process.stderr()).toContain('SEED_RECONCILER_ADDRESS="reconciler": expected HOST:PORT');
    expect(process.stderr()).toContain('SEED_BUILDER_CONCURRENCY="0"');
    expect(process.stderr()).toContain(
      'SEED_CANCEL_SUPERSEDED="yes": expected true, false, 1 or 0',
    );
  });

  it('logs none of its secrets: its Redis password, API token and TLS private key', async () => {
    const { process, url } = await builder();
    const repo = await flake({ web: {} });
    repos.push(repo);
    expect((await finished(url, await pushes.push(repo, await repo.head()))).state).toBe(
      'succeeded',
    );
    expect(
      (await fetch(`${url}/builds`, { headers: { authorization: 'Bearer wrong' } })).status,
    ).toBe(401);
    await process.stop(20_000);

    const { certificates, tokenFile } = await builderCredentials();
    const key = await readFile(path.join(certificates.builder, 'tls.key'), 'utf8');
    const secrets = [
      redis.user(REDIS_USERS.builder).password,
      (await readFile(tokenFile, 'utf8')).trim(),
      // Each base64 line of the key: a log showing any of them leaks part of it.
      ...key.split('\n').filter((line) => !line.startsWith('-----') && line.length >= 32),
    ];
    const logged = [...process.logs.map((line) => JSON.stringify(line)), process.stderr()].join(
      '\n',
    );
    expect(logged).toContain('builder listening');
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(8);
      expect(logged.includes(secret)).toBe(false);
    }
  });
});
