// bench/reconciler: how long the reconciler takes to apply a generation of 1, 10 and 100
// instances (into an empty namespace, then as pushes that change one image and every
// image), how many writes the API server receives for a push that changes one of 100
// instances, what a no-op generation costs, and how fast a 100-flake x 10-instance cluster converges from
// empty, each figure also in units of the API server's own round trip measured in the
// same run with the same client library. The real reconciler runs as a process of its
// own against a real kube-apiserver and etcd (no controllers, no kubelet: objects are
// stored, nothing runs), called over gRPC like the builder calls it. Everything shares
// the machine's cores; read the ratios rather than the absolute times.
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import {
  benchSettings,
  apiWrites,
  createPlatformCertificates,
  freeLoopbackPorts,
  startKubeApiServer,
  writesBetween,
  runBench,
  rowPrinter,
  splitEvents,
  median,
  type BenchCleanups,
  type WriteCounts,
} from '@seed/testing';
import { ApiServer, changed, type RoundTrips } from './api-server';
import {
  OBJECTS_PER_FLAKE,
  OBJECTS_PER_INSTANCE,
  generation,
  type Generation,
} from './generations';
import { ReconcilerProcess, sum, type Samples } from './reconciler';

const RECONCILER_MAIN =
  process.env.BENCH_RECONCILER_MAIN ??
  path.resolve(__dirname, '../../../apps/reconciler/dist/main.js');
const {
  BENCH_RTT_SAMPLES: RTT_SAMPLES,
  BENCH_FLAKES: FLAKES,
  BENCH_INSTANCES: INSTANCES,
  // The reconciler's default (SEED_RECONCILER_WORKERS), set explicitly so it is printed.
  BENCH_WORKERS: WORKERS,
} = benchSettings('bench/reconciler', {
  BENCH_RTT_SAMPLES: 50,
  BENCH_FLAKES: 100,
  BENCH_INSTANCES: 10,
  BENCH_WORKERS: 4,
});
/** Instances per generation, and how many fresh flakes of each size are timed (median). */
const SIZES: readonly [instances: number, repeats: number][] = [
  [1, 5],
  [10, 5],
  [100, 3],
];
const NO_OP_CALLS = 20;

/** One timed ApplyGeneration and what it did to the cluster. */
interface Applied {
  ms: number;
  /** Objects whose resourceVersion changed (created or updated), all kinds. */
  objectsChanged: number;
  /** Objects of the flake afterwards. */
  objects: number;
  /** seed_reconciler_writes_total: applies, merge patches and deletes the reconciler sent. */
  writes: number;
  /** Reconciles of the flake, the one the call waited for included. */
  reconciles: number;
  /**
   * Write requests the API server counted, by resource (its own /metrics), the follow-up
   * reconciles included. Events are sent in the background and may trail.
   */
  sent: WriteCounts;
}

const writesOf = (samples: Samples) => sum(samples, 'seed_reconciler_writes_total');
const reconcilesOf = (samples: Samples) =>
  sum(samples, 'seed_reconciler_reconcile_duration_seconds_count');

