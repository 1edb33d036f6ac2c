// bench/shoot compare-guests: which of two or more guest images (folders scripts/guest-image
// made), or QEMU binaries, costs a clone less QEMU CPU to restore and warm. Whole-bench
// runs cannot tell a change of a few percent: under TCG the same image moved 226–284 ms
// from one run to the next with the host's own drift. Here every image gets a primed
// snapshot in one process and their clones are restored in turns, the order rotated each
// round, so the drift and the cost of the previous clone's teardown fall on all of them
// alike. Then one more clone of each counts its QEMU's translation blocks, which no drift
// moves.
//
//   pnpm compare-guests GUEST_DIR[@QEMU] GUEST_DIR[@QEMU]... (BENCH_COMPARE_ROUNDS clones of
//   each, 30; QEMU: a qemu-system-x86_64, by default the pool's, scripts/qemu's)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { QemuHypervisor, findGuestImage, findQemu, type VmSnapshot } from '@seed/shoot-pool';
import {
  BenchInputError,
  benchSettings,
  median,
  rowPrinter,
  runBench,
  type BenchCleanups,
} from '@seed/testing';
import { cpuMs, primedSnapshot, warmUp } from './clone';

const { BENCH_COMPARE_ROUNDS: ROUNDS } = benchSettings('bench/shoot compare-guests', {
  BENCH_COMPARE_ROUNDS: 30,
});

interface CloneCpu {
  /** QEMU CPU from its start until the clone's clock is set and its RNG reseeded. */
  restored: number;
  /** The pool's warm-up after that: mount the share, run the first command. */
  warmUp: number;
}

async function measureClone(hv: QemuHypervisor, snapshot: VmSnapshot): Promise<CloneCpu> {
  let restored = NaN;
  const vm = await hv.startClone(snapshot, {
    mountPoints: [],
    onPhase: (phase, pid) => {
      if (phase === 'woken') restored = cpuMs(pid);
    },
  });
  try {
    await warmUp(vm);
    return { restored, warmUp: cpuMs(vm.pid) - restored };
  } finally {
    await vm.destroy();
  }
}

/**
 * Translation blocks one more clone's QEMU made, restored and then warm: the work behind
 * the CPU, counted apart from it (asking costs QEMU CPU) and the same in any hour.
 */
async function countBlocks(
  hv: QemuHypervisor,
  snapshot: VmSnapshot,
): Promise<{ restored: number; warmUp: number }> {
  const vm = await hv.startClone(snapshot, { mountPoints: [] });
  try {
    const restored = await hv.translationBlocks(vm);
    await warmUp(vm);
    return { restored, warmUp: (await hv.translationBlocks(vm)) - restored };
  } finally {
    await vm.destroy();
  }
}

async function main(cleanups: BenchCleanups): Promise<void> {
  const dirs = process.argv.slice(2);
  if (dirs.length < 2) {
    throw new BenchInputError([
      'usage: pnpm compare-guests GUEST_DIR[@QEMU] GUEST_DIR[@QEMU]... (two or more folders made by scripts/guest-image, each with the qemu-system-x86_64 to run it under)',
    ]);
  }
  const pool = await findQemu(process.env.SEED_QEMU_BINARY);
  const variants = await Promise.all(
    dirs.map(async (arg) => {
      const [dir, qemu = pool] = arg.split('@') as [string, string?];
      const failed = (error: Error) => {
        throw new BenchInputError([`${arg}: ${error.message}`]);
      };
      return {
        image: await findGuestImage(path.resolve(dir)).catch(failed),
        qemu: await findQemu(path.resolve(qemu)).catch(failed),
      };
    }),
  );
  const root = await mkdtemp(path.join(tmpdir(), 'bench-shoot-compare-'));
  const hvs = variants.map(
    ({ qemu }, index) =>
      new QemuHypervisor({
        runRoot: path.join(root, String(index)),
        qemuBinary: qemu,
        accel: 'tcg',
      }),
  );
  // However the run ends: whatever VM, snapshot or memory file is left under the run root.
  cleanups.add('remove the run root and what runs under it', async () => {
    for (const hv of hvs) await hv.reapOrphans();
    await rm(root, { recursive: true, force: true });
  });
  const snapshots: VmSnapshot[] = [];
  for (const [index, { image }] of variants.entries()) {
    snapshots.push(await primedSnapshot(hvs[index]!, image));
  }
  const samples = dirs.map((): CloneCpu[] => []);
  // Round 0 is not counted: the first restore of a snapshot pays for the page cache.
  for (let round = 0; round <= ROUNDS; round += 1) {
    for (let turn = 0; turn < snapshots.length; turn += 1) {
      const index = (round + turn) % snapshots.length;
      const cpu = await measureClone(hvs[index]!, snapshots[index]!);
      if (round > 0) samples[index]!.push(cpu);
    }
  }
  const blocks: Awaited<ReturnType<typeof countBlocks>>[] = [];
  for (const [index, snapshot] of snapshots.entries()) {
    blocks.push(await countBlocks(hvs[index]!, snapshot));
  }
  for (const snapshot of snapshots) await snapshot.destroy();

  console.log(
    `bench/shoot compare-guests: QEMU TCG, ${ROUNDS} clones of each in turns; QEMU CPU per clone, mean / median ms`,
  );
  const line = rowPrinter(24);
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  const both = (values: number[]) => `${mean(values).toFixed(1)} / ${median(values).toFixed(0)}`;
  // The image's folder name, and the QEMU as given (their file names are all alike).
  const label = (arg: string) => {
    const [dir, ...qemu] = arg.split('@');
    return [path.basename(path.resolve(dir!)), ...qemu].join('@');
  };
  line('guest image[@QEMU]', 'restored | warm-up | restored and warm');
  dirs.forEach((dir, index) => {
    const cpu = samples[index]!;
    line(
      label(dir),
      [
        both(cpu.map((c) => c.restored)),
        both(cpu.map((c) => c.warmUp)),
        both(cpu.map((c) => c.restored + c.warmUp)),
      ].join(' | '),
    );
  });
  console.log('translation blocks of one more clone of each (QEMU `info jit`)');
  line('guest image[@QEMU]', 'restored | warm-up | restored and warm');
  dirs.forEach((dir, index) => {
    const { restored, warmUp: warm } = blocks[index]!;
    line(label(dir), `${restored} | ${warm} | ${restored + warm}`);
  });
}

runBench('bench/shoot compare-guests', main);
