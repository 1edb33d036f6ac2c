// bench/e2e: git push → new content served by `web`, end to end on a real node, by phase.
// `seed up` (@seed/dev-stack's runUp: a bench may drive an app's public entry) starts the whole
// stack — Redis, kube-apiserver + etcd, a node (containerd + nix-snapshotter, kubelet,
// controller manager, scheduler, kube-proxy, CoreDNS), the webhook, the builder with its
// signed binary cache, the reconciler, the shoot pool — and passes its own steps. Then,
// while it runs, PUSHES times: commit a change to web's page program, deliver a signed
// GitHub push, follow the build record, watch web's new pod start and become Ready, and
// GET web's Service until it serves the new page. Alternating with those, the same number
// of image changes of a plain Deployment that Seed does not manage (the baseline: what
// Kubernetes alone takes on this node). Last, the node's idle CPU and memory.
// Everything shares this machine's cores; read the phases beside each other.
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { runUp, type RunningStack } from '@seed/dev-stack';
import { localNix } from '@seed/nix-eval';
import { BuilderApi } from '@seed/platform-client';
import { LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY_SEED } from '@seed/k8s-model';
import { loadKubeConfig } from '@seed/kube-config';
import { FlakeRepo } from '@seed/local-parts';
import { benchSettings, median, rowPrinter, runBench, type BenchCleanups } from '@seed/testing';
import { buildPageImages, PlainDeployment, type BaselineTimes } from './baseline';
import { byName, processesMentioning, usageOver, type ProcessUsage } from './node-usage';
import { PodTimeline, sleep } from './pod-timeline';
import {
  evaluationOverhead,
  seedOwn,
  timedPush,
  WEB_CGI,
  withMarker,
  type PushTimes,
} from './seed-push';

const {
  BENCH_PUSHES: PUSHES,
  // Rounds (a push and an image change) run first and not reported.
  BENCH_WARM_UP: WARM_UP,
  BENCH_WAIT_TIMEOUT_MS: WAIT_TIMEOUT_MS,
  BENCH_IDLE_WINDOW_MS: IDLE_WINDOW_MS,
} = benchSettings('bench/e2e', {
  BENCH_PUSHES: 5,
  BENCH_WARM_UP: { default: 1, min: 0 },
  BENCH_WAIT_TIMEOUT_MS: 300_000,
  BENCH_IDLE_WINDOW_MS: 10_000,
});
const IDLE_SETTLE_MS = 5_000;
/** Issue #13's aim for Seed's own phases (seedOwn in seed-push.ts), at p50. */
const SEED_OWN_AIM_MS = 1_000;
const PLAIN_NAMESPACE = 'bench-e2e-plain';
const RUN = randomBytes(4).toString('hex');

interface Figures {
  pushes: PushTimes[];
  plain: BaselineTimes[];
  node: ProcessUsage[];
  services: ProcessUsage[];
}

async function bench(cleanups: BenchCleanups): Promise<void> {
  const stopping = new AbortController();
  const logFile = path.join(await mkdtemp(path.join(tmpdir(), 'seed-bench-e2e-')), 'seed-up.log');
  await writeFile(logFile, '');
  let figures: Figures | undefined;
  console.error(`bench/e2e: starting seed up (its full output: ${logFile})`);
  const up = runUp({
    nix: localNix(),
    write: (text) => {
      if (text.startsWith('==>')) process.stderr.write(text);
      appendFileSync(logFile, text);
    },
    waitTimeoutMs: WAIT_TIMEOUT_MS,
    signal: stopping.signal,
    whileRunning: async (stack) => {
      figures = await measure(stack, stopping.signal);
    },
  });
  // On SIGINT the stack must stop through runUp, which stops what it started.
  cleanups.add('the seed up stack', async () => {
    stopping.abort(new Error('bench/e2e is stopping'));
    await up.catch(() => undefined);
  });
  await up;
  report(figures!);
}

