// Test helpers: generations as the builder sends them, and plain reads of the real cluster.
import { afterAll } from '@jest/globals';
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  type CoreV1Event,
  type V1Deployment,
  type V1DeploymentStatus,
  type V1Pod,
  type V1PodStatus,
} from '@kubernetes/client-node';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  createReconcilerClient,
  deriveNamespace,
  generationHash,
  platformChannelCredentials,
  readTlsDirectory,
  type ApplyGenerationRequest,
  type ApplyGenerationResponse__Output,
  type FlakeStatus__Output,
  type ReconcilerClient,
  type SeedMeta,
} from '@seed/contracts';
import {
  createPlatformCertificates,
  startKubeApiServer,
  type KubeApiServer,
  type PlatformCertificates,
} from '@seed/testing';
import { loadReconcilerConfig } from '../src/config';
import { createReconcilerApp, type ReconcilerApp } from '../src/reconciler.app';

export { seedMeta as meta } from '@seed/testing';

/** A generation as the builder sends it; `images` (name → store path) default to made-up paths. */
export function generation(
  flakeUri: string,
  metas: SeedMeta[],
  revision = 'a'.repeat(40),
  images: Record<string, string> = {},
): ApplyGenerationRequest {
  const seeds = metas.map((m) => ({
    name: m.name,
    meta: m,
    image: images[m.name] ?? `/nix/store/${'0'.repeat(32)}-seed-${m.name}-image`,
  }));
  return {
    flakeUri,
    namespace: deriveNamespace(flakeUri),
    revision,
    generation: generationHash(seeds),
    instances: seeds.map((s) => ({
      name: s.name,
      metaJson: JSON.stringify(s.meta),
      image: s.image,
    })),
  };
}

let certificates: Promise<PlatformCertificates> | undefined;
let certificatesDir: string | undefined;
// Kept for the whole test file (every reconciler of it trusts this CA), removed after it.
afterAll(() => {
  if (certificatesDir) rmSync(certificatesDir, { recursive: true, force: true });
});

/** One platform CA and its certificates for this test file's reconcilers and clients. */
export function testCertificates(): Promise<PlatformCertificates> {
  certificates ??= mkdtemp(path.join(tmpdir(), 'seed-reconciler-tls-')).then((dir) => {
    certificatesDir = dir;
    return createPlatformCertificates(dir);
  });
  return certificates;
}

/** A client of the reconciler presenting the certificate in `tlsDir`. */
export function reconcilerClient(address: string, tlsDir: string): ReconcilerClient {
  return createReconcilerClient(
    address,
    platformChannelCredentials(readTlsDirectory(tlsDir), 60_000),
  );
}

/** The builder's calls, and an operator's status reads, as the platform makes them. */
export class Builder {
  readonly client: ReconcilerClient;
  readonly operator: ReconcilerClient;

  constructor(address: string, certs: PlatformCertificates) {
    this.client = reconcilerClient(address, certs.builder);
    this.operator = reconcilerClient(address, certs.operator);
  }

  apply(request: ApplyGenerationRequest): Promise<ApplyGenerationResponse__Output> {
    return new Promise((resolve, reject) =>
      this.client.applyGeneration(request, { deadline: Date.now() + 30_000 }, (error, reply) =>
        error ? reject(error) : resolve(reply!),
      ),
    );
  }

  async refused(request: ApplyGenerationRequest): Promise<grpc.ServiceError> {
    try {
      await this.apply(request);
    } catch (error) {
      return error as grpc.ServiceError;
    }
    throw new Error('expected ApplyGeneration to fail');
  }

  status(flakeUri: string): Promise<FlakeStatus__Output> {
    return new Promise((resolve, reject) =>
      this.operator.getStatus({ flakeUri }, (error, reply) =>
        error ? reject(error) : resolve(reply!),
      ),
    );
  }

  /** An operator's rollback; `client` to call it as another identity. */
  rollback(
    flakeUri: string,
    to = '',
    client: ReconcilerClient = this.operator,
  ): Promise<ApplyGenerationResponse__Output> {
    return new Promise((resolve, reject) =>
      client.rollback({ flakeUri, to }, { deadline: Date.now() + 30_000 }, (error, reply) =>
        error ? reject(error) : resolve(reply!),
      ),
    );
  }

  list(): Promise<FlakeStatus__Output[]> {
    return new Promise((resolve, reject) =>
      this.operator.listStatus({}, (error, reply) =>
        error ? reject(error) : resolve(reply!.flakes),
      ),
    );
  }

  close(): void {
    this.client.close();
    this.operator.close();
  }
}

export class Cluster {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;

  constructor(kubeconfigPath: string) {
    const config = new KubeConfig();
    config.loadFromFile(kubeconfigPath);
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
  }