async function bench(cleanups: BenchCleanups): Promise<void> {
  // Every instance has a ClusterIP Service: the harness's /24 would run out at 254.
  const api = await startKubeApiServer({
    apiServerArgs: ['--service-cluster-ip-range=10.0.0.0/16'],
  });
  cleanups.add('the API server and etcd', () => api.stop());
  const [grpcPort, httpPort] = (await freeLoopbackPorts(2)) as [number, number];
  const tlsDir = await mkdtemp(path.join(tmpdir(), 'seed-bench-tls-'));
  cleanups.add('the certificates', () => rm(tlsDir, { recursive: true, force: true }));
  const reconciler = ReconcilerProcess.start({
    certificates: await createPlatformCertificates(tlsDir),
    main: RECONCILER_MAIN,
    kubeconfigPath: api.kubeconfigPath,
    grpcPort,
    httpPort,
    env: {
      SEED_RECONCILER_WORKERS: String(WORKERS),
      // No periodic resync of every flake in the middle of a figure.
      SEED_RESYNC_SECONDS: '3600',
    },
  });
  cleanups.addProcess('the reconciler', reconciler);
  await reconciler.ready();
  const server = new ApiServer(api.kubeconfigPath);

  /** Applies one generation and waits until the informers' follow-up reconciles are done. */
  const timed = async (request: Generation, expectChanged: boolean): Promise<Applied> => {
    const namespaces = [request.namespace];
    const [versionsBefore, samplesBefore, sentBefore] = [
      await server.versions(namespaces),
      await reconciler.metrics(),
      await apiWrites(api),
    ];
    const started = performance.now();
    const reply = await reconciler.apply(request);
    const ms = performance.now() - started;
    if (reply.changed !== expectChanged) {
      throw new Error(`${request.flakeUri}: changed ${reply.changed}, expected ${expectChanged}`);
    }
    await reconciler.settle();
    const [versionsAfter, samplesAfter, sentAfter] = [
      await server.versions(namespaces),
      await reconciler.metrics(),
      await apiWrites(api),
    ];
    return {
      ms,
      objectsChanged: changed(versionsBefore, versionsAfter).length,
      objects: versionsAfter.size,
      writes: writesOf(samplesAfter) - writesOf(samplesBefore),
      reconciles: reconcilesOf(samplesAfter) - reconcilesOf(samplesBefore),
      sent: writesBetween(sentBefore, sentAfter),
    };
  };

  // Warm-up: JIT, connections, informer start-up; not reported.
  await timed(generation('github:seed-bench/warm-up', 3), true);
  await timed(generation('github:seed-bench/warm-up', 3, 1), true);

  const rtt = await server.roundTrips(RTT_SAMPLES);

  const created = new Map<number, Applied[]>();
  const oneChanged = new Map<number, Applied[]>();
  const updated = new Map<number, Applied[]>();
  const noOps = new Map<number, { ms: number[]; last: Applied }>();
  for (const [instances, repeats] of SIZES) {
    created.set(instances, []);
    oneChanged.set(instances, []);
    updated.set(instances, []);
    for (let repeat = 0; repeat < repeats; repeat += 1) {
      const flake = `github:seed-bench/size-${instances}-${repeat}`;
      created.get(instances)!.push(await timed(generation(flake, instances, 0), true));
      oneChanged.get(instances)!.push(await timed(generation(flake, instances, 1, 1), true));
      updated.get(instances)!.push(await timed(generation(flake, instances, 2), true));
    }
    // The same generation again, on the last flake of the size.
    const again = generation(`github:seed-bench/size-${instances}-${repeats - 1}`, instances, 2);
    const ms: number[] = [];
    for (let call = 1; call < NO_OP_CALLS; call += 1) {
      const started = performance.now();
      if ((await reconciler.apply(again)).changed) throw new Error('a no-op generation changed');
      ms.push(performance.now() - started);
    }
    const last = await timed(again, false);
    noOps.set(instances, { ms: [...ms, last.ms], last });
  }

  // A cluster of FLAKES flakes converging from empty: every call fired at once.
  const flakes = Array.from({ length: FLAKES }, (_, index) =>
    generation(`github:seed-bench/cluster-${String(index).padStart(3, '0')}`, INSTANCES),
  );
  const namespaces = flakes.map((request) => request.namespace);
  const samplesBefore = await reconciler.metrics();
  const started = performance.now();
  const answered = await Promise.all(
    flakes.map(async (request) => {
      const reply = await reconciler.apply(request, 240_000);
      if (!reply.changed) throw new Error(`${request.flakeUri}: changed false from empty`);
      return performance.now() - started;
    }),
  );
  const wallMs = Math.max(...answered);
  const idleMs = (await reconciler.settle()) - started;
  const samplesAfter = await reconciler.metrics();
  const clusterObjects = (await server.versions(namespaces)).size;
  const expectedObjects = FLAKES * (OBJECTS_PER_FLAKE + INSTANCES * OBJECTS_PER_INSTANCE);
  const rttAfter = await server.roundTrips(RTT_SAMPLES);

  report({
    version: await server.version(),
    rtt,
    rttAfter,
    created,
    oneChanged,
    updated,
    noOps,
    converge: {
      wallMs,
      idleMs,
      answered,
      objects: clusterObjects,
      expectedObjects,
      writes: writesOf(samplesAfter) - writesOf(samplesBefore),
      reconciles: reconcilesOf(samplesAfter) - reconcilesOf(samplesBefore),
      failedReconciles:
        sum(samplesAfter, 'seed_reconciler_reconcile_duration_seconds_count', 'outcome="error"') -
        sum(samplesBefore, 'seed_reconciler_reconcile_duration_seconds_count', 'outcome="error"'),
    },
  });
}

interface Report {
  version: string;
  rtt: RoundTrips;
  rttAfter: RoundTrips;
  created: Map<number, Applied[]>;
  oneChanged: Map<number, Applied[]>;
  updated: Map<number, Applied[]>;
  noOps: Map<number, { ms: number[]; last: Applied }>;
  converge: {
    wallMs: number;
    idleMs: number;
    answered: number[];
    objects: number;
    expectedObjects: number;
    writes: number;
    reconciles: number;
    failedReconciles: number;
  };
}

