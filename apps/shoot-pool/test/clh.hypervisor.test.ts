// The Cloud Hypervisor driver's whole life of a VM — template, snapshot, clone with its
// share, agent over hybrid vsock, teardown, reaping after a crash — against stand-ins
// (fake-cloud-hypervisor.ts): CH's API as its OpenAPI document has it, and processes that
// only stay alive. What this cannot show (a real guest, CH's own behaviour beyond the
// spec) is listed in the README, "Cloud Hypervisor".
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readlink, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { ClhHypervisor } from '../src/vm/clh.hypervisor';
import { isAlive, processesReferencing } from '../src/vm/vmm-process';
import { FakeAgent, PING_FIELDS } from './fake-agent';
import { FakeClhApi, writeStandInBinaries } from './fake-cloud-hypervisor';

const image = {
  kernel: '/guest/vmlinux',
  uniprocessorKernel: '/guest/vmlinux-up',
  initramfs: '/guest/initramfs.cpio.gz',
};

let root: string;
let runRoot: string;
let binaries: { cloudHypervisor: string; virtiofsd: string };
let agent: FakeAgent;
const apis: FakeClhApi[] = [];

function driver(): ClhHypervisor {
  return new ClhHypervisor({
    runRoot,
    clhBinary: binaries.cloudHypervisor,
    virtiofsdBinary: binaries.virtiofsd,
    apiTimeoutMs: 2_000,
  });
}

/** CH's API for the VM `id`, served once the driver has made its run directory. */
async function served(id: string): Promise<FakeClhApi> {
  const runDir = path.join(runRoot, 'vms', id);
  while (!existsSync(runDir)) await sleep(2);
  const api = await FakeClhApi.serve(runDir, agent);
  apis.push(api);
  return api;
}

/**
 * Resolves once `pid` is the stand-in itself: past `setpriv` and its own execve, running
 * node (the stand-ins' interpreter) with its argv laid out. Node's `spawn` event comes as
 * soon as the child's exec has closed its close-on-exec pipe; a real CH has long finished
 * starting when it answers on its API socket, but a stand-in's API is this test's, so the
 * driver can be done with a stand-in still inside `setpriv` (its uid switched, its
 * capabilities not yet dropped) or inside execve (its cmdline empty, invisible to the
 * reap's scan). Both were seen in CI on a busy machine.
 */
async function standInRunning(pid: number): Promise<void> {
  const node = await realpath(process.execPath);
  const deadline = performance.now() + 10_000;
  const state = async () => ({
    exe: await readlink(`/proc/${pid}/exe`),
    cmdline: await readFile(`/proc/${pid}/cmdline`, 'utf8'),
  });
  for (let seen = await state(); seen.exe !== node || !seen.cmdline.includes(`${runRoot}/`);) {
    if (performance.now() > deadline) {
      throw new Error(`pid ${pid} still runs ${seen.exe} with argv "${seen.cmdline}"`);
    }
    await sleep(5);
    seen = await state();
  }
}

/** Who a process runs as, from /proc. */
async function credentialsOf(pid: number) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    new RegExp(`^${name}:[ \\t]*(.*?)[ \\t]*$`, 'm').exec(status)?.[1] ?? '';
  return {
    uid: Number(field('Uid').split(/\s+/)[0]),
    groups: field('Groups'),
    capEff: field('CapEff'),
    noNewPrivs: field('NoNewPrivs'),
  };
}

/** The calls that changed the VM: the driver's pings while CH starts are left out. */
function calls(api: FakeClhApi): string[] {
  return api.endpoints().filter((endpoint) => endpoint !== 'vmm.ping');
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'clh-driver-'));
  runRoot = path.join(root, 'run');
  binaries = await writeStandInBinaries(path.join(root, 'bin'));
  agent = new FakeAgent(path.join(root, 'unused.sock'), (request) => {
    if (request.op === 'ping') request.reply(PING_FIELDS);
    else if (request.op === 'setClock') request.reply({ previousEpochMs: 0 });
    else if (request.op === 'reseed') {
      request.reply({ entropyBytes: request.blobs[0]?.length, reseeds: 1 });
    } else request.reply({});
  });
});

afterEach(async () => {
  for (const api of apis.splice(0)) {
    expect(api.refused).toEqual([]);
    await api.close();
  }
});

