// Rollback (issue 19, item 4) on a real API server: the reconciler keeps the flake's last
// applied generations and applies one again without a build, as an operator's call only.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { deriveNamespace } from '@seed/contracts';
import { instanceObjectName } from '@seed/k8s-model';
import { generation, meta, startReconcilerWorld, type ReconcilerWorld } from './cluster';

const FLAKE = 'github:acme/rollback';
const NS = deriveNamespace(FLAKE);

let world: ReconcilerWorld;

beforeAll(async () => {
  world = await startReconcilerWorld();
}, 20 * 60_000);

afterAll(async () => {
  await world?.stop();
});

/** The vCPUs web's Deployment asks for: what tells one size of web from another. */
async function webVcpus(): Promise<string | undefined> {
  const deployment = await world.cluster.deployment(NS, instanceObjectName('web'));
  return deployment?.spec?.template.metadata?.annotations?.[
    'io.katacontainers.config.hypervisor.default_vcpus'
  ];
}

describe('rollback', () => {
  const small = generation(FLAKE, [meta('web', { size: 's' })], 'a'.repeat(40));
  const medium = generation(FLAKE, [meta('web', { size: 'm' })], 'b'.repeat(40));

  it('applies the generation before the current one again, without a build', async () => {
    await world.builder.apply(small);
    await world.builder.apply(medium);
    expect(await webVcpus()).toBe('2');
    const status = await world.builder.status(FLAKE);
    expect(status.keptGenerations.map((kept) => kept.generation)).toEqual([
      medium.generation,
      small.generation,
    ]);

    expect(await world.builder.rollback(FLAKE)).toEqual({
      changed: true,
      generation: small.generation,
    });
    expect(await webVcpus()).toBe('1');
    const after = await world.builder.status(FLAKE);
    expect(after).toMatchObject({ generation: small.generation, revision: 'a'.repeat(40) });
    expect(after.keptGenerations.map((kept) => kept.generation)).toEqual([
      small.generation,
      medium.generation,
    ]);
  });

  it('goes to a kept generation named by its commit, and names what is kept otherwise', async () => {
    expect(await world.builder.rollback(FLAKE, 'bbbbbbb')).toMatchObject({
      changed: true,
      generation: medium.generation,
    });
    const unknown = world.builder.rollback(FLAKE, 'c'.repeat(12));
    await expect(unknown).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(unknown).rejects.toThrow(
      `no kept generation of ${FLAKE} is cccccccccccc; kept: ${medium.generation} (bbbbbbbbbbbb), ${small.generation} (aaaaaaaaaaaa)`,
    );
    await expect(world.builder.rollback('github:acme/never')).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it('keeps five generations', async () => {
    const sizes = ['l', 'xl', 's', 'm', 'l', 'xl'] as const;
    for (const [index, size] of sizes.entries())
      await world.builder.apply(
        generation(FLAKE, [meta('web', { size }), meta(`api-${index}`)], `${index + 1}`.repeat(40)),
      );
    expect((await world.builder.status(FLAKE)).keptGenerations).toHaveLength(5);
  });

  it('attack: a builder cannot roll a flake back', async () => {
    await expect(world.builder.rollback(FLAKE, '', world.builder.client)).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
  });
});
