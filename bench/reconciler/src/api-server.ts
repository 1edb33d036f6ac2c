// The API server as the bench sees it, with the same client (kept-alive TLS) the reconciler uses:
// its own round-trip time, and the resourceVersion of every object Seed owns.
import {
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  NetworkingV1Api,
  PatchStrategy,
  VersionApi,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { loadKubeConfig } from '@seed/kube-config';
import { median } from '@seed/testing';

const MANAGED_BY_SEED = 'seed.loom.farm/managed-by=seed';
const BENCH_NAMESPACE = 'default';

export interface RoundTrips {
  /** Median ms of a GET of a namespace. */
  getMs: number;
  /** Median ms of a server-side apply that changes a small ConfigMap (a real etcd write). */
  applyMs: number;
}

export class ApiServer {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly networking: NetworkingV1Api;
  private readonly objects: KubernetesObjectApi;
  private readonly versionApi: VersionApi;
  private writes = 0;

  constructor(kubeconfigPath: string) {
    const config = loadKubeConfig(kubeconfigPath);
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
    this.networking = config.makeApiClient(NetworkingV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(config);
    this.versionApi = config.makeApiClient(VersionApi);
  }

  async version(): Promise<string> {
    return (await this.versionApi.getCode()).gitVersion;
  }

  /**
   * One request at a time, `count` of each after a few unmeasured ones: a GET of a
   * namespace and a server-side apply (field manager of its own, forced, as the
   * reconciler's) of a ConfigMap whose data changes every time.
   */
  async roundTrips(count: number): Promise<RoundTrips> {
    const time = async (request: () => Promise<unknown>): Promise<number> => {
      const started = performance.now();
      await request();
      return performance.now() - started;
    };
    const get = () => this.core.readNamespace({ name: BENCH_NAMESPACE });
    const apply = () => {
      this.writes += 1;
      const configMap: KubernetesObject & { data: Record<string, string> } = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'seed-bench-rtt', namespace: BENCH_NAMESPACE },
        data: { write: String(this.writes) },
      };
      return this.objects.patch(
        configMap,
        undefined,
        undefined,
        'seed-bench',
        true,
        PatchStrategy.ServerSideApply,
      );
    };
    for (let warm = 0; warm < 5; warm += 1) {
      await get();
      await apply();
    }
    const gets: number[] = [];
    const applies: number[] = [];
    for (let index = 0; index < count; index += 1) {
      gets.push(await time(get));
      applies.push(await time(apply));
    }
    return { getMs: median(gets), applyMs: median(applies) };
  }

  /**
   * `Kind/namespace/name` → resourceVersion of every object Seed owns in the namespaces
   * given (Namespace, state ConfigMap, claims, Deployments, Services); all namespaces when
   * none is given.
   */
  async versions(namespaces?: string[]): Promise<Map<string, string>> {
    const versions = new Map<string, string>();
    const add = (kind: string, items: KubernetesObject[]) => {
      for (const item of items) {
        const { namespace, name, resourceVersion } = item.metadata ?? {};
        if (namespaces && !namespaces.includes(kind === 'Namespace' ? name! : namespace!)) continue;
        versions.set(`${kind}/${namespace ?? ''}/${name}`, resourceVersion ?? '');
      }
    };
    const labelSelector = MANAGED_BY_SEED;
    const [spaces, configMaps, claims, deployments, services, policies, quotas, limits] =
      await Promise.all([
        this.core.listNamespace({ labelSelector }),
        this.core.listConfigMapForAllNamespaces({ labelSelector }),
        this.core.listPersistentVolumeClaimForAllNamespaces({ labelSelector }),
        this.apps.listDeploymentForAllNamespaces({ labelSelector }),
        this.core.listServiceForAllNamespaces({ labelSelector }),
        this.networking.listNetworkPolicyForAllNamespaces({ labelSelector }),
        this.core.listResourceQuotaForAllNamespaces({ labelSelector }),
        this.core.listLimitRangeForAllNamespaces({ labelSelector }),
      ]);
    add('Namespace', spaces.items);
    add('ConfigMap', configMaps.items);
    add('PersistentVolumeClaim', claims.items);
    add('Deployment', deployments.items);
    add('Service', services.items);
    add('NetworkPolicy', policies.items);
    add('ResourceQuota', quotas.items);
    add('LimitRange', limits.items);
    return versions;
  }
}

/** Keys whose resourceVersion differs between two listings, or that only one holds. */
export function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => before.get(key) !== after.get(key)).sort();
}
