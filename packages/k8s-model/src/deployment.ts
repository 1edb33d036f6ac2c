import {
  ENV_SHOOT_TOKEN_FILE,
  SHOOT_TOKEN_AUDIENCE,
  SHOOT_TOKEN_DIR,
  SHOOT_TOKEN_EXPIRATION_SECONDS,
  SHOOT_TOKEN_FILE,
  INSTANCE_POD,
  type SeedMeta,
} from '@seed/contracts';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import { ModelError } from './errors';
import {
  DEFAULT_SHOOT_POOL_PORT,
  type GenerationContext,
  type RenderOptions,
  type SeedInstance,
} from './input';
import { instanceObjectMeta } from './metadata';
import {
  connectEnvNames,
  ENV_INSTANCE,
  ENV_NAMESPACE,
  ENV_NODE_IP,
  ENV_SHOOT_URL,
  instanceObjectName,
  namespaceName,
  selectorLabels,
} from './names';
import { sortedEntries, withSortedKeys, type SeedDeployment } from './objects';
import { exposedPorts, readinessPort } from './ports';
import { storageVolumes } from './volume';

type DeploymentStrategy = NonNullable<SeedDeployment['spec']>['strategy'];

/** Pods run in Kata Containers microVMs; the cluster provides a RuntimeClass of this name. */
export const KATA_RUNTIME_CLASS = 'kata';
/** Kata sizes the VM from these pod annotations (they must be enabled in Kata's config). */
export const KATA_VCPUS_ANNOTATION = 'io.katacontainers.config.hypervisor.default_vcpus';
export const KATA_MEMORY_ANNOTATION = 'io.katacontainers.config.hypervisor.default_memory';

/**
 * The Deployment `<name>` of an instance. Everything under `spec.template` derives from
 * the instance alone (image, meta, namespace, platform options), never from the generation
 * or the commit, so a push that leaves an instance unchanged does not restart it.
 */
export function renderDeployment(
  context: GenerationContext,
  instance: SeedInstance,
  options: RenderOptions = {},
): SeedDeployment {
  const name = instanceObjectName(instance.name);
  const { meta } = instance;
  const ports = exposedPorts(name, meta.expose);
  const { volumes, volumeMounts } = withShootToken(instance, storageVolumes(instance));
  const probePort = meta.rollout === 'rolling' ? readinessPort(ports) : undefined;

  const container: IContainer = {
    name,
    image: nixImage(instance),
    // The reference has no tag, so Kubernetes would default to Always; but it names a
    // store path, whose content never changes: there is nothing to pull again.
    imagePullPolicy: 'IfNotPresent',
    resources: resourcesOf(meta),
    env: environment(context, instance, options),
    ...(ports.length > 0 && {
      ports: ports.map((port) => ({
        name: port.name,
        containerPort: port.port,
        protocol: port.transport,
      })),
    }),
    ...(probePort !== undefined && { readinessProbe: { tcpSocket: { port: probePort.port } } }),
    ...(volumeMounts.length > 0 && { volumeMounts }),
  };

  return withSortedKeys({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: instanceObjectMeta(context, instance, name),
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorLabels(name) },
      strategy: strategyOf(meta.rollout),
      template: {
        metadata: {
          labels: selectorLabels(name),
          annotations: {
            [KATA_VCPUS_ANNOTATION]: String(meta.resources.vcpus),
            [KATA_MEMORY_ANNOTATION]: String(meta.resources.memory),
          },
        },
        spec: {
          runtimeClassName: KATA_RUNTIME_CLASS,
          // A tenant's VM has no business with the Kubernetes API: give it no token to leak.
          automountServiceAccountToken: false,
          // Discovery is `seed.connect`; Docker-link variables for every Service in the
          // namespace would only crowd /run/seed/env.
          enableServiceLinks: false,
          containers: [container],
          ...(volumes.length > 0 && { volumes }),
        },
      },
    },
  });
}

const SHOOT_TOKEN_VOLUME = 'seed-shoot-token';

/**
 * Instances with shoots enabled prove who they are with a projected service-account token
 * for the shoot pool's audience (the pod still gets no API token): a volume the kubelet
 * refreshes, mounted read-only beside the storage volumes.
 */