function report(figures: Report): void {
  const { rtt } = figures;
  const line = rowPrinter(48);
  const time = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
  const inRtt = (ms: number) => `${(ms / rtt.getMs).toFixed(ms < 10 * rtt.getMs ? 1 : 0)} RTT`;
  const medianOf = (runs: Applied[], pick: (run: Applied) => number) => median(runs.map(pick));

  console.log(
    `bench/reconciler: kube-apiserver ${figures.version} + etcd on loopback, the reconciler as a ` +
      `process (${WORKERS} workers), ${availableParallelism()} cores; each instance = claim + ` +
      `Deployment + Service + NetworkPolicy, each flake + Namespace, seed-state, 5 ` +
      `NetworkPolicies, ResourceQuota, LimitRange; medians`,
  );
  line(
    `API server round trip, median of ${RTT_SAMPLES}`,
    `GET ${time(rtt.getMs)} (= 1 RTT), SSA write ${time(rtt.applyMs)} (= ${inRtt(rtt.applyMs)})`,
  );
  line(
    '  the same at the end of the run',
    `GET ${time(figures.rttAfter.getMs)}, SSA write ${time(figures.rttAfter.applyMs)}`,
  );

  const sizes = (title: string, runs: Map<number, Applied[]>) => {
    console.log(title);
    for (const [instances, applied] of runs) {
      const ms = medianOf(applied, (run) => run.ms);
      const writes = medianOf(applied, (run) => run.objectsChanged);
      line(
        `  ${instances} instance${instances === 1 ? '' : 's'} (${applied.length} flakes)`,
        `${time(ms)} = ${inRtt(ms)}; writes ${writes} = ${(ms / writes / rtt.getMs).toFixed(1)} RTT ` +
          `each (applies sent ${medianOf(applied, (run) => run.writes)}, reconciles ` +
          `${medianOf(applied, (run) => run.reconciles)})`,
      );
    }
  };
  sizes(
    'new generation into an empty namespace (ApplyGeneration until it answers)',
    figures.created,
  );
  sizes('new generation of a running flake, one image changed', figures.oneChanged);
  sizes('new generation of a running flake, every image changed', figures.updated);

  // The case writes must follow: of 100 instances, one changed.
  const oneOf100 = figures.oneChanged.get(100) ?? [];
  if (oneOf100.length > 0) {
    const split = (run: Applied) => splitEvents(run.sent);
    const objectWrites = (run: Applied) =>
      [...split(run).objects.values()].reduce((total, n) => total + n, 0);
    const ms = medianOf(oneOf100, (run) => run.ms);
    console.log(
      `one of 100 instances changed (${oneOf100.length} flakes; writes counted by the API server)`,
    );
    line(
      '  write requests, Events aside',
      `${medianOf(oneOf100, objectWrites)} (aim: the instance's ${OBJECTS_PER_INSTANCE} objects + 1)`,
    );
    oneOf100.forEach((run, index) =>
      line(
        `    flake ${index}, by verb and resource`,
        [...split(run).objects]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([key, n]) => `${key} ${n}`)
          .join(', '),
      ),
    );
    line(
      '  Event writes (sent in the background)',
      String(medianOf(oneOf100, (run) => split(run).events)),
    );
    line('  ApplyGeneration until it answered', `${time(ms)} = ${inRtt(ms)}`);
  }

  console.log(`no-op generation: the applied generation again (${NO_OP_CALLS} calls)`);
  for (const [instances, { ms, last }] of figures.noOps) {
    const value = median(ms);
    line(
      `  ${instances} instance${instances === 1 ? '' : 's'}`,
      `${time(value)} = ${inRtt(value)}; ${last.objectsChanged} of ${last.objects} objects ` +
        `changed, applies sent ${last.writes}, reconciles ${last.reconciles}`,
    );
  }

  const converge = figures.converge;
  console.log(
    `${FLAKES} flakes x ${INSTANCES} instances from empty: ${FLAKES} ApplyGeneration calls at ` +
      `once, the reconciler's ${WORKERS} workers`,
  );
  line(
    '  wall time until every call answered',
    `${time(converge.wallMs)} = ${inRtt(converge.wallMs)}`,
  );
  line(
    '  objects in the cluster, per second',
    `${converge.objects} (expected ${converge.expectedObjects}), ` +
      `${((converge.objects / converge.wallMs) * 1000).toFixed(0)} objects/s = ` +
      `${(converge.wallMs / converge.objects / rtt.getMs).toFixed(2)} RTT per object`,
  );
  line('  per call, median / max', `${time(median(converge.answered))} / ${time(converge.wallMs)}`);
  line(
    '  applies sent, reconciles run (failed)',
    `${converge.writes}, ${converge.reconciles} (${converge.failedReconciles})`,
  );
  line('  until the reconciler was idle again', time(converge.idleMs));
}

runBench('bench/reconciler', bench);
