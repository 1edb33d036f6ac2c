// bench/shoot: what the warm pool buys. p50/p99 of `true` and of reading a file from the
// caller's volume through POST /shoot with a warm clone waiting, against booting a fresh
// VM per request and against restoring a clone from the snapshot per request (the VM
// layer directly); then shoots/s with pool sizes 1, 2 and 4 under a closed-loop load,
// and what an idle VM costs (CPU share, RSS/PSS of its QEMU process from /proc).
// The warm path is measured twice in the same run: with a store folder the pool binds
// while a clone warms (how every caller got the node's whole store before closure views)
// and with a caller whose /nix/store is its image's closure (a view of BENCH_CLOSURE_PATHS
// toy store paths built with nix, bound per shoot): issue 17 allows the view 1.2x.
// Each warm run also prints where a shoot's time goes: the daemon's phase histogram
// (seed_shoot_phase_seconds, read in process) per shoot, the HTTP round trip around it, and
// the CPU the daemon and its children (QEMU and its helpers) spent per shoot, refill
// included; then the same over the slowest 2% of shoots (the p99's), with GC pauses and
// host steal, to tell a tail of ours from the host's; beside it the floor: one of the same
// pool's idle warm clones given the shoot's host bind and exec directly, without the
// service, sampled through the series.
// Then where one clone's restore spends CPU, phase by phase (restoreProfile): what bounds
// the pool's sustained rate on a small node.
// Everything runs on this machine's cores (QEMU under TCG here): the daemon in this
// process, its callers in a process of their own (caller.ts), as another pod's would be.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  QemuHypervisor,
  SHARE_TARGET,
  STORE_POINT,
  VOLUME_POINTS,
  createShootPoolApp,
  findGuestImage,
  findQemu,
  loadShootPoolConfig,
  processesReferencing,
  type GuestImage,
  type RestorePhase,
  type ShootPoolApp,
  type VmSnapshot,
} from '@seed/shoot-pool';
import { benchSettings, runBench, rowPrinter } from '@seed/testing';
import { ProcessCaller } from './caller';
import {
  MEMORY_MIB,
  TICKS_PER_SECOND,
  cpuMs,
  mountShare,
  primedSnapshot,
  statFields,
  warmUp,
} from './clone';

const {
  // Over 40 samples a p99 was the slowest shoot; over 100 it is the second slowest.
  BENCH_WARM_SAMPLES: WARM_SAMPLES,
  BENCH_RESTORE_SAMPLES: RESTORE_SAMPLES,
  BENCH_BOOT_SAMPLES: BOOT_SAMPLES,
  // Idle pool clones the floor takes each of its three samples in, one sample per clone.
  // As many as the warm series': over 30 the floor's median alone moved warm / floor
  // 1.39-1.59x from run to run for one build; over 100, ten runs gave 1.37-1.50x.
  BENCH_FLOOR_SAMPLES: FLOOR_SAMPLES,
  BENCH_LOAD_S: LOAD_SECONDS,
  BENCH_CLOSURE_PATHS: CLOSURE_PATHS,
} = benchSettings('bench/shoot', {
  BENCH_WARM_SAMPLES: 100,
  BENCH_RESTORE_SAMPLES: 10,
  BENCH_BOOT_SAMPLES: 3,
  BENCH_FLOOR_SAMPLES: 100,
  BENCH_LOAD_S: 8,
  BENCH_CLOSURE_PATHS: 100,
});

interface Setup {
  root: string;
  runRoot: string;
  guestDir: string;
  image: GuestImage;
  /** The QEMU the pool runs (scripts/qemu's, or SEED_QEMU_BINARY). */
  qemu: string;
  store: string;
  volume: string;
  /** A store path whose closure is CLOSURE_PATHS + 1 paths of the node's store. */
  closureImage: { out: string; drv: string };
}

/** Who the local pool serves: a store folder, or an image's closure in /nix/store. */
type CallerStore = { store: string } | { store: '/nix/store'; image: string };

