// What a node changes on the host outside its own folder, recorded before it changes it
// and undone on stop. The record is a file beside the machine-wide lock, so a run that
// was killed (SIGKILL, a crashed test worker) is undone by the next start.
//
// Measured on these machines: the kubelet forces sysctls, makes /kubepods cgroups in every
// hierarchy, bind-mounts its root folder onto itself and writes under /var/lib/kubelet,
// /var/lib/cni, /var/log/{pods,containers} and /run/containerd; kube-proxy writes
// iptables rules; kube-router writes iptables rules and ipsets (one per policy peer);
// containerd leaves network namespaces under /run/netns; nix-snapshotter
// adds GC roots under /nix/var/nix/gcroots/auto; container processes live in the node's
// cgroups under shims that are not our children.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { mountsUnder } from '@seed/mount-table';

const run = promisify(execFile);

/** Sysctls the kubelet, kube-proxy or the node's network set; each is put back as found. */
export const NODE_SYSCTLS = [
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'net/ipv4/ip_forward',
  'net/ipv4/conf/all/route_localnet',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
  'net/netfilter/nf_conntrack_max',
  'net/netfilter/nf_conntrack_tcp_timeout_established',
  'net/netfilter/nf_conntrack_tcp_timeout_close_wait',
];

/** Host paths a node's parts write to whatever their configuration says. */
export const NODE_HOST_PATHS = [
  '/var/lib/kubelet',
  '/var/lib/cni',
  '/var/log/pods',
  '/var/log/containers',
  '/run/containerd',
  '/run/netns',
  '/var/run/netns',
  '/etc/cni',
  '/opt/cni',
  // kube-controller-manager's host-path provisioner (the node's volume provisioner).
  '/tmp/hostpath_pv',
  '/tmp/hostpath-provisioner',
];

const CGROUP_ROOT = '/sys/fs/cgroup';
const GC_ROOTS = '/nix/var/nix/gcroots/auto';

export interface HostRecord {
  /** The node's own folder: everything under it is removed. */
  dir: string;
  /** PIDs of the node's components (they outlive a killed owner: own process groups). */
  pids: number[];
  /**
   * Folders of parts started with the node by the same owner (its API server and etcd):
   * a killed owner leaves them running too, so a clean-up after one stops and removes them.
   */
  companionDirs: string[];
  bridge: string;
  bridgeExisted: boolean;
  sysctls: Record<string, string>;
  /** Host paths that did not exist before the node started. */
  absentPaths: string[];
  /** cgroup hierarchies without a `kubepods` group before the node started. */
  absentCgroups: string[];
  /** `iptables-save` and `ip6tables-save` before the node started. */
  iptables: string;
  ip6tables: string;
  /** Names of the ipsets there were before the node started. */
  ipsets: string[];
  netns: string[];
}

/** Reads what a node is about to change. */
export async function recordHost(
  dir: string,
  bridge: string,
  companionDirs: string[],
): Promise<HostRecord> {
  const sysctls: Record<string, string> = {};
  for (const name of NODE_SYSCTLS) {
    const value = await readFile(`/proc/sys/${name}`, 'utf8').catch(() => undefined);
    if (value !== undefined) sysctls[name] = value.trim();
  }
  const hierarchies = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
  return {
    dir,
    pids: [],
    companionDirs,
    bridge,
    bridgeExisted: existsSync(`/sys/class/net/${bridge}`),
    sysctls,
    absentPaths: NODE_HOST_PATHS.filter((hostPath) => !existsSync(hostPath)),
    absentCgroups: hierarchies.filter(
      (hierarchy) => !existsSync(path.join(CGROUP_ROOT, hierarchy, 'kubepods')),
    ),
    iptables: (await run('iptables-save', [])).stdout,
    ip6tables: (await run('ip6tables-save', [])).stdout,
    ipsets: await ipsetNames(),
    netns: await readdir('/run/netns').catch(() => []),
  };
}

export async function saveRecord(file: string, record: HostRecord): Promise<void> {
  await writeFile(`${file}.partial`, JSON.stringify(record));
  await rm(file, { force: true });
  await writeFile(file, JSON.stringify(record));
  await rm(`${file}.partial`, { force: true });
}

export async function loadRecord(file: string): Promise<HostRecord | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as HostRecord);
}

