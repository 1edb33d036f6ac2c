// The Cloud Hypervisor driver, over @seed/clh-client.
//
// NOT RUN: Cloud Hypervisor has no package on the project's machines and their KVM is a
// slow nested one, so this driver has never started a real CH. It is written against the
// client's typed API and CH's published OpenAPI document (0.3.0); the bodies it sends
// (clh-config.ts) are checked against that document's schemas, and its life of a VM runs
// against stand-ins for CH and virtiofsd (test/clh.hypervisor.test.ts). The first run
// against a real CH should be test/qemu.hypervisor.test.ts's scenario pointed at this
// driver. Known assumptions to check then:
// - CH resolves the relative vsock socket and serial file of the restored config against
//   its working directory (each VM's run directory), so clones do not collide;
// - a virtio-fs device hot-plugged after restore (`vm.add-fs`) appears in the guest
//   (PCI hotplug) and the agent can mount it at once;
// - restore copies the snapshot's memory (CH's default `Copy`); `OnDemand` (userfaultfd)
//   may make clones cheaper and is an option.
//
// How it maps the interface: template = create + boot (no share: CH cannot snapshot
// vhost-user devices); snapshot = pause + vm.snapshot into a directory; clone = a fresh CH
// process + vm.restore + vm.resume + vm.add-fs (its own virtiofsd on its own export
// folder); agent = hybrid vsock `CONNECT <port>` on the VM's vsock socket.
import { randomBytes } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClhClient, ClhError, connectVsock, type MemoryRestoreMode } from '@seed/clh-client';
import { AgentClient } from '../agent/agent.client';
import { CleanupStack } from './cleanup-stack';
import {
  clhGuestCmdline,
  clhRestoreConfig,
  clhShareConfig,
  clhSnapshotConfig,
  clhTemplateConfig,
  cloudHypervisorArgs,
  CLH_VSOCK_SOCKET,
  virtiofsdArgs,
  type ClhMachine,
} from './clh-config';
import { removeUnmountedTree } from '@seed/mount-table';
import {
  VM_ID_PATTERN,
  VmError,
  type CloneSpec,
  type CloneVm,
  type Hypervisor,
  type MicroVm,
  type ReapReport,
  type RestorePhase,
  type TemplateSpec,
  type VmRole,
  type VmSnapshot,
} from './hypervisor';
import { ManagedSnapshot, ManagedVm, VmLaunch, wakeClone } from './managed-vm';
import { reapOrphans } from './reap-orphans';
import { MAX_SOCKET_PATH, RunLayout, writeRecord } from './run-dir';
import { silentLog, type VmLog } from './vm-log';
import { spawnVmm } from './vmm-process';
import { DEFAULT_VM_UIDS, VmUids, runAsVmUser, type UidRange } from './vm-uids';

export interface ClhHypervisorOptions {
  runRoot: string;
  /** Unused by CH (its memory is anonymous), kept for reapOrphans' signature. */
  shmDir?: string;
  clhBinary?: string;
  /** The Rust virtiofsd; Debian-style path by default. */
  virtiofsdBinary?: string;
  /** The uids VMs run as, one each (vm-uids.ts): CH and the clone's virtiofsd share it. */
  vmUids?: UidRange;
  /** The guest agent's vsock port (guest/agent: --vsock-port, 1024 by default). */
  vsockPort?: number;
  shareTag?: string;
  /** CH's restore mode; CH's own default (`Copy`) when unset. */
  memoryRestoreMode?: MemoryRestoreMode;
  /** Deadline of one API call; snapshot and restore get ten times this. */
  apiTimeoutMs?: number;
  log?: VmLog;
}

const POLL_MS = 10;

export class ClhHypervisor implements Hypervisor {
  readonly kind = 'cloud-hypervisor';
  readonly runRoot: string;
  readonly #layout: RunLayout;
  readonly #clh: string;
  readonly #virtiofsd: string;
  readonly #vsockPort: number;
  readonly #shareTag: string;
  readonly #restoreMode: MemoryRestoreMode | undefined;
  readonly #apiTimeoutMs: number;
  readonly #log: VmLog;
  readonly #uids: VmUids;

  constructor(options: ClhHypervisorOptions) {
    this.runRoot = path.resolve(options.runRoot);
    this.#layout = new RunLayout(this.runRoot, options.shmDir ?? '/dev/shm');
    this.#clh = options.clhBinary ?? 'cloud-hypervisor';
    this.#virtiofsd = options.virtiofsdBinary ?? '/usr/libexec/virtiofsd';
    this.#vsockPort = options.vsockPort ?? 1024;
    this.#shareTag = options.shareTag ?? 'shoot';
    this.#restoreMode = options.memoryRestoreMode;
    this.#apiTimeoutMs = options.apiTimeoutMs ?? 10_000;
    this.#log = options.log ?? silentLog;
    this.#uids = new VmUids(options.vmUids ?? DEFAULT_VM_UIDS);
  }