/** Root, no daemon, no network (RUNTIME-NOTES.md, "Nix"). */
const NIX_CONFIG = [
  'experimental-features = nix-command',
  'sandbox = false',
  'build-users-group =',
  'substituters =',
  'max-jobs = 4',
].join('\n');

/** An image-like store path referring to `count` toy paths, and its derivation. */
async function buildClosure(count: number): Promise<{ out: string; drv: string }> {
  const toy = (name: string, script: string) =>
    `derivation { name = ${name}; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${script} ]; }`;
  const expr = `let deps = builtins.genList (i: ${toy('"bench-closure-${toString i}"', '"echo ${toString i} > $out"')}) ${count}; in ${toy('"bench-closure-image"', '"echo ${toString deps} > $out"')}`;
  const { stdout } = await promisify(execFile)(
    'nix',
    ['build', '--impure', '--no-link', '--json', '--expr', expr],
    { env: { ...process.env, NIX_CONFIG }, maxBuffer: 16 << 20 },
  );
  const [built] = JSON.parse(stdout) as { drvPath: string; outputs: { out: string } }[];
  return { out: built!.outputs.out, drv: built!.drvPath };
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

async function timed(run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

async function startApp(
  setup: Setup,
  size: number,
  store: CallerStore = { store: setup.store },
): Promise<{ app: ShootPoolApp; url: string }> {
  // The status token guards `/status`, which this bench does not read over HTTP.
  const statusToken = path.join(setup.root, 'status.token');
  await writeFile(statusToken, randomBytes(16).toString('hex'));
  const config = loadShootPoolConfig({
    SEED_SHOOT_STATUS_TOKEN_FILE: statusToken,
    SEED_SHOOT_HOST: '127.0.0.1',
    SEED_SHOOT_PORT: '0',
    SEED_SHOOT_GRPC_PORT: '0',
    SEED_SHOOT_ACCEL: process.env.BENCH_ACCEL ?? 'tcg',
    SEED_SHOOT_RUN_ROOT: setup.runRoot,
    SEED_GUEST_DIR: setup.guestDir,
    SEED_QEMU_BINARY: setup.qemu,
    SEED_SHOOT_POOL_SIZE: String(size),
    SEED_SHOOT_QUEUE_BOUND: '64',
    SEED_SHOOT_PER_CALLER_LIMIT: '64',
    SEED_SHOOT_MEMORY_MIB: String(MEMORY_MIB),
    SEED_LOG_LEVEL: 'warn',
    SEED_SHOOT_LOCAL_CALLER: JSON.stringify({
      '127.0.0.1': {
        ...store,
        volumes: [{ hostPath: setup.volume, mountPoint: '/data' }],
      },
    }),
  });
  const app = await createShootPoolApp(config);
  await app.http.listen(0, '127.0.0.1');
  const url = (await app.http.getUrl())
    .replace('[::1]', '127.0.0.1')
    .replace('localhost', '127.0.0.1');
  await warmed(app, size);
  return { app, url };
}

async function warmed(app: ShootPoolApp, size: number): Promise<void> {
  for (let i = 0; i < 600; i += 1) {
    const status = app.pool.status();
    if (status.idle === size && status.busy === 0) return;
    await sleep(10);
  }
  throw new Error('the pool did not warm up within 6 s');
}

/** Seconds spent so far in each phase of the daemon's shoots, and the shoots' own total. */
async function phaseTotals(app: ShootPoolApp): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  const phases = await app.metrics.phaseSeconds.get();
  for (const value of phases.values) {
    if (value.metricName === 'seed_shoot_phase_seconds_sum') {
      totals.set(String(value.labels.phase), value.value);
    }
  }
  const shoots = await app.metrics.shootSeconds.get();
  totals.set(
    'shoot',
    shoots.values
      .filter((value) => value.metricName === 'seed_shoot_duration_seconds_sum')
      .reduce((sum, value) => sum + value.value, 0),
  );
  return totals;
}

/**
 * CPU seconds of this process, and of its children (reaped or running) with theirs, but
 * the caller's (a process of the bench's, not of the daemon's). Only
 * this process's own children are read (/proc/self/task/<tid>/children), not every process
 * on the machine: a scan of /proc cost this process ~10 ms per reading, more the busier
 * the machine, which showed as the daemon's CPU per shoot swinging between runs.
 */
function cpuSeconds(caller: ProcessCaller): { daemon: number; children: number } {
  const self = statFields('self');
  let children = self[13]! + self[14]!;
  for (const tid of readdirSync('/proc/self/task')) {
    const pids = readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
    for (const pid of pids === '' ? [] : pids.split(' ').map(Number)) {
      if (pid === caller.pid) continue;
      try {
        const stat = statFields(pid);
        children += stat[11]! + stat[12]! + stat[13]! + stat[14]!;
      } catch {
        // Exited since the listing: its CPU is in cutime/cstime at the next reading.
      }
    }
  }
  return {
    daemon: (self[11]! + self[12]!) / TICKS_PER_SECOND,
    children: children / TICKS_PER_SECOND,
  };
}

/**
 * The machine's CPU time so far, in ticks: all of it, and what the hypervisor under this VM
 * gave to others (steal). Runs of the same build differ by 2x in warm latency; the steal
 * during a series tells a slower host from a slower build.
 */
function hostTicks(): { total: number; steal: number } {
  const fields = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7]! };
}

