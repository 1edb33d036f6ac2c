// The QEMU driver, following the recipe measured on the project's machines
// (/work/shared/RUNTIME-NOTES.md, "microVMs (QEMU)"):
// - microvm machine booting the uncompressed vmlinux (PVH) with the initramfs;
// - TCG unless KVM is asked for, or `auto` and a short probe boot under KVM answers (the
//   nested KVM on these hosts exists but guests crawl on it);
// - guest memory in a file under /dev/shm: the template maps it shared, so with the
//   `x-ignore-shared` capability a snapshot is only the ~60 KB device state; clones map
//   the same file private (copy-on-write) and restore in ~0.3 s under TCG;
// - snapshot = stop + migrate to a Unix socket the driver writes into the state file (7.2
//   has no `file:` URI, and `exec:` would need a shell, which the sandbox forbids) with the
//   bandwidth cap raised; restore = the same command line + `-incoming defer`, then
//   `migrate-incoming` on a Unix socket the driver streams the file into, and `cont`;
// - every QEMU runs as an unprivileged uid of its own (vm-uids.ts) under its seccomp
//   sandbox: no setuid, no exec, no scheduler or resource changes (qemu-command.ts);
// - the agent on a virtio-serial port (no vsock without /dev/vhost-vsock), the share over
//   9p, no network device at all.
import { randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { access, link, mkdir, readFile, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../agent/agent.client';
import { CleanupStack } from './cleanup-stack';
import {
  VM_ID_PATTERN,
  VmError,
  guestKernel,
  type CloneSpec,
  type CloneVm,
  type GuestImage,
  type Hypervisor,
  type MicroVm,
  type ReapReport,
  type RestorePhase,
  type TemplateSpec,
  type VmRole,
  type VmShare,
  type VmSnapshot,
} from './hypervisor';
import { removeUnmountedTree } from '@seed/mount-table';
import { ManagedSnapshot, ManagedVm, VmLaunch, wakeClone } from './managed-vm';
import { QmpClient } from './qmp.client';
import { guestCmdline, hostTscKhz, qemuArgs, type Accel } from './qemu-command';
import { reapOrphans } from './reap-orphans';
import { MAX_SOCKET_PATH, RunLayout, writeRecord } from './run-dir';
import { silentLog, type VmLog } from './vm-log';
import { RESTORE_NICENESS, spawnVmm } from './vmm-process';
import { DEFAULT_VM_UIDS, VmUids, runAsVmUser, type UidRange } from './vm-uids';

export { reapOrphans } from './reap-orphans';

export interface QemuHypervisorOptions {
  /** Every VM's files go under it (see run-dir.ts); no other process may use it. */
  runRoot: string;
  /** Where guest memory files go: a tmpfs. */
  shmDir?: string;
  /** The qemu-system-x86_64 to run: findQemu() finds the one scripts/qemu builds. */
  qemuBinary: string;
  /** `auto` (default): KVM if a probe boot under it answers in time, else TCG. */
  accel?: Accel | 'auto';
  /**
   * How long the KVM probe may take to reach the agent. A working KVM boots this guest in
   * well under a second; TCG takes ~3 s, and a KVM slower than that is no gain.
   */
  kvmProbeTimeoutMs?: number;
  /** The share's mount tag in the guest. */
  shareTag?: string;
  /** Host TSC frequency for the guest's tsc_early_khz; read from the host by default. */
  tscKhz?: number;
  /** The uids VMs run as, one each (vm-uids.ts); no other process may use them. */
  vmUids?: UidRange;
  log?: VmLog;
}

/** What a clone must reproduce exactly: the template's machine. */
interface MachineSpec {
  accel: Accel;
  memoryMiB: number;
  vcpus: number;
  image: GuestImage;
  cmdline: string;
}

const MAX_MIGRATION_BANDWIDTH = 8 * 1024 * 1024 * 1024; // bytes/s; QEMU's default is 128 MiB/s
const SNAPSHOT_TIMEOUT_MS = 30_000;
const POLL_MS = 5;

export class QemuHypervisor implements Hypervisor {
  readonly kind = 'qemu';
  readonly runRoot: string;
  readonly #layout: RunLayout;
  readonly #qemu: string;
  readonly #accel: Accel | 'auto';
  readonly #kvmProbeTimeoutMs: number;
  readonly #shareTag: string;
  readonly #log: VmLog;
  readonly #uids: VmUids;
  #tscKhz: number | undefined;
  #resolvedAccel: Promise<Accel> | undefined;

  constructor(options: QemuHypervisorOptions) {
    this.runRoot = path.resolve(options.runRoot);
    this.#layout = new RunLayout(this.runRoot, options.shmDir ?? '/dev/shm');
    this.#qemu = options.qemuBinary;
    this.#accel = options.accel ?? 'auto';
    this.#kvmProbeTimeoutMs = options.kvmProbeTimeoutMs ?? 2_500;
    this.#shareTag = options.shareTag ?? 'shoot';
    this.#tscKhz = options.tscKhz;
    this.#uids = new VmUids(options.vmUids ?? DEFAULT_VM_UIDS);
    this.#log = options.log ?? silentLog;
  }

  /** The accelerator VMs get: the explicit setting, or the probe's answer (asked once). */
  accelFor(image: GuestImage): Promise<Accel> {
    if (this.#accel !== 'auto') return Promise.resolve(this.#accel);
    this.#resolvedAccel ??= this.#probeKvm(image);
    return this.#resolvedAccel;
  }

  async startTemplate(spec: TemplateSpec): Promise<MicroVm> {
    const id = spec.id ?? `tpl-${randomBytes(4).toString('hex')}`;
    checkMachine(id, spec);
    const accel = await this.accelFor(spec.image);
    const machine: MachineSpec = {
      accel,
      memoryMiB: spec.memoryMiB,
      vcpus: spec.vcpus,
      image: spec.image,
      cmdline: guestCmdline(await this.#hostTscKhz(), accel),
    };
    return this.#boot(id, 'template', machine, spec.bootTimeoutMs ?? 60_000);
  }

  async snapshot(template: MicroVm): Promise<VmSnapshot> {
    const source = this.#own(template);
    if (source.role !== 'template' || source.destroyed) {
      throw new VmError('invalid', template.id, 'only a running template can be snapshotted');
    }
    const id = `snap-${randomBytes(4).toString('hex')}`;
    const dir = this.#layout.snapshotDir(id);
    const stack = new CleanupStack();
    const statePath = path.join(dir, 'state.bin');
    const migrationSocket = path.join(dir, 'migrate.sock');
    const ramFile = this.#layout.ramFile(id);
    try {
      await mkdirFresh(dir);
      await stack.push('remove snapshot directory', () => removeUnmountedTree(dir));
      await writeRecord(path.join(dir, 'snapshot.json'), {
        vmm: 'qemu',
        id,
        from: template.id,
        ramFiles: [ramFile],
        machine: source.machine,
      });
      // A clone's virtio-serial port starts with no host connected; save the template
      // the same way, so its agent is idle-polling rather than mid-read.
      source.agent.close();
      const qmp = source.qmp;
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'x-ignore-shared', state: true }],
      });
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': MAX_MIGRATION_BANDWIDTH });
      await qmp.execute('stop');
      const received = await receiveMigration(migrationSocket, statePath);
      try {
        await qmp.execute('migrate', { uri: `unix:${migrationSocket}` });
        await waitForMigration(qmp, SNAPSHOT_TIMEOUT_MS, source.launch.vmmExit.signal);
        await received.written;
      } finally {
        await received.close();
      }
      // The memory file is the rest of the snapshot. A second name keeps it when the
      // template's own name is removed with the template.
      await link(source.ramFile, ramFile);
      await stack.push('remove snapshot memory', () => unlinkIfPresent(ramFile));
    } catch (error) {
      await stack.run();
      await source.destroy();
      throw new VmError('snapshot', template.id, `snapshot failed: ${String(error)}`, {
        cause: error,
      });
    }
    await source.destroy();
    this.#log.info({ vmId: template.id, snapshotId: id }, 'template snapshotted');
    return new QemuSnapshot(this, id, dir, statePath, ramFile, source.machine, stack);
  }

  async startClone(snapshot: VmSnapshot, spec: CloneSpec = {}): Promise<CloneVm> {
    if (!(snapshot instanceof QemuSnapshot) || snapshot.hypervisor !== this) {
      throw new VmError('invalid', snapshot.id, 'snapshot was not made by this QEMU driver');
    }
    if (snapshot.destroyed) throw new VmError('invalid', snapshot.id, 'snapshot is destroyed');
    const id = spec.id ?? `clone-${randomBytes(4).toString('hex')}`;
    if (!VM_ID_PATTERN.test(id)) throw new VmError('invalid', id, 'id must match [a-z0-9-]{1,40}');

    const deadline = Date.now() + (spec.readyTimeoutMs ?? 30_000);
    const launch = await this.#launch(id, 'clone', snapshot.machine, {
      ramFile: snapshot.ramFile,
      ownsRam: false,
      incoming: true,
      mountPoints: spec.mountPoints ?? [],
    });
    const { vm, qmp } = launch;
    const phase = (name: RestorePhase) => spec.onPhase?.(name, vm.pid);
    phase('started');
    try {
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'x-ignore-shared', state: true }],
      });
      // QEMU listens once this returns; the driver streams the state file into it.
      const incoming = path.join(vm.runDir, 'incoming.sock');
      await qmp.execute('migrate-incoming', { uri: `unix:${incoming}` });
      const sent = sendMigration(incoming, snapshot.statePath);
      // Accepted while the stream loads: the VM runs as soon as it is in.
      await qmp.execute('cont');
      await Promise.all([
        sent,
        waitUntilRunning(qmp, deadline - Date.now(), vm.launch.vmmExit.signal),
      ]);
      phase('loaded');
      await vm.agent.waitReady({
        timeoutMs: Math.max(deadline - Date.now(), 1),
        signal: vm.launch.vmmExit.signal,
      });
      phase('answered');
      // The guest wakes with the snapshot's clock and RNG state.
      await wakeClone(vm.agent, vm.launch.vmmExit.signal);
      phase('woken');
    } catch (error) {
      return vm.launch.fail('restore', `restore failed: ${await explain(error, vm.launch)}`, error);
    }
    return vm;
  }

  reapOrphans(): Promise<ReapReport> {
    return reapOrphans(this.runRoot, this.#layout.shmDir);
  }

  /**
   * How many translation blocks a TCG VM's QEMU has made so far (`info jit`): under TCG
   * nearly all of a clone's CPU is translating guest code afresh, and unlike CPU time the
   * count does not move with the host's speed, so guest images compare by it (bench/shoot
   * compare-guests). Asking costs the QEMU some CPU of its own.
   */
  async translationBlocks(vm: MicroVm): Promise<number> {
    const report = await this.#own(vm).qmp.execute<string>('human-monitor-command', {
      'command-line': 'info jit',
    });
    const count = /^TB count\s+(\d+)/m.exec(report);
    if (count === null) {
      throw new VmError('invalid', vm.id, `no TB count in info jit (not TCG?): ${report.trim()}`);
    }
    return Number(count[1]);
  }

  /** Boots a fresh VM and waits for its agent. */
  async #boot(id: string, role: VmRole, machine: MachineSpec, timeoutMs: number): Promise<QemuVm> {
    const { vm } = await this.#launch(id, role, machine, {
      ramFile: this.#layout.ramFile(id),
      ownsRam: true,
      incoming: false,
      mountPoints: [],
    });
    try {
      await vm.agent.waitReady({ timeoutMs, signal: vm.launch.vmmExit.signal });
    } catch (error) {
      return vm.launch.fail(
        'boot',
        `guest agent did not answer: ${await explain(error, vm.launch)}`,
        error,
      );
    }
    return vm;
  }

  /**
   * Starts a QEMU process for a VM and connects QMP and the agent client, registering
   * each resource's undo as it is acquired. Does not wait for the guest.
   */
  async #launch(
    id: string,
    role: VmRole,
    machine: MachineSpec,
    memory: {
      ramFile: string;
      ownsRam: boolean;
      incoming: boolean;
      mountPoints: readonly string[];
    },
  ): Promise<{ vm: QemuVm; qmp: QmpClient }> {
    const runDir = this.#layout.vmDir(id);
    const launch = new VmLaunch(id, role, runDir, this.#log);
    const files = {
      qmpSocket: path.join(runDir, 'qmp.sock'),
      agentSocket: path.join(runDir, 'agent.sock'),
      consoleLog: path.join(runDir, 'console.log'),
      pidFile: path.join(runDir, 'qemu.pid'),
    };
    // The longest socket path of the VM (incoming.sock, for a restore).
    if (path.join(runDir, 'incoming.sock').length > MAX_SOCKET_PATH) {
      throw new VmError('invalid', id, `run directory too long for Unix sockets: ${runDir}`);
    }
    try {
      await launch.createRunDir();
      if (memory.ownsRam) {
        await launch.stack.push('remove memory file', () => unlinkIfPresent(memory.ramFile));
      }
      const exportDir = await launch.createExport(memory.mountPoints);
      const uid = this.#uids.take();
      // Runs after the VMM is killed: the uid is free only when nothing runs as it.
      await launch.stack.push('release VM uid', () => this.#uids.release(uid));
      // Written before QEMU starts, so a crash right after still leaves it findable.
      await launch.writeRecord({
        vmm: 'qemu',
        id,
        role,
        uid,
        ramFiles: memory.ownsRam ? [memory.ramFile] : [],
        machine,
      });
      const args = qemuArgs({
        accel: machine.accel,
        memoryMiB: machine.memoryMiB,
        vcpus: machine.vcpus,
        kernel: guestKernel(machine.image, machine.vcpus),
        initramfs: machine.image.initramfs,
        cmdline: machine.cmdline,
        ramFile: memory.ramFile,
        shareRam: memory.ownsRam,
        incoming: memory.incoming,
        exportDir,
        shareTag: this.#shareTag,
        ...files,
      });
      let process;
      try {
        // A clone restores at a lower priority than the daemon's (nice, inherited by every
        // thread QEMU starts): a refill must not slow the shoots running beside it on a
        // small node. The pool raises it back once the clone is warm (prioritize).
        const argv = ['setpriv', ...runAsVmUser(uid, this.#qemu, args)];
        process = await spawnVmm(
          role === 'clone' ? 'nice' : argv[0]!,
          role === 'clone' ? ['-n', String(RESTORE_NICENESS), ...argv] : argv.slice(1),
          path.join(runDir, 'vmm.log'),
        );
      } catch (error) {
        throw new VmError('spawn', id, `cannot start ${this.#qemu}: ${String(error)}`, {
          cause: error,
          retryable: false,
        });
      }
      await launch.track(process);

      let qmp: QmpClient;
      try {
        qmp = await QmpClient.connect(files.qmpSocket, {
          timeoutMs: 10_000,
          signal: launch.vmmExit.signal,
        });
      } catch (error) {
        throw new VmError('spawn', id, `QEMU did not come up: ${await explain(error, launch)}`, {
          cause: error,
          consoleTail: await launch.consoleTail(),
        });
      }
      await launch.stack.push('close QMP', () => qmp.close());

      const agent = new AgentClient(() => connectUnix(files.agentSocket), { label: id });
      await launch.stack.push('close agent connection', () => agent.close());
      const vm = new QemuVm(launch, process.pid, agent, qmp, machine, memory.ramFile, {
        tag: this.#shareTag,
        fstype: '9p',
        hostDir: exportDir,
      });
      return { vm, qmp };
    } catch (error) {
      return launch.fail(error instanceof VmError ? error.kind : 'host', String(error), error);
    }
  }

  /** Boots a throwaway VM under KVM; KVM is used only if its agent answers in time. */
  async #probeKvm(image: GuestImage): Promise<Accel> {
    try {
      await access('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch {
      this.#log.info({ accel: 'tcg' }, 'no usable /dev/kvm: using TCG');
      return 'tcg';
    }
    const id = `kvm-probe-${randomBytes(3).toString('hex')}`;
    const started = Date.now();
    try {
      const machine: MachineSpec = {
        accel: 'kvm',
        memoryMiB: 256,
        vcpus: 1,
        image,
        cmdline: guestCmdline(await this.#hostTscKhz(), 'kvm'),
      };
      const vm = await this.#boot(id, 'template', machine, this.#kvmProbeTimeoutMs);
      await vm.destroy();
      this.#log.info({ accel: 'kvm', probeMs: Date.now() - started }, 'KVM probe boot answered');
      return 'kvm';
    } catch (error) {
      this.#log.info(
        { accel: 'tcg', probeMs: Date.now() - started, err: String(error) },
        'KVM probe boot failed or was too slow: using TCG',
      );
      return 'tcg';
    }
  }

  async #hostTscKhz(): Promise<number> {
    if (this.#tscKhz === undefined) {
      const sysfs = await readFile('/sys/devices/system/cpu/cpu0/tsc_freq_khz', 'utf8').catch(
        () => undefined,
      );
      this.#tscKhz = hostTscKhz(await readFile('/proc/cpuinfo', 'utf8'), sysfs);
    }
    return this.#tscKhz;
  }

  #own(vm: MicroVm): QemuVm {
    if (!(vm instanceof QemuVm) || vm.launch.runDir !== this.#layout.vmDir(vm.id)) {
      throw new VmError('invalid', vm.id, 'VM was not started by this QEMU driver');
    }
    return vm;
  }
}

/** A QEMU VM: the shared VM plus its QMP connection and machine. */
class QemuVm extends ManagedVm {
  // Templates too: QEMU can snapshot a VM with a 9p device, as long as it is not mounted.
  declare readonly share: VmShare;

  constructor(
    launch: VmLaunch,
    pid: number,
    agent: AgentClient,
    readonly qmp: QmpClient,
    readonly machine: MachineSpec,
    readonly ramFile: string,
    share: VmShare,
  ) {
    super(launch, pid, agent, share);
  }
}

class QemuSnapshot extends ManagedSnapshot<QemuHypervisor, MachineSpec> {
  constructor(
    hypervisor: QemuHypervisor,
    id: string,
    dir: string,
    readonly statePath: string,
    readonly ramFile: string,
    machine: MachineSpec,
    stack: CleanupStack,
  ) {
    super(hypervisor, id, dir, machine, stack);
  }
}

function checkMachine(id: string, spec: TemplateSpec): void {
  if (!VM_ID_PATTERN.test(id)) throw new VmError('invalid', id, 'id must match [a-z0-9-]{1,40}');
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 64) {
    throw new VmError('invalid', id, 'memoryMiB must be an integer of at least 64');
  }
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > 64) {
    throw new VmError('invalid', id, 'vcpus must be an integer from 1 to 64');
  }
}