/**
 * Puts the host back as the record found it. Every step runs even when an earlier one
 * failed; the failures are thrown together at the end. `afterCrash` also ends the
 * companions a dead owner left behind.
 */
export async function restoreHost(record: HostRecord, afterCrash = false): Promise<void> {
  const failures: string[] = [];
  const step = async (name: string, action: () => Promise<void>): Promise<void> => {
    try {
      await action();
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  };

  const owned = afterCrash ? [record.dir, ...record.companionDirs] : [record.dir];
  await step('processes', () => killNodeProcesses(record.pids, owned));
  await step('mounts', () => unmountNode(record));
  await step('cgroups', () => removeCgroups(record));
  await step('iptables', () => restoreIptables(record));
  // After iptables: a set cannot be destroyed while a rule refers to it.
  await step('ipsets', () => destroyNewIpsets(record));
  await step('sysctls', () => restoreSysctls(record));
  await step('bridge', async () => {
    if (!record.bridgeExisted && existsSync(`/sys/class/net/${record.bridge}`)) {
      await run('ip', ['link', 'delete', record.bridge]);
    }
  });
  await step('GC roots', () => removeGcRoots(record.dir));
  await step('host paths', async () => {
    for (const hostPath of record.absentPaths) await removeTreeIfUnmounted(hostPath);
  });
  for (const dir of owned) await step(`folder ${dir}`, () => removeTreeIfUnmounted(dir));
  if (failures.length > 0) {
    throw new Error(`the node left the host changed:\n  ${failures.join('\n  ')}`);
  }
}

/**
 * Kills the node's components, the container shims and the containers: every process
 * whose command line names one of the owned folders, and every process in its cgroups.
 */
async function killNodeProcesses(pids: number[], dirs: string[]): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const victims = new Set<number>();
    for (const pid of pids) if (await commandLineMentions(pid, dirs)) victims.add(pid);
    for (const entry of await readdir('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      if (await commandLineMentions(pid, dirs)) victims.add(pid);
    }
    for (const pid of await cgroupProcesses('kubepods')) victims.add(pid);
    victims.delete(process.pid);
    if (victims.size === 0) return;
    for (const pid of victims) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('node processes survived SIGKILL for 5 s');
}

async function commandLineMentions(pid: number, dirs: string[]): Promise<boolean> {
  const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return dirs.some((dir) => commandLine.includes(dir));
}

/** PIDs in the cgroup `group` of every hierarchy, its children included. */
async function cgroupProcesses(group: string): Promise<number[]> {
  const pids: number[] = [];
  const walk = async (dir: string): Promise<void> => {
    const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of procs.split('\n')) if (line.trim() !== '') pids.push(Number(line));
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(path.join(dir, entry.name));
    }
  };
  for (const hierarchy of await readdir(CGROUP_ROOT).catch(() => [] as string[])) {
    await walk(path.join(CGROUP_ROOT, hierarchy, group));
  }
  return pids;
}

async function unmountNode(record: HostRecord): Promise<void> {
  const netnsNow = await readdir('/run/netns').catch(() => [] as string[]);
  const points = [
    ...(await mountsUnder(record.dir)),
    ...netnsNow
      .filter((name) => !record.netns.includes(name))
      .map((name) => path.join('/run/netns', name)),
    ...(record.absentPaths.includes('/var/lib/kubelet')
      ? await mountsUnder('/var/lib/kubelet')
      : []),
  ];
  for (const point of points) {
    // A point mounted twice (the kubelet's root onto itself) is unmounted until it is not.
    for (let attempt = 0; attempt < 4; attempt++) {
      const result = await run('umount', [point]).catch((error: Error) => error);
      if (result instanceof Error) {
        if ((await mountsUnder(point)).length === 0) break;
        // Busy after its processes died: detach it, the kernel frees it when unused.
        await run('umount', ['-l', point]).catch(() => undefined);
      }
      if (!(await mountsUnder(point)).includes(point)) break;
    }
    if (point.startsWith('/run/netns/')) await rm(point, { force: true });
  }
  const left = await mountsUnder(record.dir);
  if (left.length > 0) throw new Error(`still mounted: ${left.join(', ')}`);
}

