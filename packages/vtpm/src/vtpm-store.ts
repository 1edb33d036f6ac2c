import { chmod, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runningSwtpm, startSwtpm, stopSwtpm, tpmPaths, type TpmPaths } from './swtpm';

/** An instance on this node: its flake's namespace and its name (both DNS labels). */
export interface InstanceKey {
  namespace: string;
  name: string;
}

export interface VtpmStatus {
  instance: InstanceKey;
  /** What the VMM attaches to (Kata's `io.katacontainers.config.hypervisor.tpm_socket`). */
  ctrlSocket: string;
  pid: number;
  /** `started` for a new or stopped TPM, `adopted` for one already running. */
  how: 'started' | 'adopted';
  /** The instance's age recipient, when this store created its identity (`createIdentity`). */
  recipient?: string;
}

export interface VtpmStoreOptions {
  /** Holds one 0700 directory per instance; nothing in it is ever given to a VM. */
  root: string;
  swtpm: string;
  /** How long a TPM outlives its instance's absence, like a volume's retention. */
  graceMs: number;
  now: () => number;
  /** A data socket for tpm2-tools on the host; a VM cannot attach to such a TPM. */
  hostChannel?: boolean;
  /**
   * Creates the instance's identity in a TPM no VM has had yet, over a host data channel
   * (`dataSocket`, for `TPM2TOOLS_TCTI=swtpm:path=<dataSocket>`), and returns its public
   * age recipient, which the store keeps in `<dir>/recipient` (identity.ts).
   */
  createIdentity?: (dataSocket: string) => Promise<string>;
}

export class InvalidInstance extends Error {
  override readonly name = 'InvalidInstance';
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Marks an instance seen missing, with the time it was first missed. */
const GONE_SINCE = 'gone-since';
/** The instance's age recipient (public), once the store created its identity. */
const RECIPIENT = 'recipient';

/**
 * The node's TPMs, one per instance, kept in step with the instances that should run
 * here. The swtpm processes are not this object's children in any sense that matters:
 * they run detached and are found again by pidfile after a restart, so an agent restart
 * never resets or loses a TPM.
 */
export class VtpmStore {
  constructor(private readonly options: VtpmStoreOptions) {}

  /** The TPM of `instance`, started if it does not run (its state kept), adopted if it does. */
  async ensure(instance: InstanceKey): Promise<VtpmStatus> {
    const paths = this.paths(instance);
    await mkdir(this.options.root, { recursive: true, mode: 0o700 });
    await mkdir(paths.state, { recursive: true, mode: 0o700 });
    // mkdir's mode does not apply to a directory that already exists.
    await chmod(paths.dir, 0o700);
    await rm(path.join(paths.dir, GONE_SINCE), { force: true });
    const running = await runningSwtpm(paths);
    const recipientFile = path.join(paths.dir, RECIPIENT);
    let recipient = await readFile(recipientFile, 'utf8').then(
      (text) => text.trim(),
      () => undefined,
    );
    if (running !== undefined) {
      return { instance, ctrlSocket: paths.ctrl, pid: running, how: 'adopted', recipient };
    }
    if (recipient === undefined && this.options.createIdentity) {
      // A TPM no VM has had yet (or one whose identity was never recorded): create the
      // identity over a host channel, then serve the VMM without one (swtpm refuses the
      // VMM's data channel while it serves a host one).
      const host = await startSwtpm(this.options.swtpm, paths, true);
      try {
        recipient = await this.options.createIdentity(paths.data);
      } finally {
        await stopSwtpm(host);
      }
      await writeFile(recipientFile, `${recipient}\n`, { mode: 0o600 });
    }
    const pid = await startSwtpm(this.options.swtpm, paths, this.options.hostChannel);
    return { instance, ctrlSocket: paths.ctrl, pid, how: 'started', recipient };
  }

  /**
   * Brings the node's TPMs in line with the instances that should run here: each gets
   * its TPM; a TPM whose instance is absent is kept for the grace period from the first
   * time it was missed, then stopped and its state removed (the identity with it).
   */
  async reconcile(wanted: InstanceKey[]): Promise<{
    ready: VtpmStatus[];
    /** Instances whose TPM could not be had (a bad name, an swtpm that cannot start). */
    failed: { instance: InstanceKey; error: string }[];
    removed: InstanceKey[];
  }> {
    const wantedDirs = new Set<string>();
    const ready: VtpmStatus[] = [];
    const failed: { instance: InstanceKey; error: string }[] = [];
    // One instance's failure is that instance's: the others still get their TPMs.
    for (const instance of wanted) {
      try {
        wantedDirs.add(this.paths(instance).dir);
        ready.push(await this.ensure(instance));
      } catch (error) {
        failed.push({ instance, error: (error as Error).message });
      }
    }
    const removed: InstanceKey[] = [];
    for (const instance of await this.list()) {
      const paths = this.paths(instance);
      if (wantedDirs.has(paths.dir)) continue;
      if (await this.graceOver(paths)) {
        await this.remove(instance);
        removed.push(instance);
      }
    }
    return { ready, failed, removed };
  }

  /**
   * Stops every swtpm under the root and keeps their state, as a node's shutdown would:
   * for a host that ran the agent only for a while (`seed up`), since swtpm outlives it.
   */
  async stopAll(): Promise<void> {
    for (const instance of await this.list()) {
      const pid = await runningSwtpm(this.paths(instance));
      if (pid !== undefined) await stopSwtpm(pid);
    }
  }

  /** The instances that have a TPM on this node. */
  async list(): Promise<InstanceKey[]> {
    let entries: string[];
    try {
      entries = await readdir(this.options.root);
    } catch {
      return [];
    }
    return entries.flatMap((entry) => {
      const [namespace, name, ...rest] = entry.split('_');
      if (namespace === undefined || name === undefined || rest.length > 0) return [];
      return LABEL.test(namespace) && LABEL.test(name) ? [{ namespace, name }] : [];
    });
  }

  private async graceOver(paths: TpmPaths): Promise<boolean> {
    const marker = path.join(paths.dir, GONE_SINCE);
    const now = this.options.now();
    let since: number;
    try {
      since = Number.parseInt(await readFile(marker, 'utf8'), 10);
    } catch {
      await writeFile(marker, String(now));
      return false;
    }
    // An unreadable marker restarts the grace period rather than removing a TPM early.
    if (!Number.isSafeInteger(since)) {
      await writeFile(marker, String(now));
      return false;
    }
    return now - since >= this.options.graceMs;
  }

  private async remove(instance: InstanceKey): Promise<void> {
    const paths = this.paths(instance);
    const pid = await runningSwtpm(paths);
    if (pid !== undefined) await stopSwtpm(pid);
    await rm(paths.dir, { recursive: true, force: true });
  }

  /** One directory per instance; `_` cannot occur in a DNS label, so the name is unambiguous. */
  paths(instance: InstanceKey): TpmPaths {
    for (const [field, value] of Object.entries(instance)) {
      if (typeof value !== 'string' || !LABEL.test(value)) {
        throw new InvalidInstance(`instance ${field} ${JSON.stringify(value)} is not a DNS label`);
      }
    }
    return tpmPaths(path.join(this.options.root, `${instance.namespace}_${instance.name}`));
  }
}
