// The caller by its pod IP, from the Kubernetes API: the only file importing client-node.
import { loadKubeConfig } from '@seed/kube-config';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';
import {
  CallerLookupFailed,
  CallerRejected,
  normalizeIp,
  type Caller,
  type CallerResolver,
  type CallerVolume,
} from './caller';

export const LABEL_MANAGED_BY = 'seed.loom.farm/managed-by';
/** Rendered by k8s-model into the instance container only when `meta.shoot.enable`. */
export const ENV_SHOOT_URL = 'SEED_SHOOT_URL';

/**
 * Finds the one Running pod whose `status.podIP` is the source IP (field selector, all
 * namespaces). It must carry `seed.loom.farm/managed-by=seed` and have shoots enabled,
 * which is read from the pod itself: k8s-model renders `SEED_SHOOT_URL` into the instance
 * container exactly when `meta.shoot.enable` (simpler and as honest as reading the
 * `seed-state` ConfigMap, and it is what the running pod was actually given).
 *
 * Volumes: every volumeMount of that container whose volume is a PersistentVolumeClaim →
 * the claim (must be Bound) → its PersistentVolume → `spec.hostPath.path` or
 * `spec.local.path` (the local-path provisioner). Anything unresolvable rejects the call
 * (409 with the reason); nothing is silently dropped. Other volume kinds (configMap,
 * projected tokens, emptyDir) are not the instance's storage and are not shared.
 * The store is the node's store (`storeDir`): nix-snapshotter serves pod images from it.
 */
export class KubeCallerResolver implements CallerResolver {
  readonly #core: CoreV1Api;

  constructor(
    config: KubeConfig,
    private readonly storeDir: string,
  ) {
    this.#core = config.makeApiClient(CoreV1Api);
  }

  /** From a kubeconfig file, or the usual places (in-cluster, $KUBECONFIG, ~/.kube/config). */
  static fromKubeconfig(storeDir: string, path?: string): KubeCallerResolver {
    return new KubeCallerResolver(loadKubeConfig(path), storeDir);
  }

  async resolve(sourceIp: string): Promise<Caller> {
    const ip = normalizeIp(sourceIp);
    const list = await this.#call(`list pods with IP ${ip}`, () =>
      this.#core.listPodForAllNamespaces({
        fieldSelector: `status.podIP=${ip},status.phase=Running`,
      }),
    );
    const pods = list.items;
    if (pods.length === 0) throw new CallerRejected(`no running pod has IP ${ip}`);
    if (pods.length > 1) {
      throw new CallerRejected(
        `${pods.length} running pods have IP ${ip} (${pods.map(podName).join(', ')}): refusing to guess`,
      );
    }
    const pod = pods[0]!;
    const name = podName(pod);
    if (pod.metadata?.labels?.[LABEL_MANAGED_BY] !== 'seed') {
      throw new CallerRejected(`pod ${name} is not labelled ${LABEL_MANAGED_BY}=seed`);
    }
    const container = pod.spec?.containers.find(hasShootUrl);
    if (container === undefined) {
      throw new CallerRejected(
        `pod ${name} has not enabled shoots (no container has ${ENV_SHOOT_URL}: meta.shoot.enable is off)`,
      );
    }
    const namespace = pod.metadata?.namespace ?? 'default';
    const volumes: CallerVolume[] = [];
    for (const mount of container.volumeMounts ?? []) {
      const volume = pod.spec?.volumes?.find((candidate) => candidate.name === mount.name);
      const claimName = volume?.persistentVolumeClaim?.claimName;
      if (claimName === undefined) continue;
      if (mount.subPath !== undefined && mount.subPath !== '') {
        throw new CallerRejected(
          `pod ${name}: volume ${mount.name} uses a subPath, which shoots do not support`,
          409,
        );
      }
      volumes.push({
        hostPath: await this.#claimPath(namespace, claimName),
        mountPoint: mount.mountPath,
      });
    }
    return { key: name, store: this.storeDir, volumes };
  }

  async #claimPath(namespace: string, claimName: string): Promise<string> {
    const claim = await this.#call(`read claim ${namespace}/${claimName}`, () =>
      this.#core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace }),
    );
    const volumeName = claim.spec?.volumeName;
    if (claim.status?.phase !== 'Bound' || volumeName === undefined || volumeName === '') {
      throw new CallerRejected(
        `claim ${namespace}/${claimName} is not bound (phase ${claim.status?.phase ?? 'unknown'})`,
        409,
      );
    }
    const volume = await this.#call(`read volume ${volumeName}`, () =>
      this.#core.readPersistentVolume({ name: volumeName }),
    );
    const hostPath = volume.spec?.hostPath?.path ?? volume.spec?.local?.path;
    if (hostPath === undefined || !hostPath.startsWith('/')) {
      throw new CallerRejected(
        `volume ${volumeName} of claim ${namespace}/${claimName} is neither hostPath nor local: its data is not on this node's disk`,
        409,
      );
    }
    return hostPath;
  }

  async #call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) {
        throw new CallerRejected(`${what}: not found`, 409);
      }
      if (error instanceof ApiException && error.code < 500 && error.code !== 429) {
        throw new CallerLookupFailed(`${what}: the API server answered ${error.code}`);
      }
      throw new CallerLookupFailed(`${what}: ${(error as Error).message}`);
    }
  }
}

function podName(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? '?'}/${pod.metadata?.name ?? '?'}`;
}

function hasShootUrl(container: V1Container): boolean {
  return (container.env ?? []).some((env) => env.name === ENV_SHOOT_URL);
}
