// Real microVMs under QEMU (TCG here: the hosts' KVM is a broken nested one): boot a
// template, snapshot it, restore clones and drive their guest agents. QEMU is installed on
// every project machine, so these always run; they skip, saying why, only without it.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AgentError } from '../src/agent/agent.errors';
import { VmError, type GuestImage, type CloneVm, type VmSnapshot } from '../src/vm/hypervisor';
import { mountsUnder } from '@seed/mount-table';
import { QemuHypervisor, reapOrphans } from '../src/vm/qemu.hypervisor';
import { RunLayout } from '../src/vm/run-dir';
import { isAlive, processesReferencing } from '../src/vm/vmm-process';
import { GUEST_IMAGE_TIMEOUT_MS, guestImage, qemuBinary, qemuMissing } from './guest-image';

const missing = qemuMissing();
if (missing !== undefined) console.warn(missing);
const describeVm = missing === undefined ? describe : describe.skip;

const HOUR_MS = 3_600_000;

/** The fastest of `n` sequential runs, in ms: a round trip without scheduling noise. */
async function fastest(n: number, run: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i += 1) {
    const started = performance.now();
    await run();
    best = Math.min(best, performance.now() - started);
  }
  return Math.round(best * 10) / 10;
}

describeVm('QEMU microVMs', () => {
  let root: string;
  let image: GuestImage;
  let hv: QemuHypervisor;
  let snapshot: VmSnapshot;
  let template: { pid: number; runDir: string };
  let clones: CloneVm[] = [];
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    image = await guestImage();
    root = await mkdtemp(path.join(tmpdir(), 'shoot-vm-'));
    hv = new QemuHypervisor({
      runRoot: path.join(root, 'run'),
      qemuBinary: await qemuBinary(),
      accel: 'tcg',
    });
  }, GUEST_IMAGE_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(clones.map((vm) => vm.destroy()));
    await snapshot?.destroy();
    // Whatever a failed test left behind.
    if (hv !== undefined) await hv.reapOrphans();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
    console.log(`timings (ms, TCG): ${JSON.stringify(timings)}`);
  });

  it('boots a template whose agent answers, and snapshots it', async () => {
    let started = Date.now();
    const vm = await hv.startTemplate({ id: 'template', image, memoryMiB: 256, vcpus: 1 });
    timings.templateBoot = Date.now() - started;
    template = { pid: vm.pid, runDir: vm.runDir };
    expect(isAlive(vm.pid)).toBe(true);

    const ping = await vm.agent.ping();
    expect(ping.version).toBe(1);
    // One vCPU: the uniprocessor kernel (vmlinux-up).
    const version = await vm.agent.exec({ argv: ['uname', '-v'], timeoutMs: 10_000 });
    expect(version.stdout.toString()).not.toContain('SMP');
    // Skew the template's clock by an hour: clones must not inherit it.
    await vm.agent.setClock(Date.now() - HOUR_MS);

    started = Date.now();
    snapshot = await hv.snapshot(vm);
    timings.snapshot = Date.now() - started;
    expect(snapshot.memoryMiB).toBe(256);
    // The template is consumed: its QEMU is gone, and so are its files.
    expect(isAlive(template.pid)).toBe(false);
    expect(existsSync(template.runDir)).toBe(false);
  });

  it('boots the SMP kernel for a VM of more than one vCPU', async () => {
    const vm = await hv.startTemplate({ id: 'smp', image, memoryMiB: 256, vcpus: 2 });
    try {
      const version = await vm.agent.exec({ argv: ['uname', '-v'], timeoutMs: 10_000 });
      expect(version.stdout.toString()).toContain('SMP');
      const cpus = await vm.agent.exec({ argv: ['nproc'], timeoutMs: 10_000 });
      expect(cpus.stdout.toString().trim()).toBe('2');
    } finally {
      await vm.destroy();
    }
  });

  it('says how QEMU ended, and its last words, when it exits before the guest is up', async () => {
    const broken = { ...image, uniprocessorKernel: path.join(root, 'no-such-vmlinux') };
    const error = await hv
      .startTemplate({ id: 'no-kernel', image: broken, memoryMiB: 128, vcpus: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VmError);
    expect((error as VmError).message).toMatch(
      /^no-kernel: .*QEMU exited \(exit status 1: qemu: could not open kernel file .*no-such-vmlinux/,
    );
    expect(existsSync(path.join(root, 'run', 'vms', 'no-kernel'))).toBe(false);
  });

  it('restores two clones with their clocks set', async () => {
    const started = Date.now();
    clones = await Promise.all(
      ['clone-a', 'clone-b'].map((id) =>
        hv.startClone(snapshot, { id, mountPoints: ['vol0', 'store'] }),
      ),
    );
    timings.twoClonesToAgentReady = Date.now() - started;
    const one = Date.now();
    const extra = await hv.startClone(snapshot, { id: 'clone-timing' });
    timings.cloneToAgentReady = Date.now() - one;
    // Its QEMU translates the guest's code afresh: blocks for the wake, more for a command.
    const restored = await hv.translationBlocks(extra);
    expect(restored).toBeGreaterThan(1_000);
    await extra.agent.exec({ argv: ['true'], timeoutMs: 5_000 });
    expect(await hv.translationBlocks(extra)).toBeGreaterThan(restored);
    await extra.destroy();

    for (const vm of clones) {
      const ping = await vm.agent.ping();
      expect(Math.abs(ping.epochMs - Date.now())).toBeLessThan(5_000);
      const date = await vm.agent.exec({ argv: ['date', '+%s'], timeoutMs: 5_000 });
      const guestSeconds = Number(date.stdout.toString().trim());
      expect(Math.abs(guestSeconds * 1000 - Date.now())).toBeLessThan(5_000);
    }
    expect(new Set(clones.map((vm) => vm.pid)).size).toBe(2);
  });

  it('restores a clone at a lower priority, every thread, until prioritized', async () => {
    const [a] = clones as [CloneVm, CloneVm];
    const niceness = async () => {
      const tasks = await readdir(`/proc/${a.pid}/task`);
      const values = await Promise.all(
        tasks.map(async (tid) => {
          const stat = await readFile(`/proc/${a.pid}/task/${tid}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
        }),
      );
      expect(values.length).toBeGreaterThan(1);
      return new Set(values);
    };
    const own = getPriority();
    expect(await niceness()).toEqual(new Set([Math.min(19, own + 10)]));
    await a.prioritize();
    expect(await niceness()).toEqual(new Set([own]));
  });

  it('keeps serving after the host disconnects and reconnects', async () => {
    const [, b] = clones as [CloneVm, CloneVm];
    const started = Date.now();
    await b.agent.reconnect();
    expect((await b.agent.ping()).version).toBe(1);
    timings.reconnectAndPing = Date.now() - started;
    timings.pingRoundTrip = await fastest(5, () => b.agent.ping());
    timings.execTrueRoundTrip = await fastest(5, () =>
      b.agent.exec({ argv: ['true'], timeoutMs: 5_000 }),
    );
  });

  it('runs commands: stdout, stderr, exit codes, stdin, env', async () => {
    const [a, b] = clones as [CloneVm, CloneVm];
    const started = Date.now();
    const echo = await a.agent.exec({ argv: ['echo', 'hello', 'world'], timeoutMs: 5_000 });
    timings.execEcho = Date.now() - started;
    expect(echo.stdout.toString()).toBe('hello world\n');
    expect(echo.stderr.length).toBe(0);
    expect(echo.exitCode).toBe(0);
    expect(echo.timedOut).toBe(false);

    const failing = await b.agent.exec({
      argv: ['sh', '-c', 'echo oops >&2; exit 42'],
      timeoutMs: 5_000,
    });
    expect(failing.exitCode).toBe(42);
    expect(failing.stderr.toString()).toBe('oops\n');
    expect(failing.stdout.length).toBe(0);

    const missingCommand = await a.agent.exec({ argv: ['no-such-command'], timeoutMs: 5_000 });
    expect(missingCommand.exitCode).toBe(127);

    const stdin = await b.agent.exec({
      argv: ['cat'],
      stdin: Buffer.from('from the host\n'),
      timeoutMs: 5_000,
    });
    expect(stdin.stdout.toString()).toBe('from the host\n');

    const env = await a.agent.exec({
      argv: ['sh', '-c', 'echo "$GREETING|$HOME"'],
      env: { GREETING: 'hi there', HOME: '/work' },
      timeoutMs: 5_000,
    });
    expect(env.stdout.toString()).toBe('hi there|/work\n');
  });

  it('round-trips binary output byte for byte', async () => {
    const [a] = clones as [CloneVm];
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    // The guest writes every byte value itself (printf octal escapes)…
    const script = Array.from(all, (byte) => `\\${byte.toString(8).padStart(3, '0')}`).join('');
    const printed = await a.agent.exec({ argv: ['printf', script], timeoutMs: 5_000 });
    expect(printed.stdout.equals(all)).toBe(true);
    // …and echoes what the host sent, stdin to stdout unchanged.
    const echoed = await a.agent.exec({ argv: ['cat'], stdin: all, timeoutMs: 5_000 });
    expect(echoed.stdout.equals(all)).toBe(true);
  });

  it('caps output and flags the truncation', async () => {
    const [, b] = clones as [CloneVm, CloneVm];
    const big = await b.agent.exec({
      argv: ['head', '-c', '100000', '/dev/zero'],
      maxOutputBytes: 4096,
      timeoutMs: 5_000,
    });
    expect(big.stdout.length).toBe(4096);
    expect(big.stdoutTruncated).toBe(true);
    expect(big.stderrTruncated).toBe(false);
    expect(big.exitCode).toBe(0);
  });

  it('kills the whole process group on timeout: 124 and timedOut', async () => {
    const [a] = clones as [CloneVm];
    const started = Date.now();
    const slept = await a.agent.exec({
      argv: ['sh', '-c', 'sleep 30 & sleep 30; echo unreachable'],
      timeoutMs: 500,
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(slept.exitCode).toBe(124);
    expect(slept.timedOut).toBe(true);
    expect(slept.stdout.length).toBe(0);
    // Neither sleep survived: the group went with its leader.
    const left = await a.agent.exec({
      argv: ['sh', '-c', 'ps -o comm | grep -c "^sleep" || true'],
      timeoutMs: 5_000,
    });
    expect(left.stdout.toString().trim()).toBe('0');
  });

  it('shares host folders over 9p: read-write, read-only, sealed', async () => {
    const [a, b] = clones as [CloneVm, CloneVm];
    const volume = path.join(root, 'volume');
    const store = path.join(root, 'store');
    await mkdir(volume);
    await mkdir(store);
    await writeFile(path.join(store, 'hello.txt'), 'from the store\n');

    // A warm clone mounts its share before any caller; binds arrive at request time.
    await a.agent.mount({
      fstype: a.share.fstype,
      source: a.share.tag,
      target: '/run/shoot',
      readOnly: false,
    });
    a.bindIntoExport(volume, 'vol0', { readOnly: false });
    a.bindIntoExport(store, 'store', { readOnly: true });
    // A caller's folder that is gone or a file, and a mount point the clone did not
    // declare, are the caller's or the driver's mistakes (invalid), not the host's.
    const file = path.join(root, 'file.txt');
    await writeFile(file, 'x');
    for (const [source, point, reason] of [
      [
        path.join(root, 'gone'),
        'vol1',
        /: cannot bind .*gone onto mount point vol1: .*No such file/,
      ],
      [file, 'vol1', /: cannot bind .*file\.txt onto mount point vol1: .*Not a directory/],
      [volume, 'vol9', /mount point vol9 \(declare it in CloneSpec\.mountPoints\)/],
    ] as const) {
      let refusal: unknown;
      try {
        a.bindIntoExport(source, point, { readOnly: false });
      } catch (error) {
        refusal = error;
      }
      expect(refusal).toMatchObject({ kind: 'invalid', message: expect.stringMatching(reason) });
    }

    const write = await a.agent.exec({
      argv: [
        'sh',
        '-c',
        'echo written in the guest > /run/shoot/vol0/out.txt && cat /run/shoot/store/hello.txt',
      ],
      timeoutMs: 5_000,
    });
    expect(write.exitCode).toBe(0);
    expect(write.stdout.toString()).toBe('from the store\n');
    expect(await readFile(path.join(volume, 'out.txt'), 'utf8')).toBe('written in the guest\n');

    // The store is bound read-only on the host; the export itself is sealed.
    for (const target of ['/run/shoot/store/new.txt', '/run/shoot/stray.txt']) {
      const refused = await a.agent.exec({
        argv: ['sh', '-c', `echo x > ${target}`],
        timeoutMs: 5_000,
      });
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stderr.toString()).toMatch(/read-only/i);
    }
    expect(await readdir(store)).toEqual(['hello.txt']);

    // A guest-side read-only mount of the share refuses writes even to a writable bind.
    b.bindIntoExport(volume, 'vol0', { readOnly: false });
    await b.agent.mount({
      fstype: b.share.fstype,
      source: b.share.tag,
      target: '/mnt/ro',
      readOnly: true,
    });
    const roWrite = await b.agent.exec({
      argv: ['sh', '-c', 'echo x > /mnt/ro/vol0/ro.txt'],
      timeoutMs: 5_000,
    });
    expect(roWrite.exitCode).not.toBe(0);
    expect(roWrite.stderr.toString()).toMatch(/read-only/i);
    const roRead = await b.agent.exec({ argv: ['cat', '/mnt/ro/vol0/out.txt'], timeoutMs: 5_000 });
    expect(roRead.stdout.toString()).toBe('written in the guest\n');
    expect(existsSync(path.join(volume, 'ro.txt'))).toBe(false);

    // Guest-side helpers: a read-only bind inside the guest, then remounts that make the
    // share and the bind writable (9p allows one mount per device, so no second mount).
    await b.agent.bind({ source: '/mnt/ro/vol0', target: '/data', readOnly: true });
    await b.agent.remount({ target: '/mnt/ro', readOnly: false, bind: false });
    const bound = await b.agent.exec({ argv: ['sh', '-c', 'echo x > /data/y'], timeoutMs: 5_000 });
    expect(bound.exitCode).not.toBe(0);
    await b.agent.remount({ target: '/data', readOnly: false, bind: true });
    const rebound = await b.agent.exec({
      argv: ['sh', '-c', 'echo y > /data/y'],
      timeoutMs: 5_000,
    });
    expect(rebound.exitCode).toBe(0);
    expect(await readFile(path.join(volume, 'y'), 'utf8')).toBe('y\n');
    await b.agent.unmount({ target: '/data', lazy: false });

    // A failed mount is the agent's typed answer, not a broken connection.
    const failure = await b.agent
      .mount({ fstype: '9p', source: 'no-such-tag', target: '/mnt/x', readOnly: true })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AgentError);
    expect((failure as AgentError).kind).toBe('rejected');
    expect((await b.agent.ping()).version).toBe(1);
  });

  it('destroys a VM: no QEMU process, no mounts, no files', async () => {
    const [a] = clones as [CloneVm];
    const { pid, runDir } = a;
    const shmBefore = await readdir('/dev/shm');
    await a.destroy();
    await a.destroy(); // runs once
    expect(isAlive(pid)).toBe(false);
    expect(await processesReferencing(`${runDir}/`)).toEqual([]);
    expect(await mountsUnder(runDir)).toEqual([]);
    expect(existsSync(runDir)).toBe(false);
    expect(await readdir('/dev/shm')).toEqual(shmBefore); // clones own no memory file
    expect((await a.exited).destroyed).toBe(true);
    // The bind source survived the teardown untouched.
    expect(await readFile(path.join(root, 'volume', 'out.txt'), 'utf8')).toBe(
      'written in the guest\n',
    );
    clones = clones.filter((vm) => vm !== a);
  });

  it('reaps the VMs of a crashed daemon', async () => {
    // A "daemon" that starts a template, snapshots it, starts a clone with a bind, and then
    // dies without cleaning up: its QEMU runs on (it is detached) and its files stay.
    const crashedRoot = path.join(root, 'crashed');
    const crashed = new QemuHypervisor({
      runRoot: crashedRoot,
      qemuBinary: await qemuBinary(),
      accel: 'tcg',
    });
    const orphanSnapshot = await crashed.snapshot(
      await crashed.startTemplate({ image, memoryMiB: 128, vcpus: 1 }),
    );
    const orphan = await crashed.startClone(orphanSnapshot, { mountPoints: ['vol0'] });
    const volume = path.join(root, 'orphan-volume');
    await mkdir(volume);
    await writeFile(path.join(volume, 'keep.txt'), 'keep me\n');
    orphan.bindIntoExport(volume, 'vol0', { readOnly: false });
    expect(isAlive(orphan.pid)).toBe(true);
    const crashedLayout = new RunLayout(crashedRoot, '/dev/shm');
    const crashedRam = async () =>
      (await readdir('/dev/shm')).filter((name) => crashedLayout.ownsRamFile(name));
    expect((await crashedRam()).length).toBe(1); // the orphan snapshot's memory

    // The next daemon reaps before starting anything.
    const report = await reapOrphans(crashedRoot);
    expect(report.killed).toEqual([orphan.pid]);
    expect(report.unmounted).toEqual(
      expect.arrayContaining([
        path.join(orphan.runDir, 'export', 'vol0'),
        path.join(orphan.runDir, 'export'),
      ]),
    );
    expect(isAlive(orphan.pid)).toBe(false);
    expect(await mountsUnder(crashedRoot)).toEqual([]);
    expect(await readdir(path.join(crashedRoot, 'vms'))).toEqual([]);
    expect(await readdir(path.join(crashedRoot, 'snapshots'))).toEqual([]);
    expect(await crashedRam()).toEqual([]);
    expect(await readFile(path.join(volume, 'keep.txt'), 'utf8')).toBe('keep me\n');
    // Reaping twice finds nothing.
    expect(await reapOrphans(crashedRoot)).toEqual({ killed: [], unmounted: [], removed: [] });
  });

  it('falls back to TCG when a KVM probe boot does not answer in time', async () => {
    const probing = new QemuHypervisor({
      runRoot: path.join(root, 'probe'),
      qemuBinary: await qemuBinary(),
      kvmProbeTimeoutMs: 2_000,
    });
    const accel = await probing.accelFor(image);
    // Where KVM works this is 'kvm'; on the project's nested-KVM hosts it is 'tcg'.
    console.log(`accel chosen by the probe: ${accel}`);
    expect(['kvm', 'tcg']).toContain(accel);
    expect(await readdir(path.join(root, 'probe', 'vms'))).toEqual([]);
    expect(await processesReferencing(`${path.join(root, 'probe')}/`)).toEqual([]);
  });
});
