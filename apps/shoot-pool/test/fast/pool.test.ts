// WarmPool's bookkeeping against a fake hypervisor: limits, queue, refill, idle deaths, drain.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@seed/service-kit';
import type { AgentClient } from '../../src/agent/agent.client';
import type { BindRequest } from '../../src/agent/protocol';
import { PoolUnavailable, WarmPool, type PoolTransition } from '../../src/pool/pool';
import type {
  CloneVm,
  Hypervisor,
  MicroVm,
  VmExit,
  VmShare,
  VmSnapshot,
} from '../../src/vm/hypervisor';

/** A guest bind target the fake guest refuses. */
const REFUSED_TARGET = '/refused';

const SHARE: VmShare = { tag: 'share', fstype: '9p', hostDir: '/nonexistent' };

/** A fake VM; `Share` is VmShare for a clone, which always has one. */
class FakeVm<Share extends VmShare | undefined = VmShare> implements MicroVm {
  readonly role = 'clone' as const;
  readonly runDir = '/nonexistent';
  /** The binds of the warm-up's exec. */
  warmBinds: BindRequest[] = [];
  /** The agent's requests, in order: op, and an exec's bind sources and unbinds. */
  readonly requests: string[] = [];
  readonly agent = {
    setClock: () => this.#request('setClock'),
    reseed: () => this.#request('reseed'),
    mount: () => this.#request('mount'),
    unmount: () => this.#request('unmount'),
    exec: (request: { binds?: BindRequest[]; unbinds?: string[] }) => {
      const binds = (request.binds ?? []).map((bind) => bind.source);
      void this.#request(
        `exec binds=${binds.join(',')} unbinds=${request.unbinds?.join(',') ?? ''}`,
      );
      this.warmBinds = request.binds ?? [];
      if (this.warmBinds.some((bind) => bind.target === REFUSED_TARGET)) {
        return Promise.reject(new Error('the guest refused the bind'));
      }
      return Promise.resolve({ exitCode: 0 });
    },
  } as unknown as AgentClient;
  readonly exited: Promise<VmExit>;
  destroyed = false;
  #exit!: (exit: VmExit) => void;

  constructor(
    readonly id: string,
    readonly pid: number,
    readonly share: Share,
  ) {
    this.exited = new Promise((resolve) => (this.#exit = resolve));
  }

  #request(op: string): Promise<object> {
    this.requests.push(op);
    return Promise.resolve({});
  }

  bindIntoExport(): string {
    return '/nonexistent';
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
  readonly template: FakeVm<VmShare | undefined>;
  /** The template agent's requests when it was snapshotted. */
  requestsBeforeSnapshot: string[] = [];

  constructor(templateHasShare = true) {
    this.template = new FakeVm('template', 1, templateHasShare ? SHARE : undefined);
  }

  startTemplate(): Promise<MicroVm> {
    return Promise.resolve(this.template);
  }

  snapshot(): Promise<VmSnapshot> {
    this.requestsBeforeSnapshot = [...this.template.requests];
    return Promise.resolve({
      id: 's',
      dir: '/nonexistent',
      memoryMiB: 64,
      vcpus: 1,
      destroy: () => Promise.resolve(),
    });
  }

  async startClone(): Promise<CloneVm> {
    await sleep(5);
    const vm = new FakeVm(`clone-${this.vms.length}`, 100 + this.vms.length, SHARE);
    this.vms.push(vm);
    return vm;
  }

  reapOrphans() {
    return Promise.resolve({ killed: [], unmounted: [], removed: [] });
  }
}

async function startedPool(
  size: number,
  queueBound: number,
  perCallerLimit: number,
  hv = new FakeHypervisor(),
) {
  const transitions: PoolTransition[] = [];
  const pool = new WarmPool(
    hv,
    {
      size,
      queueBound,
      perCallerLimit,
      queueTimeoutMs: 1_000,
      image: { kernel: '', uniprocessorKernel: '', initramfs: '' },
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

  it('primes the template before its snapshot, mounting the share only where it has one', async () => {
    const primed = async (templateHasShare: boolean) => {
      const { hv, pool } = await startedPool(1, 0, 1, new FakeHypervisor(templateHasShare));
      await pool.drain();
      return hv.requestsBeforeSnapshot;
    };
    expect(await primed(true)).toEqual([
      'setClock',
      'reseed',
      'mount',
      'exec binds=/run/shoot unbinds=',
      'exec binds= unbinds=/run/template-prime',
      'unmount',
    ]);
    expect(await primed(false)).toEqual([
      'setClock',
      'reseed',
      'exec binds=/bin unbinds=',
      'exec binds= unbinds=/run/template-prime',
    ]);
  });

  it('prepares the layout last served in clones that warm afterwards, never a refused one', async () => {
    const { hv, pool } = await startedPool(1, 1, 2);
    const volume = { source: '/run/shoot/vol0', target: '/data', readOnly: false };
    const first = await pool.acquire('a');
    expect(first.prepared).toEqual([]);
    pool.prepare([volume]);
    await first.release();
    await until(() => pool.status().idle === 1);
    const second = await pool.acquire('a');
    expect(second.prepared).toEqual([volume]);
    expect((second.vm as FakeVm).warmBinds).toContainEqual(volume);

    // A layout the guest refuses fails that warm-up once; the next clones prepare nothing.
    pool.prepare([{ ...volume, target: REFUSED_TARGET }]);
    await second.release();
    await until(() => pool.status().idle === 1);
    const third = await pool.acquire('a');
    expect(third.prepared).toEqual([]);
    expect(hv.vms.filter((vm) => vm.destroyed)).toHaveLength(3); // two used, one refused
    await third.release();
    await pool.drain();
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
        image: { kernel: '', uniprocessorKernel: '', initramfs: '' },
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