/** Polls query-migrate until the outgoing migration completed (or failed, or QEMU died). */
async function waitForMigration(
  qmp: QmpClient,
  timeoutMs: number,
  exit: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (info.status === 'completed') return;
    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new Error(`migration ${info.status}: ${info['error-desc'] ?? 'no reason given'}`);
    }
    if (exit.aborted) throw new Error('QEMU exited during the migration');
    if (Date.now() > deadline) throw new Error(`migration not done after ${timeoutMs} ms`);
    await sleep(POLL_MS);
  }
}

/** Polls until an incoming VM runs: the stream is loaded and `cont` took effect. */
async function waitUntilRunning(
  qmp: QmpClient,
  timeoutMs: number,
  exit: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await qmp.execute<{ running: boolean; status: string }>('query-status');
    if (status.running) return;
    if (status.status !== 'inmigrate' && status.status !== 'restore-vm') {
      const migration = await qmp.execute<{ status?: string; 'error-desc'?: string }>(
        'query-migrate',
      );
      if (migration.status === 'failed') {
        throw new Error(
          `incoming migration failed: ${migration['error-desc'] ?? 'no reason given'}`,
        );
      }
      // Loaded but paused (e.g. `cont` raced the end of the load): start it.
      if (migration.status === 'completed') await qmp.execute('cont');
    }
    if (exit.aborted) throw new Error('QEMU exited during the restore');
    if (Date.now() > deadline)
      throw new Error(`VM not running after ${timeoutMs} ms (${status.status})`);
    await sleep(POLL_MS);
  }
}