/** Per shoot: mean ms in each phase, the HTTP round trip's share, and CPU ms. */
type Profile = Map<string, number>;

/** Each shoot's seconds per phase (and CPU), kept so that the slowest can be read apart. */
class ProfileSeries {
  readonly #shoots: Map<string, number>[] = [];

  add(before: Map<string, number>, after: Map<string, number>): void {
    this.#shoots.push(
      new Map([...after].map(([key, value]) => [key, value - (before.get(key) ?? 0)])),
    );
  }

  /** Means in milliseconds over every shoot. */
  means(): Profile {
    return meanMs(this.#shoots);
  }

  /**
   * Means in milliseconds over the slowest 2% of shoots by the client's time: the shoots at
   * and above the p99, which is where a tail's cause shows.
   */
  tail(): Profile {
    const slowest = [...this.#shoots]
      .sort((a, b) => (b.get('http') ?? 0) - (a.get('http') ?? 0))
      .slice(0, Math.max(1, Math.round(this.#shoots.length / 50)));
    return meanMs(slowest);
  }
}

function meanMs(shoots: Map<string, number>[]): Profile {
  const sums = new Map<string, number>();
  for (const shoot of shoots) {
    for (const [key, value] of shoot) sums.set(key, (sums.get(key) ?? 0) + value);
  }
  return new Map([...sums].map(([key, sum]) => [key, (1000 * sum) / shoots.length]));
}

/**
 * Seconds this process has spent in garbage collection pauses: the daemon runs in it, so a
 * pause during a shoot is the shoot's.
 */
let gcSeconds = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcSeconds += entry.duration / 1000;
}).observe({ entryTypes: ['gc'] });

async function measured(app: ShootPoolApp, caller: ProcessCaller): Promise<Map<string, number>> {
  const phases = await phaseTotals(app);
  const cpu = cpuSeconds(caller);
  return new Map([
    ...phases,
    ['cpu-daemon', cpu.daemon],
    ['cpu-children', cpu.children],
    ['gc', gcSeconds],
    ['steal', hostTicks().steal / TICKS_PER_SECOND],
  ]);
}

interface WarmRun {
  true: number[];
  read: number[];
  /** GET /healthz from the same caller between shoots: HTTP alone, no shoot behind it. */
  http: number[];
  profile: { true: ProfileSeries; read: ProfileSeries };
  /** Of the machine's CPU time during the series, the share the host gave to others. */
  stealPercent: number;
  /** Empty unless asked for (floorSamples). */
  floor: Floor;
}

/**
 * Latency of one shoot with a warm clone waiting (the pool refilled between samples), and
 * each shoot's profile: taken from before the request to after the pool is warm again, so
 * the used clone's teardown and its replacement's restore count in its CPU.
 */
async function warmLatency(
  setup: Setup,
  caller: ProcessCaller,
  store: CallerStore,
  floorSamples = 0,
): Promise<WarmRun> {
  const { app, url } = await startApp(setup, 2, store);
  try {
    for (let i = 0; i < 5; i += 1) {
      await caller.shoot(url, ['true']);
      await warmed(app, 2);
    }
    const ticksBefore = hostTicks();
    const samples = { true: [] as number[], read: [] as number[], http: [] as number[] };
    const profile = { true: new ProfileSeries(), read: new ProfileSeries() };
    const sample = async (kind: 'true' | 'read', command: string[]) => {
      const before = await measured(app, caller);
      const ms = await caller.shoot(url, command);
      samples[kind].push(ms);
      await warmed(app, 2);
      const after = await measured(app, caller);
      after.set('http', (before.get('http') ?? 0) + ms / 1000);
      profile[kind].add(before, after);
    };
    // The floor's samples are spread through the series: the host's speed drifts by tens
    // of percent within minutes, and a floor taken after the series compared two moments.
    const floor: Floor = { true: [], bound: [], read: [] };
    for (let i = 0; i < WARM_SAMPLES; i += 1) {
      await sample('true', ['true']);
      await sample('read', ['cat', '/data/in.txt']);
      samples.http.push(await caller.get(url, '/healthz'));
      if (Math.floor(((i + 1) * floorSamples) / WARM_SAMPLES) > floor.true.length) {
        await floorSample(app, setup, floor);
        await warmed(app, 2);
      }
    }
    const ticksAfter = hostTicks();
    return {
      ...samples,
      floor,
      profile,
      stealPercent:
        (100 * (ticksAfter.steal - ticksBefore.steal)) / (ticksAfter.total - ticksBefore.total),
    };
  } finally {
    await app.http.close();
  }
}

/** A clone restored from `snapshot` with its share mounted and the store and volume bound. */
async function preparedClone(hv: QemuHypervisor, snapshot: VmSnapshot, setup: Setup) {
  const vm = await hv.startClone(snapshot, { mountPoints: [STORE_POINT, ...VOLUME_POINTS] });
  try {
    await mountShare(vm);
    vm.bindIntoExport(setup.store, STORE_POINT, { readOnly: true });
    vm.bindIntoExport(setup.volume, VOLUME_POINTS[0]!, { readOnly: false });
    return vm;
  } catch (error) {
    await vm.destroy();
    throw error;
  }
}

/** The floor's samples, ms: `true`, `true` with a guest bind, a volume read. */
interface Floor {
  true: number[];
  bound: number[];
  read: number[];
}

/**
 * One sample of the floor: what the shoot's own work takes in one of the pool's warm clones
 * left idle, driven directly (no HTTP, no service around it): the volume bound into the
 * clone's export on the host, as a shoot binds it (the issue's floor made its binds with
 * the mount(2) syscall too), then the agent's exec. For each kind: `true`; `true` with a
 * guest bind of the volume onto a new mount point (what a shoot's guest bind costs in the
 * clone); and a read from the volume, bound in the guest only if the clone did not bind it
 * ahead (the layout last served), as a shoot's would be. The warm series' own pool, so its
 * own template: clones of another template's snapshot ran the same exec 8.5-16.3 ms at the
 * median from run to run.
 */
async function floorSample(app: ShootPoolApp, setup: Setup, samples: Floor): Promise<void> {
  const volumeOn = (target: string) => ({
    source: `${SHARE_TARGET}/${VOLUME_POINTS[0]!}`,
    target,
    readOnly: false,
  });
  for (const kind of ['true', 'bound', 'read'] as const) {
    await warmed(app, 2);
    await sleep(200); // idle, as a warm clone waits
    const lease = await app.pool.acquire('bench-floor');
    try {
      const bindsData = !lease.prepared.some((bind) => bind.target === '/data');
      const request = {
        argv: kind === 'read' ? ['cat', '/data/in.txt'] : ['true'],
        timeoutMs: 10_000,
        binds: {
          true: [],
          bound: [volumeOn('/bound')],
          read: bindsData ? [volumeOn('/data')] : [],
        }[kind],
      };
      samples[kind].push(
        await timed(async () => {
          lease.vm.bindIntoExport(setup.volume, VOLUME_POINTS[0]!, { readOnly: false });
          const result = await lease.vm.agent.exec(request);
          if (result.exitCode !== 0) throw new Error(`floor ${kind} exited ${result.exitCode}`);
        }),
      );
    } finally {
      await lease.release();
    }
  }
}

/** Per request: boot a VM from the image, run the command, destroy it. */
async function bootLatency(setup: Setup): Promise<number[]> {
  const hv = new QemuHypervisor({
    runRoot: path.join(setup.root, 'boot'),
    qemuBinary: setup.qemu,
    accel: 'tcg',
  });
  const samples: number[] = [];
  for (let i = 0; i < BOOT_SAMPLES; i += 1) {
    samples.push(
      await timed(async () => {
        const vm = await hv.startTemplate({ image: setup.image, memoryMiB: MEMORY_MIB, vcpus: 1 });
        try {
          await vm.agent.exec({ argv: ['true'], timeoutMs: 10_000 });
        } finally {
          await vm.destroy();
        }
      }),
    );
  }
  return samples;
}

/** Per request: restore a clone from the snapshot, mount the share, bind, run, destroy. */
async function restoreLatency(setup: Setup): Promise<{ true: number[]; read: number[] }> {
  const hv = new QemuHypervisor({
    runRoot: path.join(setup.root, 'restore'),
    qemuBinary: setup.qemu,
    accel: 'tcg',
  });
  const snapshot = await primedSnapshot(hv, setup.image);
  const once = async (argv: string[]) => {
    const vm = await preparedClone(hv, snapshot, setup);
    try {
      await vm.agent.bind({
        source: `${SHARE_TARGET}/${VOLUME_POINTS[0]!}`,
        target: '/data',
        readOnly: false,
      });
      const result = await vm.agent.exec({ argv, timeoutMs: 10_000 });
      if (result.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${result.exitCode}`);
    } finally {
      await vm.destroy();
    }
  };
  try {
    await once(['true']);
    const samples = { true: [] as number[], read: [] as number[] };
    for (let i = 0; i < RESTORE_SAMPLES; i += 1) {
      samples.true.push(await timed(() => once(['true'])));
      samples.read.push(await timed(() => once(['cat', '/data/in.txt'])));
    }
    return samples;
  } finally {
    await snapshot.destroy();
  }
}

/** A restore's phases as the profile prints them: the driver's, then the pool's warm-up. */
const RESTORE_PHASES: [key: RestorePhase | 'warm' | 'idle', label: string][] = [
  ['started', 'QEMU start to `-incoming` ready (QMP up)'],
  ['loaded', 'migration load + `cont` (running)'],
  ['answered', 'running to agent answer'],
  ['woken', 'clock set + RNG reseed'],
  ['warm', "pool's warm-up: mount share + first exec"],
  ['idle', 'idle afterwards, per second'],
];
const IDLE_MS = 1000;

/** Per-phase means of one restore: CPU of the clone's QEMU, of this process, and wall time. */
type RestoreProfile = Map<string, { qemu: number; daemon: number; wall: number }>;

/**
 * Where one clone's restore spends CPU: the QEMU process's utime + stime (every thread,
 * the guest's vCPU included: under TCG the guest's work is QEMU's) and this process's
 * (QMP, the agent client, the migration stream), read at each phase boundary the driver
 * reports, then through the pool's warm-up (mount the share, first exec) and IDLE_MS idle.
 */
async function restoreProfile(setup: Setup): Promise<RestoreProfile> {
  const hv = new QemuHypervisor({
    runRoot: path.join(setup.root, 'profile'),
    qemuBinary: setup.qemu,
    accel: 'tcg',
  });
  const snapshot = await primedSnapshot(hv, setup.image);
  const sums: RestoreProfile = new Map(
    RESTORE_PHASES.map(([key]) => [key, { qemu: 0, daemon: 0, wall: 0 }]),
  );
  try {
    for (let i = 0; i <= RESTORE_SAMPLES; i += 1) {
      const marks: { key: string; qemu: number; daemon: number; wall: number }[] = [];
      /** Milliseconds so far; before QEMU exists (`vmmPid` undefined) its CPU is 0. */
      const mark = (key: string, vmmPid: number | undefined) => {
        const cpu = process.cpuUsage();
        marks.push({
          key,
          qemu: vmmPid === undefined ? 0 : cpuMs(vmmPid),
          daemon: (cpu.user + cpu.system) / 1000,
          wall: performance.now(),
        });
      };
      mark('spawn', undefined);
      const vm = await hv.startClone(snapshot, {
        mountPoints: [STORE_POINT, ...VOLUME_POINTS],
        onPhase: mark,
      });
      try {
        await warmUp(vm);
        mark('warm', vm.pid);
        await sleep(IDLE_MS);
        mark('idle', vm.pid);
      } finally {
        await vm.destroy();
      }
      if (i === 0) continue; // the first restore of a snapshot pays for the page cache
      for (let m = 1; m < marks.length; m += 1) {
        const sum = sums.get(marks[m]!.key)!;
        const scale = marks[m]!.key === 'idle' ? 1000 / IDLE_MS : 1;
        sum.qemu += (scale * (marks[m]!.qemu - marks[m - 1]!.qemu)) / RESTORE_SAMPLES;
        sum.daemon += (scale * (marks[m]!.daemon - marks[m - 1]!.daemon)) / RESTORE_SAMPLES;
        sum.wall += (scale * (marks[m]!.wall - marks[m - 1]!.wall)) / RESTORE_SAMPLES;
      }
    }
    return sums;
  } finally {
    await snapshot.destroy();
  }
}

function printRestoreProfile(profile: RestoreProfile): void {
  console.log(
    `restore of one clone, mean ms per phase over ${RESTORE_SAMPLES} (CPU: QEMU | this process; wall):`,
  );
  const line = rowPrinter(52);
  const total = { qemu: 0, daemon: 0, wall: 0 };
  for (const [key, label] of RESTORE_PHASES) {
    const p = profile.get(key)!;
    line(`  ${label}`, `${p.qemu.toFixed(1)} | ${p.daemon.toFixed(1)}; ${p.wall.toFixed(1)}`);
    if (key === 'idle') continue;
    total.qemu += p.qemu;
    total.daemon += p.daemon;
    total.wall += p.wall;
    if (key === 'woken' || key === 'warm') {
      line(
        `  = restored${key === 'warm' ? ' and warm' : ''} (aim: CPU <= 150 ms)`,
        `${total.qemu.toFixed(1)} | ${total.daemon.toFixed(1)}; ${total.wall.toFixed(1)}`,
      );
    }
  }
}

/** Closed-loop `true` shoots, 2 x size clients, for LOAD_SECONDS: shoots per second. */
async function throughput(caller: ProcessCaller, url: string, size: number): Promise<number> {
  const deadline = performance.now() + LOAD_SECONDS * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: size * 2 }, async () => {
      while (performance.now() < deadline) {
        await caller.shoot(url, ['true']);
        done += 1;
      }
    }),
  );
  return done / LOAD_SECONDS;
}

/** CPU ticks (utime + stime) of a process. */
async function memoryKiB(pid: number): Promise<{ rss: number; pss: number }> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const value = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  return { rss: value('Rss'), pss: value('Pss') };
}

/** Mean CPU share (of one core) and memory of the idle clones' QEMU processes. */
async function idleCost(
  runRoot: string,
): Promise<{ cpuPercent: number; rssMiB: number; pssMiB: number; vms: number }> {
  const pids = await processesReferencing(`${runRoot}/`);
  const before = pids.map(cpuMs);
  const seconds = 5;
  await sleep(seconds * 1000);
  const after = pids.map(cpuMs);
  const cpu = after.reduce((sum, ms, i) => sum + ms - before[i]!, 0) / 1000 / seconds;
  const memory = await Promise.all(pids.map(memoryKiB));
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return {
    vms: pids.length,
    cpuPercent: (100 * cpu) / pids.length,
    rssMiB: mean(memory.map((m) => m.rss)) / 1024,
    pssMiB: mean(memory.map((m) => m.pss)) / 1024,
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const image = await findGuestImage(process.env.SEED_GUEST_DIR);
  const root = await mkdtemp(path.join(tmpdir(), 'bench-shoot-'));
  const setup: Setup = {
    root,
    runRoot: path.join(root, 'pool'),
    guestDir: path.dirname(image.kernel),
    image,
    qemu: await findQemu(process.env.SEED_QEMU_BINARY),
    store: path.join(root, 'store'),
    volume: path.join(root, 'volume'),
    closureImage: await buildClosure(CLOSURE_PATHS),
  };
  await mkdir(setup.store);
  await mkdir(setup.volume);
  await writeFile(path.join(setup.volume, 'in.txt'), 'x'.repeat(4096));
  const caller = new ProcessCaller();
  try {
    const warm = await warmLatency(setup, caller, { store: setup.store }, FLOOR_SAMPLES);
    const { floor } = warm;
    const view = await warmLatency(setup, caller, {
      store: '/nix/store',
      image: setup.closureImage.out,
    });
    const restore = await restoreLatency(setup);
    const restoreCpu = await restoreProfile(setup);
    const boot = await bootLatency(setup);
    const rates: Record<number, number> = {};
    let idle: Awaited<ReturnType<typeof idleCost>> | undefined;
    for (const size of [1, 2, 4]) {
      const { app, url } = await startApp(setup, size);
      try {
        if (size === 4) idle = await idleCost(setup.runRoot);
        await throughput(caller, url, size); // nothing warm-up: a short round first
        rates[size] = await throughput(caller, url, size);
      } finally {
        await app.http.close();
      }
    }

    const ms = (value: number) => `${value.toFixed(1)} ms`;
    const line = rowPrinter(52);
    const p50 = (samples: number[]) => percentile(samples, 50);
    console.log(
      `bench/shoot: QEMU TCG, ${MEMORY_MIB} MiB, 1 vCPU; ${WARM_SAMPLES} warm, ${RESTORE_SAMPLES} restore, ${FLOOR_SAMPLES} floor, ${BOOT_SAMPLES} boot samples`,
    );
    for (const [label, samples] of [
      ['warm pool, POST /shoot `true`', warm.true],
      ['warm pool, POST /shoot read from volume', warm.read],
      [`warm, closure view (${CLOSURE_PATHS + 1} paths), \`true\``, view.true],
      ['warm, closure view, read from volume', view.read],
      ['restore per request (VM layer), `true`', restore.true],
      ['restore per request (VM layer), read from volume', restore.read],
      ['boot per request (VM layer), `true`', boot],
    ] as const) {
      line(label, `p50 ${ms(p50(samples))}, p99 ${ms(percentile(samples, 99))}`);
    }
    line('floor: idle warmed clone, host bind + exec `true`', `p50 ${ms(p50(floor.true))}`);
    line('floor: idle warmed clone, `true` with the guest bind', `p50 ${ms(p50(floor.bound))}`);
    line('floor: idle warmed clone, volume read', `p50 ${ms(p50(floor.read))}`);
    line('warm p50 `true` (aim <= 20 ms)', ms(p50(warm.true)));
    line(
      'warm / floor p50 `true` (aim <= 1.5x)',
      `${(p50(warm.true) / p50(floor.true)).toFixed(2)}x`,
    );
    // What the service adds to the floor, beside what HTTP alone costs on this machine: a
    // round trip to the same daemon's /healthz, from the same caller, between the shoots.
    line(
      'warm − floor p50 `true`; GET /healthz p50',
      `${ms(p50(warm.true) - p50(floor.true))}; ${ms(p50(warm.http))}`,
    );
    line(
      'host steal during the warm series (this VM waiting for its host)',
      `${warm.stealPercent.toFixed(1)}% | ${view.stealPercent.toFixed(1)}% of CPU time`,
    );
    printProfile(warm, view);
    printRestoreProfile(restoreCpu);
    line(
      'closure view / pre-bound store, warm p50 `true` (aim <= 1.2x)',
      `${(p50(view.true) / p50(warm.true)).toFixed(2)}x`,
    );
    line('boot / warm p50 (aim >= 50x)', `${(p50(boot) / p50(warm.true)).toFixed(1)}x`);
    line(
      'restore / warm p50 `true` (aim >= 10x)',
      `${(p50(restore.true) / p50(warm.true)).toFixed(1)}x`,
    );
    line('restore / warm p50 volume read', `${(p50(restore.read) / p50(warm.read)).toFixed(1)}x`);
    for (const [size, rate] of Object.entries(rates)) {
      line(
        `pool size ${size}, ${Number(size) * 2} clients, \`true\``,
        `${rate.toFixed(1)} shoots/s`,
      );
    }
    if (idle !== undefined) {
      line(
        `idle VM (mean of ${idle.vms} QEMU processes)`,
        `CPU ${idle.cpuPercent.toFixed(1)}% of a core, RSS ${idle.rssMiB.toFixed(0)} MiB, PSS ${idle.pssMiB.toFixed(0)} MiB`,
      );
    }
    line('bench wall time', `${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await caller.close();
    await rm(root, { recursive: true, force: true });
    // The toy closure and its derivations are nobody's (no GC root): leave the store as
    // it was (nix deletes the outputs before the derivations).
    const requisites = async (of: string) =>
      (await promisify(execFile)('nix-store', ['--query', '--requisites', of])).stdout
        .split('\n')
        .filter(Boolean);
    const made = [
      ...(await requisites(setup.closureImage.out)),
      ...(await requisites(setup.closureImage.drv)),
    ];
    await promisify(execFile)('nix-store', ['--delete', ...new Set(made)]);
  }
}

const PROFILE_ROWS: [key: string, label: string][] = [
  ['receive', 'HTTP: routed, body read, to the service'],
  ['parse', 'parse the request (zod)'],
  ['caller', 'caller check'],
  ['store-view', 'store view (built once per image)'],
  ['lease', 'lease a warm clone'],
  ['host-binds', 'host binds (store view + volume)'],
  ['agent', 'agent round trip (guest binds + exec)'],
  ['shoot', 'the service, end to end'],
  ['answer', 'HTTP: answer serialized and written'],
  ['http', 'client: POST /shoot, end to end'],
  ['gc', 'GC pauses here (daemon + bench), to warm again'],
  ['steal', 'host steal, both cores, to warm again'],
  ['teardown', 'after the answer: teardown (wall)'],
  ['cpu-daemon', 'CPU per shoot: daemon (and this bench)'],
  ['cpu-children', 'CPU per shoot: QEMU and helpers (refill too)'],
];

/**
 * Mean ms per shoot, per phase, for the four warm series side by side: over every shoot,
 * then over the slowest 2% (the p99's).
 */
function printProfile(warm: WarmRun, view: WarmRun): void {
  const series: [string, ProfileSeries][] = [
    ['`true`', warm.profile.true],
    ['read', warm.profile.read],
    ['view `true`', view.profile.true],
    ['view read', view.profile.read],
  ];
  const names = series.map(([name]) => name).join(' | ');
  const line = rowPrinter(52);
  for (const [title, columns] of [
    [
      `per-shoot profile, mean ms (${names}); HTTP in+out = client − service:`,
      series.map(([, profile]) => profile.means()),
    ],
    [
      `the slowest 2% of shoots (the p99's), mean ms (${names}):`,
      series.map(([, profile]) => profile.tail()),
    ],
  ] as const) {
    console.log(title);
    const cell = (profile: Profile, key: string) => (profile.get(key) ?? 0).toFixed(1);
    for (const [key, label] of PROFILE_ROWS) {
      line(`  ${label}`, columns.map((profile) => cell(profile, key)).join(' | '));
      if (key === 'http') {
        line(
          '  HTTP in + answer out (client − service)',
          columns.map((p) => ((p.get('http') ?? 0) - (p.get('shoot') ?? 0)).toFixed(1)).join(' | '),
        );
      }
    }
  }
}

runBench('bench/shoot', main);
