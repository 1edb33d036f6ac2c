import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_USERS } from '@seed/builds-queue';
import {
  startRedis,
  startServiceProcess,
  type FlakeRepo,
  type LocalNixDaemon,
  type ServiceProcess,
  type LocalRedis,
} from '@seed/testing';
import { FakeReconciler } from './fake-reconciler';
import {
  Pushes,
  builderCredentialEnv,
  builderCredentials,
  builderNix,
  finished,
  flake,
  getBuilds,
} from './harness';

const MAIN = path.resolve(__dirname, '../dist/main.js');

/**
 * A crash of a whole builder, as an OOM kill of its container: the process and its nix
 * clients (its process group). The daemon then stops their builds.
 */
function crash(worker: ServiceProcess): Promise<unknown> {
  process.kill(-worker.child.pid!, 'SIGKILL');
  return worker.exited;
}

/** A process's argv, empty when it exited meanwhile. */
function commandLine(pid: string): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

describe('builder processes', () => {
  let redis: LocalRedis;
  let daemon: LocalNixDaemon;
  let nixEnv: Record<string, string>;
  let reconciler: FakeReconciler;
  let pushes: Pushes;
  let scratch: string;
  const repos: FlakeRepo[] = [];
  const processes: ServiceProcess[] = [];

  async function builder(
    graceMs = 20_000,
    concurrency = 1,
  ): Promise<{ process: ServiceProcess; url: string }> {
    const process = startServiceProcess(MAIN, {
      ...redis.serviceEnv(REDIS_USERS.builder),
      ...nixEnv,
      ...(await builderCredentialEnv()),
      SEED_RECONCILER_ADDRESS: reconciler.address,
      SEED_BUILDER_PORT: '0',
      SEED_BUILDER_CONCURRENCY: String(concurrency),
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
      web: { build: `echo started > ${started}; sleep ${seconds}; echo ${tag} > $out` },
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
    // Builds run sandboxed as build users: they see only this folder of the host's, to
    // leave their start markers in.
    await chmod(scratch, 0o777);
    const nix = await builderNix([scratch]);
    daemon = nix.daemon;
    nixEnv = nix.env;
  });

  afterAll(async () => {
    await Promise.all(processes.filter((p) => !p.hasExited()).map(crash));
    await pushes.close();
    await reconciler.stop();
    await redis.dispose();
    await daemon.dispose();
    await Promise.all(repos.map((repo) => repo.dispose()));
    await rm(scratch, { recursive: true, force: true });
  });

  it('completes a build exactly once on another worker after one is killed mid-build', async () => {
    const { repo, started } = await slowFlake('killed', 5);
    const first = await builder();
    const jobId = await pushes.push(repo, await repo.head());
    await until(() => existsSync(started), 'the build to start');
    await crash(first.process);

    const second = await builder();
    const record = await finished(second.url, jobId, 60_000);
    expect(record.state).toBe('succeeded');
    expect(await (await pushes.queue.getJob(jobId))?.getState()).toBe('completed');
    expect(reconciler.generationsOf(repo.url())).toEqual([record.generation]);
    second.process.kill('SIGTERM');
    expect((await second.process.exited).code).toBe(0);
  });

  /**
   * A flake whose build marks each start and hangs until it has started `runs` times, so
   * a test can kill it mid-flight and see it run again.
   */
  async function flakeRunning(
    name: string,
    runs: number,
  ): Promise<{ repo: FlakeRepo; starts: () => Promise<number> }> {
    // One file per start: each run may be another build user, who cannot append to the
    // previous one's file.
    const marks = path.join(scratch, `${name}-${repos.length}.starts`);
    await mkdir(marks, { mode: 0o777 });
    await chmod(marks, 0o777);
    const repo = await flake({
      [name]: {
        build: `mktemp ${marks}/start.XXXXXX; if [ $(ls ${marks} | wc -l) -lt ${runs} ]; then sleep 300; fi; echo ${name} > $out`,
      },
    });
    repos.push(repo);
    const starts = async () => (await readdir(marks)).length;
    return { repo, starts };
  }

  /** Waits until `check` holds, polling. */
  async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
    for (const deadline = Date.now() + 60_000; !(await check());) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('a build whose nix is killed is retried, and the builds beside it succeed', async () => {
    const victim = await flakeRunning('victim', 2);
    const others = [await flakeRunning('web', 1), await flakeRunning('api', 1)];
    const worker = await builder(20_000, 3);
    const victimJob = await pushes.push(victim.repo, await victim.repo.head());
    const otherJobs = await Promise.all(
      others.map(async ({ repo }) => pushes.push(repo, await repo.head())),
    );
    await eventually(async () => (await victim.starts()) === 1, 'the victim build to start');
    // The nix process building the victim's image, found by its argv.
    const nixPid = readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .find((pid) => {
        const argv = commandLine(pid);
        return argv[0] === 'nix' && argv.some((arg) => arg.endsWith('-seed-victim-image.drv'));
      });
    expect(nixPid).toBeDefined();
    process.kill(Number(nixPid), 'SIGKILL');

    const record = await finished(worker.url, victimJob, 60_000);
    expect(record).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(record.log.join('\n')).toMatch(/nix error: nix was killed by signal 9\n.*will retry/);
    for (const jobId of otherJobs) {
      expect(await finished(worker.url, jobId, 60_000)).toMatchObject({
        state: 'succeeded',
        attempts: 1,
      });
    }
    worker.process.kill('SIGTERM');
    await worker.process.exited;
  });

  it('builds outlive two crashes of the workers running them', async () => {
    // Before: BullMQ's default (maxStalledCount 1) failed both builds on the second crash,
    // "job stalled more than allowable limit", their records left at `building`.
    const builds = [await flakeRunning('web', 3), await flakeRunning('api', 3)];
    const jobIds = await Promise.all(
      builds.map(async ({ repo }) => pushes.push(repo, await repo.head())),
    );
    for (const run of [1, 2]) {
      const worker = await builder(20_000, 2);
      await eventually(
        async () => (await Promise.all(builds.map((b) => b.starts()))).every((n) => n === run),
        `both builds to start (run ${run})`,
      );
      await crash(worker.process);
    }
    const last = await builder(20_000, 2);
    for (const jobId of jobIds) {
      expect(await finished(last.url, jobId, 60_000)).toMatchObject({ state: 'succeeded' });
    }
    for (const { starts } of builds) expect(await starts()).toBe(3);
    last.process.kill('SIGTERM');
    await last.process.exited;
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

  it('is not ready while its nix-daemon does not answer, and says so', async () => {
    const missing = path.join(scratch, 'no-daemon.socket');
    const process = startServiceProcess(MAIN, {
      ...redis.serviceEnv(REDIS_USERS.builder),
      ...(await builderCredentialEnv()),
      ...nixEnv,
      SEED_NIX_STORE: `unix://${missing}`,
      SEED_RECONCILER_ADDRESS: reconciler.address,
      SEED_BUILDER_PORT: '0',
    });
    processes.push(process);
    const listening = await process.waitForLog((line) => line.msg === 'builder listening');
    const ready = await fetch(`${String(listening.url).replace('[::1]', '127.0.0.1')}/readyz`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toContain(
      `cannot connect to socket at '${missing}'`,
    );
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