async function measure(stack: RunningStack, signal: AbortSignal): Promise<Figures> {
  const rounds = WARM_UP + PUSHES;
  const kube = loadKubeConfig(stack.kubeconfigPath);
  console.error(`bench/e2e: building ${rounds + 1} plain httpd images`);
  const images = await buildPageImages(rounds + 1, RUN);

  const core = kube.makeApiClient(CoreV1Api);
  const webService = await core.readNamespacedService({ name: 'web', namespace: stack.namespace });
  const webPods = await PodTimeline.start(
    kube,
    stack.namespace,
    `${LABEL_MANAGED_BY}=${MANAGED_BY_SEED},${LABEL_INSTANCE}=web`,
  );
  const plain = await PlainDeployment.create(
    kube,
    PLAIN_NAMESPACE,
    images[0]!,
    signal,
    WAIT_TIMEOUT_MS,
  );
  console.error(
    `bench/e2e: the plain Deployment serves; ${rounds} rounds of a push and an image change`,
  );
  try {
    const target = {
      stack,
      repo: FlakeRepo.open(stack.flakeDir),
      builds: new BuilderApi(
        stack.builderUrl,
        (await readFile(stack.builderTokenFile, 'utf8')).trim(),
      ),
      webPods,
      webUrl: `http://${webService.spec!.clusterIP!}:8080/`,
      signal,
      timeoutMs: WAIT_TIMEOUT_MS,
    };
    const cgi = await readFile(path.join(stack.flakeDir, WEB_CGI), 'utf8');
    const pushes: PushTimes[] = [];
    const changes: BaselineTimes[] = [];
    for (let round = 0; round < rounds; round += 1) {
      const marker = `bench/e2e push ${RUN}-${round}`;
      const push = () => timedPush(target, withMarker(cgi, marker), marker);
      const change = () => plain.change(images[round + 1]!);
      // Alternate which goes first, so neither always follows the other's work.
      let changed: BaselineTimes;
      let pushed: Awaited<ReturnType<typeof push>>;
      if (round % 2) {
        pushed = await push();
        changed = await change();
      } else {
        changed = await change();
        pushed = await push();
      }
      const label = round < WARM_UP ? 'warm-up' : `${round - WARM_UP + 1}/${PUSHES}`;
      console.error(
        `bench/e2e: ${label}: push ${pushed.commit.slice(0, 8)} served in ${pushed.times.total} ms ` +
          `(pod ${pushed.pod}); plain image change served in ${changed.total} ms`,
      );
      if (round < WARM_UP) continue;
      pushes.push(pushed.times);
      changes.push(changed);
    }

    console.error(`bench/e2e: idle for ${(IDLE_SETTLE_MS + IDLE_WINDOW_MS) / 1000} s`);
    await sleep(IDLE_SETTLE_MS, signal);
    const nodePids = await processesMentioning([stack.nodeDir, stack.apiServerDir]);
    // The services, Redis and the shoot pool's VM: this process started them all.
    const servicePids = (await descendants(process.pid)).filter((pid) => !nodePids.includes(pid));
    const usage = await usageOver([...nodePids, ...servicePids], IDLE_WINDOW_MS, signal);
    return {
      pushes,
      plain: changes,
      node: usage.filter((u) => nodePids.includes(u.pid)),
      services: usage.filter((u) => servicePids.includes(u.pid)),
    };
  } finally {
    plain.stop();
    webPods.stop();
  }
}

/** Every process below `root` in the process tree (by parent pid). */
async function descendants(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const pid of await processesMentioning([''])) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue;
    parents.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [pid, ppid] of parents) {
      if (ppid === parent) {
        found.push(pid);
        walk(pid);
      }
    }
  };
  walk(root);
  return found;
}

