// bench/builder: what the builder's path (BullMQ queue, worker, build records in Redis,
// gRPC ApplyGeneration) adds to each build over the nix commands it runs, and how many
// builds per minute it finishes with many flakes pushed at once. The real builder runs as
// a process of its own against a real Redis and a gRPC stand-in reconciler; the nix steps
// "by hand" run in this process with the same NixClient, nix.conf and environment. Every
// flake is new and its images unique to the run, so nix caches nothing for either side.
// Builder and by-hand builds alternate; read the difference, not the absolute times.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { REDIS_USERS } from '@seed/builds-queue';
import { generationHash, readTlsDirectory } from '@seed/contracts';
import { NixClient, pinFlakeRef } from '@seed/nix-eval';
import {
  benchSettings,
  createPlatformCertificates,
  freeLoopbackPort,
  startRedis,
  startServiceProcess,
  runBench,
  type BenchCleanups,
  median,
  rowPrinter,
} from '@seed/testing';
import { Pushes, freshFlake, type Fixture } from './pushes';
import { StandInReconciler } from './reconciler';
import { measureTlsCost, printTlsCost } from './tls-cost';

const CONF = process.env.SEED_NIX_CONF ?? '/etc/seed/nix.conf';
const { BENCH_BUILDS: BUILDS, BENCH_FLAKES: FLAKES } = benchSettings('bench/builder', {
  BENCH_BUILDS: 10,
  BENCH_FLAKES: 20,
});
const BUILD_TIMEOUT_MS = 60_000;
const BUILDER_MAIN =
  process.env.BENCH_BUILDER_MAIN ?? path.resolve(__dirname, '../../../apps/builder/dist/main.js');
// The builder gets only PATH and its SEED_* variables (startServiceProcess); nix by hand
// runs in the same environment so both read the same configuration and caches.
const NIX_ENV = { PATH: process.env.PATH };

/** What the bench reads of `GET /builds/:id`. */
interface BuildRecord {
  state: string;
  attempts: number;
  phases: Record<string, number>;
}

