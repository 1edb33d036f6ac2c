// An instance with a TPM against a real kube-apiserver and the real node agent with real
// swtpm: the Deployment waits for the TPM, then carries Kata's annotation and is pinned
// to the node holding it; a node that cannot provide one is reported in the status.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { deriveNamespace } from '@seed/contracts';
import {
  KubeTpmRequests,
  NodeTpmAgent,
  VtpmStore,
  runningSwtpm,
  stopSwtpm,
  type AgentLogger,
} from '@seed/vtpm';
import {
  Builder,
  Cluster,
  generation,
  meta,
  startReconcilerWorld,
  type ReconcilerWorld,
} from './cluster';

const FLAKE = 'github:acme/secrets';
const NS = deriveNamespace(FLAKE);
const quiet: AgentLogger = { info: () => undefined, warn: () => undefined };

let world: ReconcilerWorld | undefined;
let builder: Builder;
let cluster: Cluster;
let work: string;
const stores: VtpmStore[] = [];

function nodeAgent(node: string, swtpm = 'swtpm'): NodeTpmAgent {
  const store = new VtpmStore({
    root: path.join(work, node),
    swtpm,
    graceMs: 60_000,
    now: Date.now,
  });
  stores.push(store);
  return new NodeTpmAgent(
    KubeTpmRequests.fromKubeconfig(world!.api.kubeconfigPath),
    store,
    { nodeName: node, claim: true },
    quiet,
  );
}

async function instanceStatus(name: string) {
  return (await builder.status(FLAKE)).instances.find((i) => i.name === name);
}

beforeAll(async () => {
  world = await startReconcilerWorld();
  ({ builder, cluster } = world);
  work = await mkdtemp(path.join(tmpdir(), 'seed-reconciler-tpm-'));
}, 20 * 60_000);