  /** name → resourceVersion of every Seed object in a namespace (PVCs, Deployments, Services, state). */
  async versions(namespace: string): Promise<Record<string, string>> {
    const labelSelector = 'seed.loom.farm/managed-by=seed';
    const [deployments, services, claims, configMaps] = await Promise.all([
      this.apps.listNamespacedDeployment({ namespace, labelSelector }),
      this.core.listNamespacedService({ namespace, labelSelector }),
      this.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector }),
      this.core.listNamespacedConfigMap({ namespace, labelSelector }),
    ]);
    const entries: [string, string][] = [];
    for (const [kind, list] of [
      ['Deployment', deployments],
      ['Service', services],
      ['PVC', claims],
      ['ConfigMap', configMaps],
    ] as const) {
      for (const item of list.items)
        entries.push([`${kind}/${item.metadata!.name}`, item.metadata!.resourceVersion!]);
    }
    return Object.fromEntries(entries.sort());
  }

  async deployment(namespace: string, name: string): Promise<V1Deployment | undefined> {
    try {
      return await this.apps.readNamespacedDeployment({ namespace, name });
    } catch {
      return undefined;
    }
  }

  /**
   * A pod of an instance as its ReplicaSet would make it (no controller runs here), on
   * `nodeName` when given (scheduled). Its status is then the test's to write.
   */
  async createPod(namespace: string, instance: string, name: string, nodeName?: string) {
    await this.core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name,
          labels: { 'seed.loom.farm/managed-by': 'seed', 'seed.loom.farm/instance': instance },
        },
        spec: {
          ...(nodeName ? { nodeName } : {}),
          containers: [{ name: instance, image: `nix:0/nix/store/${'0'.repeat(32)}-${instance}` }],
        },
      },
    });
  }

  /** Writes a pod's status through the status subresource, as a kubelet or scheduler would. */
  async setPodStatus(namespace: string, name: string, status: V1PodStatus): Promise<V1Pod> {
    const pod = await this.core.readNamespacedPod({ namespace, name });
    return this.core.replaceNamespacedPodStatus({ namespace, name, body: { ...pod, status } });
  }

  /** Writes a Deployment's status as its controller would, for its current generation. */
  async setDeploymentStatus(
    namespace: string,
    name: string,
    status: Omit<V1DeploymentStatus, 'observedGeneration'>,
  ): Promise<void> {
    const deployment = await this.apps.readNamespacedDeployment({ namespace, name });
    await this.apps.replaceNamespacedDeploymentStatus({
      namespace,
      name,
      body: {
        ...deployment,
        status: { ...status, observedGeneration: deployment.metadata!.generation },
      },
    });
  }

  /** The reconciler's Events in a namespace. */
  async events(namespace: string): Promise<CoreV1Event[]> {
    const events = await this.core.listNamespacedEvent({ namespace });
    return events.items.filter((event) => event.source?.component === 'seed-reconciler');
  }

  /**
   * What the namespace controller (not running here) does for a deleted namespace: delete
   * everything in it, then drop the namespace's finalizer so it goes away.
   */
  async deleteContents(namespace: string): Promise<void> {
    const labelSelector = 'seed.loom.farm/managed-by=seed';
    await this.apps.deleteCollectionNamespacedDeployment({ namespace, labelSelector });
    await this.core.deleteCollectionNamespacedConfigMap({ namespace });
    for (const service of (await this.core.listNamespacedService({ namespace })).items)
      await this.core.deleteNamespacedService({ namespace, name: service.metadata!.name! });
    const claims = await this.core.listNamespacedPersistentVolumeClaim({ namespace });
    for (const claim of claims.items) {
      const name = claim.metadata!.name!;
      await this.core.deleteNamespacedPersistentVolumeClaim({ namespace, name });
      await this.core.patchNamespacedPersistentVolumeClaim({
        namespace,
        name,
        body: [{ op: 'remove', path: '/metadata/finalizers' }],
      });
    }
    const terminating = await this.core.readNamespace({ name: namespace });
    await this.core.replaceNamespaceFinalize({
      name: namespace,
      body: { ...terminating, spec: { finalizers: [] } },
    });
  }

  async names(namespace: string): Promise<string[]> {
    return Object.keys(await this.versions(namespace));
  }

  async until(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
    for (const deadline = Date.now() + timeoutMs; !(await condition());) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The reconciler in this process against `kubeconfig`, and a builder's client to it. */
export interface RunningReconciler {
  app: ReconcilerApp;
  builder: Builder;
  stop(): Promise<void>;
}

/** `env` adds to or overrides the reconciler's variables (a node's `SEED_*_CIDRS`). */
export async function startReconciler(
  kubeconfig: string,
  env: Record<string, string> = {},
): Promise<RunningReconciler> {
  const certs = await testCertificates();
  const app = await createReconcilerApp(
    loadReconcilerConfig({
      SEED_KUBECONFIG: kubeconfig,
      SEED_TLS_DIR: certs.reconciler,
      SEED_RECONCILER_GRPC_PORT: '0',
      SEED_LOG_LEVEL: 'silent',
      ...env,
    }),
  );
  await app.http.listen(0, '127.0.0.1');
  const builder = new Builder(`127.0.0.1:${app.grpc.port}`, certs);
  return {
    app,
    builder,
    stop: async () => {
      builder.close();
      await app.http.close();
    },
  };
}

/** A fresh API server, the reconciler on it, and a reader of what it wrote. */
export interface ReconcilerWorld extends RunningReconciler {
  api: KubeApiServer;
  cluster: Cluster;
}

export async function startReconcilerWorld(): Promise<ReconcilerWorld> {
  const api = await startKubeApiServer();
  const reconciler = await startReconciler(api.kubeconfigPath);
  return {
    ...reconciler,
    api,
    cluster: new Cluster(api.kubeconfigPath),
    stop: async () => {
      await reconciler.stop();
      await api.stop();
    },
  };
}
