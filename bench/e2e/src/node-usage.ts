// What processes cost while nothing happens: CPU time (utime + stime from /proc/<pid>/stat)
// over a window, as a share of one core, and resident memory (VmRSS) at its end.
import { readdir, readFile } from 'node:fs/promises';
import { sleep } from './pod-timeline';

/** USER_HZ: the unit of utime and stime; 100 on every Linux architecture Seed runs on. */
const TICKS_PER_SECOND = 100;

export interface ProcessUsage {
  pid: number;
  /** /proc/<pid>/comm: kubelet, containerd, etcd, ... */
  name: string;
  /** CPU over the window, % of one core. */
  cpuPercent: number;
  rssKiB: number;
}

/** Processes whose command line contains any of `needles`, but not this process. */
export async function processesMentioning(needles: readonly string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (needles.some((needle) => cmdline.includes(needle))) pids.push(pid);
  }
  return pids;
}

/** CPU ticks used so far and the process's name; undefined once it has gone. */
async function ticks(pid: number): Promise<{ name: string; ticks: number } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  // `pid (comm) state ...`: comm may hold spaces and parentheses; fields follow the last ')'.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after comm.
  return {
    name: await nameOf(pid, stat.slice(stat.indexOf('(') + 1, close)),
    ticks: Number(fields[11]) + Number(fields[12]),
  };
}

/** A Seed service by its app (every one is a `node` process), anything else by its comm. */
async function nameOf(pid: number, comm: string): Promise<string> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return /\/apps\/([^/]+)\/dist\/main\.js/.exec(cmdline)?.[1] ?? comm;
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return match ? Number(match[1]) : 0;
}

/** Each process's CPU share over `windowMs` and its RSS at the end; gone ones are left out. */
export async function usageOver(
  pids: readonly number[],
  windowMs: number,
  signal: AbortSignal,
): Promise<ProcessUsage[]> {
  const before = await Promise.all(pids.map(ticks));
  const started = performance.now();
  await sleep(windowMs, signal);
  const after = await Promise.all(pids.map(ticks));
  const seconds = (performance.now() - started) / 1000;
  const usage: ProcessUsage[] = [];
  for (const [index, pid] of pids.entries()) {
    const [first, last] = [before[index], after[index]];
    if (!first || !last) continue;
    usage.push({
      pid,
      name: last.name,
      cpuPercent: ((last.ticks - first.ticks) / TICKS_PER_SECOND / seconds) * 100,
      rssKiB: await rssKiB(pid),
    });
  }
  return usage;
}

export interface NamedUsage {
  name: string;
  processes: number;
  cpuPercent: number;
  rssKiB: number;
}

/** Usage summed per process name, largest CPU share first. */
export function byName(usage: readonly ProcessUsage[]): NamedUsage[] {
  const named = new Map<string, NamedUsage>();
  for (const entry of usage) {
    const sum = named.get(entry.name) ?? {
      name: entry.name,
      processes: 0,
      cpuPercent: 0,
      rssKiB: 0,
    };
    sum.processes += 1;
    sum.cpuPercent += entry.cpuPercent;
    sum.rssKiB += entry.rssKiB;
    named.set(entry.name, sum);
  }
  return [...named.values()].sort((a, b) => b.cpuPercent - a.cpuPercent || b.rssKiB - a.rssKiB);
}