afterAll(async () => {
  for (const store of stores)
    for (const instance of await store.list()) {
      const pid = await runningSwtpm(store.paths(instance));
      if (pid !== undefined) await stopSwtpm(pid);
    }
  await world?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('an instance with a TPM', () => {
  it('gets its Deployment only once a node holds its TPM, pinned there with the socket annotation', async () => {
    const request = generation(FLAKE, [meta('vault', { tpm: true }), meta('web')]);
    expect(await builder.apply(request)).toMatchObject({ changed: true });
    // The request is written; no Deployment yet for the TPM instance, the other has one.
    const tpmRequest = await cluster.core.readNamespacedConfigMap({
      namespace: NS,
      name: 'seed-tpm-vault',
    });
    expect(tpmRequest.metadata!.labels).toMatchObject({
      'seed.loom.farm/tpm': 'request',
      'seed.loom.farm/instance': 'vault',
    });
    expect(tpmRequest.data).toEqual({ instance: 'vault' });
    expect(await cluster.deployment(NS, 'vault')).toBeUndefined();
    expect(await cluster.deployment(NS, 'web')).toBeDefined();
    expect(await instanceStatus('vault')).toMatchObject({
      rollout: 'progressing',
      reason: 'TpmPending',
      message: expect.stringContaining('waiting for a node agent to claim its TPM'),
    });

    // The node agent claims it and starts swtpm; its report queues the flake.
    const agent = nodeAgent('node-a');
    await agent.sync();
    const ctrl = path.join(work, 'node-a', `${NS}_vault`, 'tpm.sock.ctrl');
    let deployment = await cluster.deployment(NS, 'vault');
    await cluster.until(async () => {
      deployment = await cluster.deployment(NS, 'vault');
      return deployment !== undefined;
    }, 'the Deployment of vault');
    const pod = deployment!.spec!.template;
    expect(pod.metadata!.annotations).toMatchObject({
      'io.katacontainers.config.hypervisor.tpm_socket': ctrl,
    });
    expect(pod.spec!.affinity).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }] },
          ],
        },
      },
    });
    expect((await instanceStatus('vault'))?.reason).not.toBe('TpmPending');
    // The web instance, which has no secrets, is neither pinned nor annotated.
    const web = (await cluster.deployment(NS, 'web'))!.spec!.template;
    expect(web.spec!.affinity).toBeUndefined();
    expect(web.metadata!.annotations).not.toHaveProperty(
      'io.katacontainers.config.hypervisor.tpm_socket',
    );

    // Another pass and the same generation again change nothing.
    await agent.sync();
    expect(await builder.apply(request)).toMatchObject({ changed: false });
  });

  it('a lost node: the request deleted by the operator comes back unclaimed and the pod moves', async () => {
    await cluster.core.deleteNamespacedConfigMap({ namespace: NS, name: 'seed-tpm-vault' });
    await cluster.until(async () => {
      const names = await cluster.names(NS);
      return names.includes('ConfigMap/seed-tpm-vault');
    }, 'the request written again');
    await nodeAgent('node-c').sync();
    await cluster.until(async () => {
      const terms = (await cluster.deployment(NS, 'vault'))?.spec?.template.spec?.affinity
        ?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
      return terms?.[0]?.matchFields?.[0]?.values?.[0] === 'node-c';
    }, 'vault pinned to node-c');
    expect(
      (await cluster.deployment(NS, 'vault'))!.spec!.template.metadata!.annotations,
    ).toMatchObject({
      'io.katacontainers.config.hypervisor.tpm_socket': path.join(
        work,
        'node-c',
        `${NS}_vault`,
        'tpm.sock.ctrl',
      ),
    });
  });

  it("a node that cannot provide a TPM: the instance fails with the node's reason", async () => {
    const request = generation(FLAKE, [
      meta('vault', { tpm: true }),
      meta('web'),
      meta('kms', { tpm: true }),
    ]);
    await builder.apply(request);
    // Only a broken node is left to claim the new request.
    await nodeAgent('node-b', path.join(work, 'no-such-swtpm')).sync();
    await cluster.until(
      async () => (await instanceStatus('kms'))?.reason === 'TpmFailed',
      'kms reported TpmFailed',
    );
    const kms = await instanceStatus('kms');
    expect(kms?.rollout).toBe('failed');
    expect(kms?.message).toMatch(/^node node-b cannot provide the instance's TPM: .*no-such-swtpm/);
    expect(await cluster.deployment(NS, 'kms')).toBeUndefined();
    // The other instance with a TPM is unaffected.
    expect(await cluster.deployment(NS, 'vault')).toBeDefined();
  });

  it("attack: a report edited to name another instance's TPM never reaches a pod", async () => {
    await builder.apply(
      generation(FLAKE, [
        meta('vault', { tpm: true }),
        meta('web'),
        meta('kms', { tpm: true }),
        meta('forged', { tpm: true }),
      ]),
    );
    const vaultSocket = path.join(work, 'node-a', `${NS}_vault`, 'tpm.sock.ctrl');
    await cluster.core.patchNamespacedConfigMap(
      {
        namespace: NS,
        name: 'seed-tpm-forged',
        body: { data: { node: 'node-a', ready: 'true', ctrlSocket: vaultSocket } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await cluster.until(
      async () => (await instanceStatus('forged'))?.reason === 'InvalidTpmReport',
      'forged reported InvalidTpmReport',
    );
    expect((await instanceStatus('forged'))?.message).toContain("is not this instance's TPM");
    expect(await cluster.deployment(NS, 'forged')).toBeUndefined();
  });

  it('an instance that leaves the flake loses its TPM request', async () => {
    await builder.apply(generation(FLAKE, [meta('web')]));
    await cluster.until(async () => {
      const names = await cluster.names(NS);
      return (
        !names.includes('ConfigMap/seed-tpm-vault') && !names.includes('ConfigMap/seed-tpm-kms')
      );
    }, 'the TPM requests pruned');
    expect(await cluster.names(NS)).toContain('ConfigMap/seed-state');
  });
});
