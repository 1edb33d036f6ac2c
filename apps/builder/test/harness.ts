import { afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BuildsQueueProducer, REDIS_USERS } from '@seed/builds-queue';
import {
  BUILDS_QUEUE,
  FINAL_BUILD_STATES,
  buildJobId,
  buildRecordSchema,
  type BuildJob,
  readTlsDirectory,
  type BuildRecord,
  type FlakeQuota,
} from '@seed/contracts';
import {
  createPlatformCertificates,
  demoFlakeFiles,
  FlakeRepo,
  queueBuild,
  startNixDaemon,
  type DemoSeed,
  type LocalNixDaemon,
  type LocalRedis,
  type PlatformCertificates,
} from '@seed/testing';
import { Queue, type Job } from 'bullmq';

/**
 * Queues builds through the webhook's producer (as the webhook's Redis user), retrying
 * quickly; `queue` shows their jobs (as the fixture's admin).
 */
export class Pushes {
  readonly queue: Queue;
  private readonly producer: BuildsQueueProducer;

  /** `dedupeTtlSeconds`: how long a queued commit is remembered (short, to replay one). */
  constructor(redis: LocalRedis, dedupeTtlSeconds = 3600) {
    this.producer = new BuildsQueueProducer({
      redis: { url: redis.url, ...redis.user(REDIS_USERS.webhook) },
      commandTimeoutMs: 5_000,
      dedupeTtlSeconds,
      onConnectionError: () => undefined,
      jobOptions: { backoff: { type: 'fixed', delay: 200 } },
    });
    this.queue = new Queue(BUILDS_QUEUE, {
      connection: { host: redis.host, port: redis.port, ...redis.admin },
    });
  }

  push(repo: FlakeRepo, commit: string, quota?: FlakeQuota): Promise<string> {
    return queueBuild(this.producer, repo.url(), commit, quota);
  }

  /** A push whose job carries more than `push` sets (`forced`, `allowBackward`). */
  async pushJob(repo: FlakeRepo, commit: string, extra: Partial<BuildJob>): Promise<string> {
    if (!(await this.producer.connected(10_000))) throw new Error('Redis is not reachable');
    const job: BuildJob = {
      flake: repo.url(),
      commit,
      ref: 'refs/heads/main',
      forge: 'github',
      deliveryId: `test-${randomBytes(4).toString('hex')}`,
      receivedAt: new Date().toISOString(),
      ...extra,
    };
    await this.producer.queue(job.forge, job.deliveryId, [job]);
    return buildJobId(job.flake, job.commit);
  }