  async startTemplate(spec: TemplateSpec): Promise<MicroVm> {
    const id = spec.id ?? `tpl-${randomBytes(4).toString('hex')}`;
    if (!VM_ID_PATTERN.test(id)) throw new VmError('invalid', id, 'id must match [a-z0-9-]{1,40}');
    const machine: ClhMachine = {
      image: spec.image,
      memoryMiB: spec.memoryMiB,
      vcpus: spec.vcpus,
      cmdline: clhGuestCmdline(),
    };
    const { vm, api } = await this.#launch(id, 'template', machine, []);
    try {
      await api.create(clhTemplateConfig(machine));
      await api.boot();
      await vm.agent.waitReady({
        timeoutMs: spec.bootTimeoutMs ?? 60_000,
        signal: vm.launch.vmmExit.signal,
      });
    } catch (error) {
      return vm.launch.fail('boot', `template did not come up: ${String(error)}`, error);
    }
    return vm;
  }

  async snapshot(template: MicroVm): Promise<VmSnapshot> {
    if (!(template instanceof ClhVm) || template.hypervisor !== this) {
      throw new VmError('invalid', template.id, 'VM was not started by this CH driver');
    }
    if (template.role !== 'template' || template.destroyed) {
      throw new VmError('invalid', template.id, 'only a running template can be snapshotted');
    }
    const id = `snap-${randomBytes(4).toString('hex')}`;
    const dir = this.#layout.snapshotDir(id);
    const stack = new CleanupStack();
    try {
      await mkdir(path.dirname(dir), { recursive: true });
      await mkdir(dir);
      await stack.push('remove snapshot directory', () => removeUnmountedTree(dir));
      await writeRecord(path.join(dir, 'snapshot.json'), {
        vmm: 'cloud-hypervisor',
        id,
        from: template.id,
        ramFiles: [],
        machine: template.machine,
      });
      template.agent.close();
      await template.api.pause();
      await template.api.snapshot(clhSnapshotConfig(dir), { timeoutMs: this.#apiTimeoutMs * 10 });
    } catch (error) {
      await stack.run();
      await template.destroy();
      throw new VmError('snapshot', template.id, `snapshot failed: ${String(error)}`, {
        cause: error,
      });
    }
    await template.destroy();
    return new ClhSnapshot(this, id, dir, template.machine, stack);
  }

  async startClone(snapshot: VmSnapshot, spec: CloneSpec = {}): Promise<CloneVm> {
    if (!(snapshot instanceof ClhSnapshot) || snapshot.hypervisor !== this) {
      throw new VmError('invalid', snapshot.id, 'snapshot was not made by this CH driver');
    }
    if (snapshot.destroyed) throw new VmError('invalid', snapshot.id, 'snapshot is destroyed');
    const id = spec.id ?? `clone-${randomBytes(4).toString('hex')}`;
    if (!VM_ID_PATTERN.test(id)) throw new VmError('invalid', id, 'id must match [a-z0-9-]{1,40}');
    const readyTimeoutMs = spec.readyTimeoutMs ?? 30_000;

    const { vm, api, shareSocket } = await this.#launch(
      id,
      'clone',
      snapshot.machine,
      spec.mountPoints ?? [],
    );
    const phase = (name: RestorePhase) => spec.onPhase?.(name, vm.pid);
    phase('started');
    try {
      await api.restore(clhRestoreConfig(snapshot.dir, this.#restoreMode), {
        timeoutMs: this.#apiTimeoutMs * 10,
      });
      await api.resume();
      await api.addFs(clhShareConfig(this.#shareTag, shareSocket));
      phase('loaded');
      await vm.agent.waitReady({ timeoutMs: readyTimeoutMs, signal: vm.launch.vmmExit.signal });
      phase('answered');
      // The guest wakes with the snapshot's clock and RNG state.
      await wakeClone(vm.agent, vm.launch.vmmExit.signal);
      phase('woken');
    } catch (error) {
      return vm.launch.fail('restore', `restore failed: ${String(error)}`, error);
    }
    return asClone(vm);
  }

  reapOrphans(): Promise<ReapReport> {
    return reapOrphans(this.runRoot, this.#layout.shmDir);
  }

  /**
   * Run directory, sealed export, vm.json, the clone's virtiofsd, the CH process (working
   * directory = run directory, see clh-config.ts) and its API, and the agent client.
   */
  async #launch(
    id: string,
    role: VmRole,
    machine: ClhMachine,
    mountPoints: readonly string[],
  ): Promise<{ vm: ClhVm; api: ClhClient; shareSocket: string }> {
    const runDir = this.#layout.vmDir(id);
    const launch = new VmLaunch(id, role, runDir, this.#log);
    const apiSocket = path.join(runDir, 'api.sock');
    const shareSocket = path.join(runDir, 'virtiofs.sock');
    const vsockSocket = path.join(runDir, CLH_VSOCK_SOCKET);
    if (shareSocket.length > MAX_SOCKET_PATH) {
      throw new VmError('invalid', id, `run directory too long for Unix sockets: ${runDir}`);
    }
    try {
      await launch.createRunDir();
      const exportDir = await launch.createExport(mountPoints);
      const uid = this.#uids.take();
      // Runs after CH and virtiofsd are killed: the uid is free only when nothing runs as it.
      await launch.stack.push('release VM uid', () => this.#uids.release(uid));
      await launch.writeRecord({
        vmm: 'cloud-hypervisor',
        id,
        role,
        uid,
        ramFiles: [],
        machine,
      });
      if (role === 'clone') {
        const virtiofsd = await this.#spawn(
          id,
          uid,
          this.#virtiofsd,
          virtiofsdArgs(shareSocket, exportDir),
          { log: path.join(runDir, 'virtiofsd.log') },
        );
        await launch.trackHelper('virtiofsd', virtiofsd);
        await waitForFile(shareSocket, 5_000, id);
      }
      const clh = await this.#spawn(id, uid, this.#clh, cloudHypervisorArgs(apiSocket), {
        log: path.join(runDir, 'vmm.log'),
        cwd: runDir,
      });
      await launch.track(clh);

      const api = new ClhClient(apiSocket, { timeoutMs: this.#apiTimeoutMs });
      await waitForApi(api, 10_000, launch.vmmExit.signal, id);
      await launch.stack.push('shut down VMM', async () => {
        // Best effort before the kill: lets CH release its devices cleanly.
        await api.shutdownVmm({ timeoutMs: 1_000 }).catch(() => undefined);
      });

      const agent = new AgentClient(
        () => connectVsock(vsockSocket, this.#vsockPort, { timeoutMs: 2_000 }),
        {
          label: id,
        },
      );
      await launch.stack.push('close agent connection', () => agent.close());
      // A template has no share device: CH cannot snapshot a VM with virtio-fs attached.
      const share =
        role === 'clone'
          ? { tag: this.#shareTag, fstype: 'virtiofs' as const, hostDir: exportDir }
          : undefined;
      const vm = new ClhVm(this, launch, clh.pid, agent, api, machine, share);
      return { vm, api, shareSocket };
    } catch (error) {
      return launch.fail(error instanceof VmError ? error.kind : 'host', String(error), error);
    }
  }

  /**
   * Starts CH or virtiofsd as the VM's uid, as QEMU is (vm-uids.ts): a guest that breaks
   * out of either lands in an unprivileged process with no_new_privs, and what it writes
   * through the share is that uid's, never root's.
   */
  async #spawn(
    id: string,
    uid: number,
    binary: string,
    args: string[],
    options: { log: string; cwd?: string },
  ) {
    try {
      return await spawnVmm('setpriv', runAsVmUser(uid, binary, args), options.log, {
        cwd: options.cwd,
      });
    } catch (error) {
      throw new VmError('spawn', id, `cannot start ${binary}: ${String(error)}`, {
        cause: error,
        retryable: false,
      });
    }
  }
}

class ClhVm extends ManagedVm {
  constructor(
    readonly hypervisor: ClhHypervisor,
    launch: VmLaunch,
    pid: number,
    agent: AgentClient,
    readonly api: ClhClient,
    readonly machine: ClhMachine,
    share: MicroVm['share'],
  ) {
    super(launch, pid, agent, share);
  }
}

class ClhSnapshot extends ManagedSnapshot<ClhHypervisor, ClhMachine> {}

/** A restored VM as the CloneVm it is: #launch gives every clone its share. */
function asClone(vm: ClhVm): ClhVm & CloneVm {
  if (vm.share === undefined) throw new VmError('invalid', vm.id, 'clone has no share device');
  return vm as ClhVm & CloneVm;
}

/** Pings the VMM until its API socket answers (CH creates it shortly after starting). */
async function waitForApi(
  api: ClhClient,
  timeoutMs: number,
  exit: AbortSignal,
  id: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await api.ping({ timeoutMs: 1_000 });
      return;
    } catch (error) {
      // A VMM still starting on a loaded host may accept the connection and answer late.
      const retry =
        error instanceof ClhError && (error.kind === 'unreachable' || error.kind === 'timeout');
      if (!retry || exit.aborted || Date.now() > deadline) {
        throw new VmError('spawn', id, `Cloud Hypervisor API did not come up: ${String(error)}`, {
          cause: error,
        });
      }
      await sleep(POLL_MS);
    }
  }
}

async function waitForFile(file: string, timeoutMs: number, id: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await stat(file);
      return;
    } catch {
      if (Date.now() > deadline) throw new VmError('spawn', id, `${file} did not appear`);
      await sleep(POLL_MS);
    }
  }
}