/**
 * Listens on `socketPath` for QEMU's outgoing migration and writes the stream to `file`;
 * `written` settles when QEMU closed the stream and the file is flushed.
 */
async function receiveMigration(
  socketPath: string,
  file: string,
): Promise<{ written: Promise<void>; close(): Promise<void> }> {
  let settle!: { resolve: () => void; reject: (error: Error) => void };
  const written = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // Awaited by the snapshot only once QEMU was told to migrate.
  written.catch(() => undefined);
  const server = net.createServer((socket) => {
    server.close(); // one stream only
    pipeline(socket, createWriteStream(file)).then(settle.resolve, settle.reject);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return {
    written,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        settle.reject(new Error('migration stream never came'));
      }).then(() => unlinkIfPresent(socketPath)),
  };
}

/**
 * Sends a saved state file (the ~60 KB device state) into the Unix socket a restoring QEMU
 * listens on. QEMU closes its end once it has read the stream's end marker, which may come
 * before this side's end is acknowledged: whether the load worked is for query-migrate to
 * say (waitUntilRunning), not for this socket.
 */
async function sendMigration(socketPath: string, file: string): Promise<void> {
  const state = await readFile(file);
  const socket = await connectUnix(socketPath);
  socket.on('error', () => undefined);
  socket.end(state);
}

function connectUnix(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function mkdirFresh(dir: string): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true });
  await mkdir(dir);
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** How long a failure waits for QEMU's exit to be reaped before it says QEMU still runs. */
const EXIT_GRACE_MS = 500;

/** An error's message, saying so, how and why when the cause is that QEMU exited. */
async function explain(error: unknown, launch: VmLaunch): Promise<string> {
  const message = error instanceof Error ? error.message : String(error);
  const exit = await launch.vmmExitReport(EXIT_GRACE_MS);
  return exit === undefined ? message : `QEMU exited (${exit}) (${message})`;
}