function withShootToken(
  instance: SeedInstance,
  storage: { volumes: IVolume[]; volumeMounts: IVolumeMount[] },
): { volumes: IVolume[]; volumeMounts: IVolumeMount[] } {
  if (!instance.meta.shoot.enable) return storage;
  for (const [key, entry] of sortedEntries(instance.meta.storage)) {
    if (key === SHOOT_TOKEN_VOLUME || entry.mountPoint === SHOOT_TOKEN_DIR) {
      throw new ModelError({
        instance: instance.name,
        field: `meta.storage.${key}`,
        reason: `${SHOOT_TOKEN_VOLUME} at ${SHOOT_TOKEN_DIR} is the shoot token's (shoots are enabled)`,
      });
    }
  }
  const token = {
    serviceAccountToken: {
      audience: SHOOT_TOKEN_AUDIENCE,
      expirationSeconds: SHOOT_TOKEN_EXPIRATION_SECONDS,
      path: 'token',
    },
  };
  return {
    volumes: [...storage.volumes, { name: SHOOT_TOKEN_VOLUME, projected: { sources: [token] } }],
    volumeMounts: [
      ...storage.volumeMounts,
      { name: SHOOT_TOKEN_VOLUME, mountPath: SHOOT_TOKEN_DIR, readOnly: true },
    ],
  };
}

/**
 * What the scheduler reserves for the instance's microVM: its tier's whole memory, and a
 * quarter core per vCPU (vCPUs are time-shared threads on the node, busy only when the
 * instance is). No limits: Kata sizes the VM from the pod annotations, and container
 * limits would be hot-plugged on top of them. The VM's own cost is the `kata`
 * RuntimeClass's `overhead.podFixed`, which Kubernetes adds to every pod.
 */
function resourcesOf(meta: SeedMeta): { requests: Record<string, string> } {
  // In the canonical form the API server stores ("2Gi", not "2048Mi"), so an unchanged
  // instance reads back exactly as rendered and is not written again.
  const millis = meta.resources.vcpus * INSTANCE_POD.cpuMillisPerVcpu;
  const mebibytes = meta.resources.memory;
  return {
    requests: {
      cpu: millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`,
      memory: mebibytes % 1024 === 0 ? `${mebibytes / 1024}Gi` : `${mebibytes}Mi`,
    },
  };
}

/** `nix:0<store path>`: the reference nix-snapshotter resolves to the instance's image. */
function nixImage(instance: SeedInstance): string {
  if (!/^\/[^\s]+$/.test(instance.image)) {
    throw new ModelError({
      instance: instance.name,
      field: 'image',
      reason: `"${instance.image}" is not an absolute store path`,
    });
  }
  return `nix:0${instance.image}`;
}

function strategyOf(rollout: SeedMeta['rollout']): DeploymentStrategy {
  if (rollout === 'recreate') return { type: 'Recreate' };
  // One new pod beside the old one, which goes once the new one is ready.
  return { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
}

/**
 * The variables Kubernetes gives the instance (activation writes them to /run/seed/env).
 * Order matters: SEED_SHOOT_URL refers to SEED_NODE_IP, which must come earlier.
 */
function environment(
  context: GenerationContext,
  instance: SeedInstance,
  options: RenderOptions,
): IEnvVar[] {
  const env: IEnvVar[] = [
    { name: ENV_NAMESPACE, value: namespaceName(context.namespace) },
    { name: ENV_INSTANCE, value: instance.name },
    {
      name: ENV_NODE_IP,
      valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.hostIP' } },
    },
  ];
  for (const [key, entry] of sortedEntries(instance.meta.connect)) {
    const names = connectEnvNames(instance.name, key);
    env.push({ name: names.host, value: entry.service });
    // An addition to ARCHITECTURE.md, which names only the host variable: the port is
    // otherwise only in /etc/seed/connect/<key>, awkward to read from a shell.
    if (entry.port !== null) env.push({ name: names.port, value: String(entry.port) });
  }
  if (instance.meta.shoot.enable) {
    const port = shootPoolPort(options);
    env.push({ name: ENV_SHOOT_URL, value: `http://$(${ENV_NODE_IP}):${port}` });
    env.push({ name: ENV_SHOOT_TOKEN_FILE, value: SHOOT_TOKEN_FILE });
  }
  return env;
}

/** The shoot pool's port from the platform options, checked. */
export function shootPoolPort(options: RenderOptions): number {
  const port = options.shootPoolPort ?? DEFAULT_SHOOT_POOL_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ModelError({
      field: 'options.shootPoolPort',
      reason: `${port} is not a port number (1-65535)`,
    });
  }
  return port;
}