  /**
   * The job once BullMQ has settled it: the build record turns final inside the
   * processor, a moment before the worker moves the job to failed or completed.
   */
  async settledJob(jobId: string, timeoutMs = 10_000): Promise<Job> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // The state first, then the job: a job read before it settled keeps its old fields.
      const state = await this.queue.getJobState(jobId);
      const job = await this.queue.getJob(jobId);
      if (job && (state === 'failed' || state === 'completed')) return job;
      if (Date.now() > deadline)
        throw new Error(`job ${jobId} still ${state ?? 'missing'} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.producer.close();
  }
}

/** Seed's nix.conf, as the builder's nix calls read it (scripts/setup installs it). */
export const SEED_NIX_CONF = process.env.SEED_NIX_CONF ?? '/etc/seed/nix.conf';

/**
 * The builder's nix as deployed: a nix-daemon of this test's own (sandboxed builds as
 * nixbld users, a chroot store outside /nix) and the builder's variables that use it.
 * `extraSandboxPaths` are host folders builds may also reach (tests' start markers).
 */
export async function builderNix(extraSandboxPaths: string[] = []): Promise<{
  daemon: LocalNixDaemon;
  env: { SEED_NIX_STORE: string; SEED_NIX_CONF: string };
}> {
  const daemon = await startNixDaemon({ extraSandboxPaths });
  return { daemon, env: { SEED_NIX_STORE: daemon.storeUrl, SEED_NIX_CONF } };
}

/** A flake repository whose images are unique to this test run (no store path is cached). */
export async function flake(seeds: Record<string, DemoSeed>): Promise<FlakeRepo> {
  return FlakeRepo.create(await demoFlakeFiles(unique(seeds)));
}

export async function commit(repo: FlakeRepo, seeds: Record<string, DemoSeed>): Promise<string> {
  return repo.commit(await demoFlakeFiles(unique(seeds)));
}

const RUN = randomBytes(6).toString('hex');

function unique(seeds: Record<string, DemoSeed>): Record<string, DemoSeed> {
  return Object.fromEntries(
    Object.entries(seeds).map(([name, seed]) => [
      name,
      { ...seed, build: `echo ${RUN}; ${seed.build ?? `echo ${name} > $out`}` },
    ]),
  );
}

const API_TOKEN = randomBytes(16).toString('hex');

let credentials: Promise<{ certificates: PlatformCertificates; tokenFile: string }> | undefined;
let credentialsDir: string | undefined;
// Kept for the whole test file (its builders and clients share the CA), removed after it.
afterAll(() => {
  if (credentialsDir) rmSync(credentialsDir, { recursive: true, force: true });
});

/** This test file's platform CA and certificates, and the builder's API token file. */
export function builderCredentials(): Promise<{
  certificates: PlatformCertificates;
  tokenFile: string;
}> {
  credentials ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'seed-builder-tls-'));
    credentialsDir = dir;
    const tokenFile = path.join(dir, 'api.token');
    await writeFile(tokenFile, API_TOKEN);
    return { certificates: await createPlatformCertificates(dir), tokenFile };
  })();
  return credentials;
}

/** The builder's credential variables: its client certificate and its API token. */
export async function builderCredentialEnv(): Promise<Record<string, string>> {
  const { certificates, tokenFile } = await builderCredentials();
  return { SEED_TLS_DIR: certificates.builder, SEED_BUILDER_API_TOKEN_FILE: tokenFile };
}

/** The builder's TLS settings as its config holds them, for a client made by hand. */
export async function builderTls(): Promise<{
  files: ReturnType<typeof readTlsDirectory>;
  reloadMs: number;
}> {
  return {
    files: readTlsDirectory((await builderCredentials()).certificates.builder),
    reloadMs: 60_000,
  };
}

/** GET on the builder's API with its token, as the CLI asks. */
export function getBuilds(url: string): Promise<Response> {
  return fetch(url, { headers: { authorization: `Bearer ${API_TOKEN}` } });
}

/** Polls the builder's HTTP API until the build reaches a final state. */
export async function finished(
  builderUrl: string,
  jobId: string,
  timeoutMs = 60_000,
): Promise<BuildRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await getBuilds(`${builderUrl}/builds/${jobId}`);
    if (response.ok) {
      const record = buildRecordSchema.parse(await response.json());
      if (FINAL_BUILD_STATES.has(record.state)) return record;
    }
    if (Date.now() > deadline)
      throw new Error(`build ${jobId} did not finish within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A flake whose one seed's image refers to a second store path printing `tag`, so its
 * closure is two paths, both of which must travel (and stay, or go, together).
 */
export async function dependencyFlakeFiles(
  name: string,
  tag: string,
): Promise<Record<string, string>> {
  const files = await demoFlakeFiles({ [name]: {} });
  const image = /^ {6}image = derivation \{.*\};$/m;
  if (!image.test(files['flake.nix']!)) throw new Error('demoFlakeFiles changed its image line');
  files['flake.nix'] = files['flake.nix']!.replace(
    image,
    `      image = let
        dep = derivation { name = "seed-${name}-dep"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ${tag} > $out" ]; };
      in derivation { name = "seed-${name}-image"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "sleep 0; echo \${dep} > $out" ]; };`,
  );
  return files;
}
