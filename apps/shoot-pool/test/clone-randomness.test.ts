// Fresh randomness per clone, on real microVMs (QEMU, TCG here): every clone of one
// snapshot wakes with the template's kernel RNG state, so the driver gives each VM a
// virtio-rng device and reseeds every restored clone from the host before it runs
// anything (managed-vm.ts, wakeClone).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { GuestImage, MicroVm, VmSnapshot } from '../src/vm/hypervisor';
import { QemuHypervisor } from '../src/vm/qemu.hypervisor';
import { GUEST_IMAGE_TIMEOUT_MS, guestImage, qemuBinary, qemuMissing } from './guest-image';

const missing = qemuMissing();
if (missing !== undefined) console.warn(missing);
const describeVm = missing === undefined ? describe : describe.skip;

const CLONES = 8;

describeVm('randomness of snapshot clones', () => {
  let root: string;
  let image: GuestImage;
  let hv: QemuHypervisor;
  let snapshot: VmSnapshot;
  let templateReseeds: number;
  const clones: MicroVm[] = [];

  beforeAll(async () => {
    image = await guestImage();
    root = await mkdtemp(path.join(tmpdir(), 'shoot-rng-'));
    hv = new QemuHypervisor({
      runRoot: path.join(root, 'run'),
      qemuBinary: await qemuBinary(),
      accel: 'tcg',
    });
    const template = await hv.startTemplate({ image, memoryMiB: 256, vcpus: 1 });
    templateReseeds = (await template.agent.ping()).reseeds;
    // The template draws from its pool before it is saved, as a booted guest does.
    await template.agent.exec({ argv: ['head', '-c', '16', '/dev/urandom'], timeoutMs: 10_000 });
    snapshot = await hv.snapshot(template);
  }, GUEST_IMAGE_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(clones.map((vm) => vm.destroy()));
    await snapshot?.destroy();
    if (hv !== undefined) await hv.reapOrphans();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it(`attack: ${CLONES} clones of one snapshot draw different bytes on their very first read`, async () => {
    clones.push(
      ...(await Promise.all(Array.from({ length: CLONES }, () => hv.startClone(snapshot)))),
    );
    // The agent reports the reseed the driver made while restoring, before any exec.
    const reseeds = await Promise.all(clones.map(async (vm) => (await vm.agent.ping()).reseeds));
    expect(templateReseeds).toBe(0);
    expect(reseeds).toEqual(clones.map(() => 1));

    const first = await Promise.all(
      clones.map((vm) =>
        vm.agent.exec({ argv: ['head', '-c', '16', '/dev/urandom'], timeoutMs: 10_000 }),
      ),
    );
    const draws = first.map((result) => result.stdout.toString('hex'));
    console.log(`first 16 bytes of ${CLONES} clones: ${draws.join(' ')}`);
    expect(draws.every((draw) => draw.length === 32)).toBe(true);
    expect(new Set(draws).size).toBe(CLONES);
  }, 120_000);

  it("sees the host's hardware RNG device", async () => {
    const vm = clones[0]!;
    const result = await vm.agent.exec({
      argv: ['cat', '/sys/devices/virtual/misc/hw_random/rng_current'],
      timeoutMs: 10_000,
    });
    expect(result.stdout.toString().trim()).toMatch(/^virtio_rng/);
  });

  it('refuses a reseed without enough entropy', async () => {
    await expect(clones[0]!.agent.reseed(Buffer.alloc(8))).rejects.toMatchObject({
      kind: 'rejected',
      failure: { kind: 'bad-request' },
    });
  });
});