afterAll(async () => {
  await driver().reapOrphans();
  agent.dropConnections();
  await rm(root, { recursive: true, force: true });
});

describe('ClhHypervisor against stand-ins for Cloud Hypervisor and virtiofsd', () => {
  it('boots a template, snapshots it, restores a clone with its share, and cleans up', async () => {
    const hv = driver();
    const [template, templateApi] = await Promise.all([
      hv.startTemplate({ id: 'tpl', image, memoryMiB: 256, vcpus: 1 }),
      served('tpl'),
    ]);
    expect(calls(templateApi)).toEqual(['vm.create', 'vm.boot']);
    expect(templateApi.state).toBe('Running');
    expect(isAlive(template.pid)).toBe(true);
    // No share device on a template (CH cannot snapshot one with virtio-fs): none to bind into.
    expect(template.share).toBeUndefined();
    expect(() => template.bindIntoExport(root, 'store', { readOnly: true })).toThrow(
      'VM has no share device to bind into',
    );

    const snapshot = await hv.snapshot(template);
    expect(calls(templateApi)).toEqual([
      'vm.create',
      'vm.boot',
      'vm.pause',
      'vm.snapshot',
      'vmm.shutdown',
    ]);
    expect(existsSync(path.join(snapshot.dir, 'config.json'))).toBe(true);
    await template.exited;
    expect(existsSync(template.runDir)).toBe(false);

    const pingsBefore = agent.requests.filter((request) => request.op === 'ping').length;
    const [clone, cloneApi] = await Promise.all([
      hv.startClone(snapshot, { id: 'clone-1', mountPoints: ['store'] }),
      served('clone-1'),
    ]);
    expect(calls(cloneApi)).toEqual(['vm.restore', 'vm.resume', 'vm.add-fs']);
    expect(cloneApi.requests.find((request) => request.endpoint === 'vm.add-fs')?.body).toEqual(
      expect.objectContaining({ tag: 'shoot', socket: path.join(clone.runDir, 'virtiofs.sock') }),
    );
    expect(clone.share).toEqual({
      tag: 'shoot',
      fstype: 'virtiofs',
      hostDir: path.join(clone.runDir, 'export'),
    });
    // The clone's agent answered through the vsock of the restored config, got the time,
    // then fresh entropy.
    expect(agent.requests.filter((request) => request.op === 'ping').length).toBeGreaterThan(
      pingsBefore,
    );
    expect(agent.requests.slice(-2).map((request) => request.op)).toEqual(['setClock', 'reseed']);
    expect(agent.requests.at(-1)?.blobs[0]?.length).toBe(64);
    const processes = await processesReferencing(`${clone.runDir}/`);
    expect(processes).toContain(clone.pid);
    expect(processes).toHaveLength(2); // CH and the clone's virtiofsd
    // Both run as the clone's own unprivileged uid, as QEMU does (qemu-isolation.test.ts).
    await Promise.all(processes.map(standInRunning));
    const credentials = await Promise.all(processes.map(credentialsOf));
    expect(new Set(credentials.map((seen) => seen.uid)).size).toBe(1);
    for (const seen of credentials) {
      expect(seen.uid).toBeGreaterThanOrEqual(2_100_000_000);
      expect(seen).toMatchObject({ groups: '', capEff: '0000000000000002', noNewPrivs: '1' });
    }

    await clone.destroy();
    expect(calls(cloneApi).at(-1)).toBe('vmm.shutdown');
    expect(await processesReferencing(`${clone.runDir}/`)).toEqual([]);
    expect(existsSync(clone.runDir)).toBe(false);
    await snapshot.destroy();
    expect(existsSync(snapshot.dir)).toBe(false);
  });

  it('reaps the processes and files of a daemon that died with VMs running', async () => {
    const [template] = await Promise.all([
      driver().startTemplate({ id: 'tpl-orphan', image, memoryMiB: 256, vcpus: 1 }),
      served('tpl-orphan'),
    ]);
    await standInRunning(template.pid);
    const report = await driver().reapOrphans();
    expect(report.killed).toContain(template.pid);
    expect(report.removed).toContain(template.runDir);
    expect(existsSync(template.runDir)).toBe(false);
    await template.exited;
    template.agent.close(); // the dead daemon's side of the connection
  });
});