async function record(url: string, token: string, jobId: string): Promise<BuildRecord> {
  const response = await fetch(`${url}/builds/${jobId}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!response.ok) throw new Error(`GET /builds/${jobId}: ${response.status}`);
  return (await response.json()) as BuildRecord;
}

async function fixtures(
  cleanups: BenchCleanups,
  count: number,
  seeds: (index: number) => number,
): Promise<Fixture[]> {
  const made: Fixture[] = [];
  for (let index = 0; index < count; index += 1) {
    const fixture = await freshFlake(seeds(index));
    cleanups.add(fixture.repo.dir, () => fixture.repo.dispose());
    made.push(fixture);
  }
  return made;
}

interface ThroughBuilder {
  ms: number;
  /** Push to completed, less the builder's own nix phases (evaluate, build). */
  outsideNixMs: number;
  applyMs: number;
}

async function bench(cleanups: BenchCleanups): Promise<void> {
  const redis = await startRedis();
  cleanups.add('redis', () => redis.dispose());
  // The platform's credentials, as deployed: mTLS to the reconciler, a token for the API.
  const credentials = await mkdtemp(path.join(tmpdir(), 'seed-bench-builder-'));
  cleanups.add('the credentials', () => rm(credentials, { recursive: true, force: true }));
  const certificates = await createPlatformCertificates(credentials);
  const token = randomBytes(16).toString('hex');
  const tokenFile = path.join(credentials, 'api.token');
  await writeFile(tokenFile, token);

  printTlsCost(await measureTlsCost(cleanups, certificates));

  const reconciler = await StandInReconciler.start({
    kind: 'mtls',
    tls: readTlsDirectory(certificates.reconciler),
    reloadMs: 60_000,
  });
  cleanups.add('the stand-in reconciler', () => reconciler.stop());
  const pushes = new Pushes(redis);
  cleanups.add('the queue clients', () => pushes.close());
  await pushes.ready();

  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const builder = startServiceProcess(BUILDER_MAIN, {
    ...redis.serviceEnv(REDIS_USERS.builder),
    SEED_RECONCILER_ADDRESS: reconciler.address,
    SEED_TLS_DIR: certificates.builder,
    SEED_BUILDER_API_TOKEN_FILE: tokenFile,
    SEED_BUILDER_PORT: String(port),
    SEED_NIX_CONF: CONF,
    // Log lines would be parsed by this process, on the cores the builds use.
    SEED_LOG_LEVEL: 'warn',
  });
  cleanups.addProcess('the builder', builder);
  await builder.healthy(url);

  const nix = new NixClient({ confFile: CONF, env: NIX_ENV });
  const byHand = async (fixture: Fixture): Promise<number> => {
    const started = performance.now();
    const locked = await nix.resolve(pinFlakeRef(fixture.repo.url(), fixture.commit, 'main').url);
    generationHash(await nix.buildImages(await nix.evaluateSeeds(locked.url)));
    return performance.now() - started;
  };
  const throughBuilder = async (fixture: Fixture): Promise<ThroughBuilder> => {
    const done = pushes.finished(fixture, BUILD_TIMEOUT_MS);
    const started = performance.now();
    const jobId = await pushes.push(fixture);
    const ms = (await done) - started;
    const { state, attempts, phases } = await record(url, token, jobId);
    if (state !== 'succeeded' || attempts !== 1) {
      throw new Error(`build ${jobId}: ${state} after ${attempts} attempt(s)`);
    }
    const nixMs = (phases.evaluate ?? 0) + (phases.build ?? 0);
    return { ms, outsideNixMs: ms - nixMs, applyMs: phases.apply ?? 0 };
  };

  // (a) One single-seed build at a time, alternating with the same steps by hand on an
  // equally fresh flake; the first pair warms up JIT, connections and nix, and is dropped.
  const single = await fixtures(cleanups, 2 * (BUILDS + 1), () => 1);
  const viaBuilder: ThroughBuilder[] = [];
  const viaHand: number[] = [];
  for (let round = 0; round <= BUILDS; round += 1) {
    const [ours, theirs] = [single[2 * round]!, single[2 * round + 1]!];
    // Alternate which side goes first, so neither always follows the other's writes.
    const pair =
      round % 2
        ? { builder: await throughBuilder(ours), hand: await byHand(theirs) }
        : { hand: await byHand(theirs), builder: await throughBuilder(ours) };
    if (round === 0) continue;
    viaBuilder.push(pair.builder);
    viaHand.push(pair.hand);
  }

  // (b) FLAKES flakes of 2-3 seeds pushed at once, the builder at its default concurrency.
  const many = await fixtures(cleanups, FLAKES, (index) => 2 + (index % 2));
  const finished = many.map((fixture) => pushes.finished(fixture, BUILD_TIMEOUT_MS));
  const started = performance.now();
  const jobIds = await Promise.all(many.map((fixture) => pushes.push(fixture)));
  const latencies = (await Promise.all(finished)).map((at) => at - started);
  const wallMs = Math.max(...latencies);
  const records = await Promise.all(jobIds.map((jobId) => record(url, token, jobId)));
  const notFirstTry = records.filter((r) => r.state !== 'succeeded' || r.attempts !== 1).length;
  // Time the worker slots spent inside a build's phases, against the slots available.
  const concurrency = availableParallelism();
  const busyMs = records.reduce(
    (sum, r) => sum + Object.values(r.phases).reduce((total, ms) => total + ms, 0),
    0,
  );

  const line = rowPrinter(52);
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const builderMedian = median(viaBuilder.map((b) => b.ms));
  const handMedian = median(viaHand);
  const seeds = many.reduce((sum, fixture) => sum + fixture.seeds, 0);
  console.log(
    `bench/builder: ${BUILDS} single-seed builds one at a time, then ${FLAKES} flakes ` +
      `(${seeds} seeds) at once; concurrency ${concurrency} (one per core), medians`,
  );
  line('builder, push -> completed', ms(builderMedian));
  line('same nix steps by hand (resolve, evaluate, build)', ms(handMedian));
  line('overhead per build, difference (aim < 50 ms)', ms(builderMedian - handMedian));
  line(
    '  per build: push -> completed less its nix phases',
    `${ms(median(viaBuilder.map((b) => b.outsideNixMs)))} (of which gRPC apply ${ms(
      median(viaBuilder.map((b) => b.applyMs)),
    )})`,
  );
  line(`${FLAKES} flakes pushed at once: wall time`, `${(wallMs / 1000).toFixed(2)} s`);
  line('builds per minute', (FLAKES / (wallMs / 60_000)).toFixed(0));
  line('  push -> completed per build, median / max', `${ms(median(latencies))} / ${ms(wallMs)}`);
  line(
    '  worker slots busy in build phases',
    `${((100 * busyMs) / (wallMs * concurrency)).toFixed(0)}%`,
  );
  if (notFirstTry > 0) line('  builds not succeeded at the first attempt', String(notFirstTry));
  if (reconciler.calls !== BUILDS + 1 + FLAKES) {
    line('  ApplyGeneration calls, expected one per build', String(reconciler.calls));
  }
}

runBench('bench/builder', bench);
