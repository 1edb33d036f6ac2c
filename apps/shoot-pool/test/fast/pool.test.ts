// WarmPool's bookkeeping against a fake hypervisor: limits, queue, refill, idle deaths, drain.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@seed/service-kit';
import type { AgentClient } from '../../src/agent/agent.client';
import { PoolUnavailable, WarmPool, type PoolTransition } from '../../src/pool/pool';
import type { Hypervisor, MicroVm, VmExit, VmSnapshot } from '../../src/vm/hypervisor';

class FakeVm implements MicroVm {
  readonly role = 'clone' as const;
  readonly runDir = '/nonexistent';
  readonly share = { tag: 'share', fstype: '9p' as const, hostDir: '/nonexistent' };
  readonly agent = {
    mount: () => Promise.resolve(),
    exec: () => Promise.resolve({ exitCode: 0 }),
  } as unknown as AgentClient;
  readonly exited: Promise<VmExit>;
  destroyed = false;
  #exit!: (exit: VmExit) => void;

  constructor(
    readonly id: string,
    readonly pid: number,
  ) {
    this.exited = new Promise((resolve) => (this.#exit = resolve));
  }

  bindIntoExport(): Promise<string> {
    return Promise.resolve('/nonexistent');
  }

  defer(): void {}

  /** Whether the pool raised its priority (after the warm-up, before handing it out). */
  prioritized = false;

  prioritize(): Promise<void> {
    this.prioritized = true;
    return Promise.resolve();
  }

  crash(): void {
    this.#exit({ code: null, signal: 'SIGKILL', destroyed: false });
  }

  destroy(): Promise<void> {
    this.destroyed = true;
    this.#exit({ code: null, signal: 'SIGKILL', destroyed: true });
    return Promise.resolve();
  }
}

class FakeHypervisor implements Hypervisor {
  readonly kind = 'qemu' as const;
  readonly runRoot = '/nonexistent';
  readonly vms: FakeVm[] = [];

  startTemplate(): Promise<MicroVm> {
    return Promise.resolve(new FakeVm('template', 1));
  }

  snapshot(): Promise<VmSnapshot> {
    return Promise.resolve({
      id: 's',
      dir: '/nonexistent',
      memoryMiB: 64,
      vcpus: 1,
      destroy: () => Promise.resolve(),
    });
  }

  async startClone(): Promise<MicroVm> {
    await sleep(5);
    const vm = new FakeVm(`clone-${this.vms.length}`, 100 + this.vms.length);
    this.vms.push(vm);
    return vm;
  }

  reapOrphans() {
    return Promise.resolve({ killed: [], unmounted: [], removed: [] });
  }
}

async function startedPool(size: number, queueBound: number, perCallerLimit: number) {
  const hv = new FakeHypervisor();
  const transitions: PoolTransition[] = [];
  const pool = new WarmPool(
    hv,
    {
      size,
      queueBound,
      perCallerLimit,
      queueTimeoutMs: 1_000,
      image: { kernel: '', initramfs: '' },
      memoryMiB: 64,
      vcpus: 1,
    },
    {
      transition: (name) => transitions.push(name),
      failure: () => undefined,
      restored: () => undefined,
    },
    createLogger('test', 'silent'),
  );
  await pool.start();
  return { hv, pool, transitions };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i += 1) await sleep(5);
  expect(check()).toBe(true);
}

describe('WarmPool', () => {
  it('keeps size clones warm and replaces each one taken', async () => {
    const { hv, pool } = await startedPool(2, 2, 4);
    expect(pool.status()).toMatchObject({ idle: 2, busy: 0, capacity: 2, ready: true });
    const lease = await pool.acquire('a');
    // Restored at a low priority; handed out at the daemon's.
    expect((lease.vm as FakeVm).prioritized).toBe(true);
    expect(pool.status().busy).toBe(1);
    await until(() => pool.status().idle === 2);
    await lease.release();
    expect((lease.vm as FakeVm).destroyed).toBe(true);
    expect(hv.vms.length).toBe(3);
    await pool.drain();
    expect(hv.vms.every((vm) => vm.destroyed)).toBe(true);
  });

  it('queues FIFO up to the bound, then refuses; limits each caller', async () => {
    const { pool, transitions } = await startedPool(1, 1, 2);
    const first = await pool.acquire('a');
    const queued = pool.acquire('b');
    await expect(pool.acquire('c')).rejects.toMatchObject({ name: 'PoolFull', scope: 'queue' });
    await first.release();
    const second = await queued;
    await second.release();
    await until(() => pool.status().idle === 1);

    const mine = await pool.acquire('a');
    const waiting = pool.acquire('a');
    await expect(pool.acquire('a')).rejects.toMatchObject({ scope: 'caller' });
    await mine.release();
    await (await waiting).release();
    expect(transitions).toEqual(
      expect.arrayContaining(['queued', 'dequeued', 'rejected-queue', 'rejected-caller']),
    );
    await pool.drain();
  });

  it('drops and replaces a clone that dies while idle', async () => {
    const { hv, pool, transitions } = await startedPool(1, 0, 1);
    hv.vms[0]!.crash();
    await until(() => transitions.includes('died-idle') && pool.status().idle === 1);
    expect(hv.vms.length).toBe(2);
    const lease = await pool.acquire('a');
    expect(lease.vm.id).toBe('clone-1');
    await lease.release();
    await pool.drain();
  });

  it('fails queued shoots and refuses new ones on drain', async () => {
    const { pool } = await startedPool(1, 1, 2);
    const lease = await pool.acquire('a');
    const queued = pool.acquire('b');
    const drained = pool.drain();
    await expect(queued).rejects.toBeInstanceOf(PoolUnavailable);
    await drained;
    await expect(pool.acquire('c')).rejects.toBeInstanceOf(PoolUnavailable);
    expect((lease.vm as FakeVm).destroyed).toBe(true);
  });

  it('destroys the snapshot of a template still booting when it is drained', async () => {
    const hv = new FakeHypervisor();
    let finishBoot!: () => void;
    const booted = new Promise<void>((resolve) => (finishBoot = resolve));
    let snapshotDestroyed = false;
    hv.snapshot = async () => {
      await booted;
      return {
        id: 's',
        dir: '/nonexistent',
        memoryMiB: 64,
        vcpus: 1,
        destroy: () => {
          snapshotDestroyed = true;
          return Promise.resolve();
        },
      };
    };
    const pool = new WarmPool(
      hv,
      {
        size: 1,
        queueBound: 1,
        perCallerLimit: 1,
        queueTimeoutMs: 1_000,
        image: { kernel: '', initramfs: '' },
        memoryMiB: 64,
        vcpus: 1,
      },
      { transition: () => undefined, failure: () => undefined, restored: () => undefined },
      createLogger('test', 'silent'),
    );
    const starting = pool.start();
    await sleep(5);
    const drained = pool.drain();
    finishBoot();
    await Promise.all([starting, drained]);
    expect(snapshotDestroyed).toBe(true);
    expect(hv.vms).toEqual([]);
  });
});