async function removeCgroups(record: HostRecord): Promise<void> {
  // cgroup folders are removed leaf first with rmdir; their files cannot be deleted.
  const removeGroup = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await removeGroup(path.join(dir, entry.name));
    }
    await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  };
  for (const hierarchy of record.absentCgroups) {
    await removeGroup(path.join(CGROUP_ROOT, hierarchy, 'kubepods'));
  }
}

async function restoreIptables(record: HostRecord): Promise<void> {
  for (const [save, restore, saved] of [
    ['iptables-save', 'iptables-restore', record.iptables],
    ['ip6tables-save', 'ip6tables-restore', record.ip6tables],
  ] as const) {
    const now = (await run(save, [])).stdout;
    // Only when something changed: restoring an identical table still churns the ruleset.
    if (iptablesRules(now) !== iptablesRules(saved)) await restoreTable(restore, now, saved);
  }
}

/**
 * What iptables-save says matters: the rules and user chains of each table, without
 * timestamps and counters, and without tables that hold nothing (the nf_tables backend
 * lists a table once anything touched it, even after it was emptied again).
 */
export function iptablesRules(saved: string): string {
  return parseTables(saved)
    .filter((table) => table.lines.some((line) => line.startsWith('-A ') || isUserChain(line)))
    .map((table) => [`*${table.name}`, ...table.lines].join('\n'))
    .join('\n');
}

interface SavedTable {
  name: string;
  /** Chain declarations (`:NAME POLICY`) and rules (`-A ...`), counters removed. */
  lines: string[];
}

function parseTables(saved: string): SavedTable[] {
  const tables: SavedTable[] = [];
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) tables.push({ name: line.slice(1), lines: [] });
    else if (line.startsWith(':') || line.startsWith('-A ')) {
      tables.at(-1)?.lines.push(line.replace(/ \[\d+:\d+\]$/, ''));
    }
  }
  return tables;
}

const BUILTIN_CHAINS = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING']);

function isUserChain(line: string): boolean {
  return line.startsWith(':') && !BUILTIN_CHAINS.has(line.slice(1).split(' ')[0]!);
}

/**
 * iptables-restore replaces each table it is given: the saved ones as they were, and the
 * ones that did not exist before as empty tables with accepting built-in chains.
 */
function restoreTable(command: string, now: string, saved: string): Promise<void> {
  const before = new Map(parseTables(saved).map((table) => [table.name, table]));
  const input = parseTables(now)
    .map((table) => {
      const lines =
        before.get(table.name)?.lines ??
        table.lines
          .filter((line) => line.startsWith(':') && !isUserChain(line))
          .map((line) => `${line.split(' ')[0]} ACCEPT`);
      return [`*${table.name}`, ...lines, 'COMMIT'].join('\n');
    })
    .join('\n');
  return new Promise((resolve, reject) => {
    const child = execFile(command, [], (error: Error | null) => {
      if (error) reject(error);
      else resolve();
    });
    child.stdin!.end(`${input}\n`);
  });
}

async function ipsetNames(): Promise<string[]> {
  const { stdout } = await run('ipset', ['list', '-name']);
  return stdout.split('\n').filter((name) => name !== '');
}

async function destroyNewIpsets(record: HostRecord): Promise<void> {
  for (const name of await ipsetNames()) {
    if (!record.ipsets.includes(name)) await run('ipset', ['destroy', name]);
  }
}

async function restoreSysctls(record: HostRecord): Promise<void> {
  for (const [name, value] of Object.entries(record.sysctls)) {
    const now = await readFile(`/proc/sys/${name}`, 'utf8').catch(() => undefined);
    if (now !== undefined && now.trim() !== value) await writeFile(`/proc/sys/${name}`, value);
  }
}

async function removeGcRoots(dir: string): Promise<void> {
  for (const entry of await readdir(GC_ROOTS).catch(() => [] as string[])) {
    const link = path.join(GC_ROOTS, entry);
    const target = await readlink(link).catch(() => '');
    if (target.startsWith(`${dir}/`)) await unlink(link);
  }
}

async function removeTreeIfUnmounted(dir: string): Promise<void> {
  if (!(await stat(dir).catch(() => undefined))) return;
  const mounted = await mountsUnder(dir);
  if (mounted.length > 0) throw new Error(`not removing ${dir}: mounted under it: ${mounted[0]}`);
  await rm(dir, { recursive: true, force: true });
}
