import { describe, expect, it } from '@jest/globals';
import { desiredNames, pinToTpm, renderDeployment, renderGeneration } from '../src';
import { generation, instance } from './fixtures';
import { objectOf } from './helpers';

describe('an instance with a TPM', () => {
  const objects = renderGeneration(
    generation([
      instance('vault', { tpm: true }),
      instance('web'),
      instance('plain', { tpm: false }),
    ]),
  );

  it('asks for it with a ConfigMap seed-tpm-<instance>, before its Deployment', () => {
    expect(desiredNames(objects).ConfigMap).toEqual(['seed-tpm-vault']);
    const request = objectOf(objects, 'ConfigMap', 'seed-tpm-vault');
    expect(request.metadata.labels).toEqual({
      'seed.loom.farm/instance': 'vault',
      'seed.loom.farm/managed-by': 'seed',
      'seed.loom.farm/tpm': 'request',
    });
    expect(request.data).toEqual({ instance: 'vault' });
    const kinds = objects.map((object) => object.kind);
    expect(kinds.indexOf('ConfigMap')).toBeLessThan(kinds.indexOf('Deployment'));
  });

  it("pins the pod to the TPM's node and names its socket for Kata", () => {
    const context = generation([instance('vault', { tpm: true })]);
    const deployment = renderDeployment(context, instance('vault', { tpm: true }));
    const pinned = pinToTpm(deployment, {
      node: 'node-a',
      ctrlSocket: '/var/lib/seed/tpm/x/tpm.sock.ctrl',
    });
    const pod = pinned.spec!.template;
    expect(pod.metadata!.annotations).toEqual({
      ...deployment.spec!.template.metadata!.annotations,
      'io.katacontainers.config.hypervisor.tpm_socket': '/var/lib/seed/tpm/x/tpm.sock.ctrl',
    });
    expect(
      pod.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution,
    ).toEqual({
      nodeSelectorTerms: [
        { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }] },
      ],
    });
    // Pure: the rendered Deployment is unchanged.
    expect(deployment.spec!.template.spec!.affinity).toBeUndefined();
    expect(JSON.stringify(pinToTpm(deployment, { node: 'node-a', ctrlSocket: '/s' }))).toBe(
      JSON.stringify(pinToTpm(deployment, { node: 'node-a', ctrlSocket: '/s' })),
    );
  });
});