function report({ pushes, plain, node, services }: Figures): void {
  const ms = (value: number) => `${Math.round(value)} ms`;
  const s = (value: number) => `${(value / 1000).toFixed(2)} s`;
  const p50 = <T>(rows: readonly T[], pick: (row: T) => number) => median(rows.map(pick));

  console.log(
    `bench/e2e: seed up's stack on a real node, ${availableParallelism()} cores; ${PUSHES} pushes ` +
      `that change web's page (after ${WARM_UP} warm-up), each from the signed delivery to ` +
      `web's Service answering with the new page; ms`,
  );
  const columns: [string, (t: PushTimes) => number][] = [
    ['webhook', (t) => t.webhook],
    ['queue', (t) => t.queue],
    ['evaluate', (t) => t.evaluate],
    ['(by hand)', (t) => t.evaluateByHand],
    ['build', (t) => t.build],
    ['publish', (t) => t.publish],
    ['apply', (t) => t.apply],
    ['builder', (t) => t.bookkeeping],
    ['pod start', (t) => t.podStart],
    ['ready', (t) => t.ready],
    ['served', (t) => t.served],
    ['total', (t) => t.total],
    ["Seed's own", seedOwn],
  ];
  const row = (label: string, cells: number[]) =>
    console.log(
      label.padEnd(6) +
        cells
          .map((cell, i) => String(Math.round(cell)).padStart(columns[i]![0].length + 2))
          .join(''),
    );
  console.log('push  ' + columns.map(([name]) => name.padStart(name.length + 2)).join(''));
  pushes.forEach((times, index) =>
    row(
      String(index + 1),
      columns.map(([, pick]) => pick(times)),
    ),
  );
  row(
    'p50',
    columns.map(([, pick]) => p50(pushes, pick)),
  );
  console.log(
    "  (by hand) = the evaluate phase's nix commands run by hand after the push; builder = the " +
      "build's time between its phases (records, Redis); pod start = apply done → " +
      "new container running (the node fetches web's closure from the builder's cache); ready = " +
      'running → Ready (web has no probe: the same status update); served = Ready → the Service answers the new page',
  );

  const line = rowPrinter(60);
  const own = p50(pushes, seedOwn);
  line(
    "Seed's own phases, p50 of each push's sum",
    `${ms(own)} (webhook + queue + evaluation overhead + publish + apply + builder; aim ≤ ${ms(SEED_OWN_AIM_MS)}: ` +
      `${own <= SEED_OWN_AIM_MS ? 'met' : 'NOT met'})`,
  );
  line(
    '  evaluation overhead: evaluate less by hand, p50',
    `${ms(p50(pushes, evaluationOverhead))} (${pushes.map((t) => Math.round(evaluationOverhead(t))).join(', ')})`,
  );
  line('nix: evaluate + build, p50', ms(p50(pushes, (t) => t.evaluate + t.build)));
  line(
    'Kubernetes: apply done → served, p50',
    ms(p50(pushes, (t) => t.podStart + t.ready + t.served)),
  );
  line('push → new page served, p50', s(p50(pushes, (t) => t.total)));

  console.log(
    `baseline: ${plain.length} image changes of a plain Deployment (web's shape: Recreate, ` +
      `no probe; its images already on the node), each from the PATCH to its Service ` +
      'answering with the new page, medians',
  );
  line('  PATCH of the image', ms(p50(plain, (t) => t.patch)));
  line('  patched → new container running', ms(p50(plain, (t) => t.podStart)));
  line('  running → Ready', ms(p50(plain, (t) => t.ready)));
  line('  Ready → served', ms(p50(plain, (t) => t.served)));
  line(
    '  image change → served (per change)',
    `${ms(p50(plain, (t) => t.total))} (${plain.map((t) => Math.round(t.total)).join(', ')})`,
  );

  const total = (usage: readonly ProcessUsage[]) =>
    `${usage.reduce((sum, u) => sum + u.cpuPercent, 0).toFixed(1)}% of a core, ` +
    `RSS ${(usage.reduce((sum, u) => sum + u.rssKiB, 0) / 1024).toFixed(0)} MiB`;
  const each = (usage: readonly ProcessUsage[]) =>
    byName(usage)
      .map(
        (u) =>
          `${u.name}${u.processes > 1 ? ` ×${u.processes}` : ''} ${u.cpuPercent.toFixed(1)}% ` +
          `${(u.rssKiB / 1024).toFixed(0)} MiB`,
      )
      .join(', ');
  console.log(
    `idle, over ${IDLE_WINDOW_MS / 1000} s after the last change (web, api, dns and the plain ` +
      'Deployment running; CPU from /proc/<pid>/stat, RSS = sum of VmRSS)',
  );
  line('  the node (API server, etcd and the node parts)', total(node));
  console.log(`    ${each(node)}`);
  line("  Seed's services, Redis, the shoot pool's VM", total(services));
  console.log(`    ${each(services)}`);
}

runBench('bench/e2e', bench);
