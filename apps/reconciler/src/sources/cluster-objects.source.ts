import { LABEL_TPM, TPM_REQUEST } from '@seed/contracts';
import type { SeedObject } from '@seed/k8s-model';
import type { Logger } from '@seed/service-kit';
import { OWNED_SELECTOR, type LiveObjects, type Workloads } from '../flake.reconciler';
import type {
  KubeRepository,
  KubernetesObject,
  WatchHandle,
  WatchedKind,
} from '../repositories/kube.repository';

/** Kinds whose changes queue their flake: drift of Seed's objects, and pods for rollouts. */
const WATCHED: readonly WatchedKind[] = [
  'Deployment',
  'Service',
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PersistentVolumeClaim',
  // Only TPM requests (SELECTORS): a node agent's report queues the instance's flake.
  'ConfigMap',
  'Pod',
];
/**
 * Kinds only cached: a ReplicaSet changes along with its Deployment's status (which is
 * watched) and is read only to tell a Deployment's newest pods from its old ones.
 */
const CACHED: readonly WatchedKind[] = ['ReplicaSet'];
/** Kinds a generation's objects leave behind when it drops them, with their API versions. */
const PRUNED = [
  ['Deployment', 'apps/v1'],
  ['Service', 'v1'],
  ['NetworkPolicy', 'networking.k8s.io/v1'],
  // The watch holds TPM requests only, never `seed-state`.
  ['ConfigMap', 'v1'],
] as const;
const keyOf = (object: { kind?: string; metadata?: { namespace?: string; name?: string } }) =>
  `${object.kind}/${object.metadata?.namespace ?? ''}/${object.metadata?.name}`;

/** A narrower selector than OWNED_SELECTOR for some kinds. */
const SELECTORS: Partial<Record<WatchedKind, string>> = {
  ConfigMap: `${OWNED_SELECTOR},${LABEL_TPM}=${TPM_REQUEST}`,
};

/**
 * Informers on Seed's Deployments, Services, NetworkPolicies, bounds and volumes, and on the pods and ReplicaSets
 * of its instances. Every change (an edit or delete by hand, a pod's status included)
 * becomes the key of its flake, its namespace; the caches also serve the reconciler's
 * reads, which fall back to the API for anything not cached yet.
 */
export class ClusterObjects implements LiveObjects {
  private readonly watches = new Map<WatchedKind, WatchHandle>();
  /**
   * The resourceVersion of each object the reconciler wrote, until the cache shows that
   * write: a cache behind it holds the object as it was before, and a reconcile right
   * after (the next generation puts back what the last one changed, or a restart's
   * reconcile is followed by the retried push) would take that for the live object and
   * skip a write the object needs.
   */
  private readonly written = new Map<string, string>();

  constructor(
    private readonly kube: KubeRepository,
    private readonly logger: Logger,
  ) {}

  start(onChange: (namespace: string) => void): void {
    for (const kind of [...WATCHED, ...CACHED]) {
      const queues = WATCHED.includes(kind);
      this.watches.set(
        kind,
        this.kube.watch(
          kind,
          SELECTORS[kind] ?? OWNED_SELECTOR,
          (_event, object) => {
            if (queues && object.metadata?.namespace) onChange(object.metadata.namespace);
          },
          (error) => this.logger.warn({ err: error, kind }, 'watch interrupted; restarting'),
        ),
      );
    }
  }

  async get(object: SeedObject): Promise<KubernetesObject | undefined> {
    const namespace = object.metadata.namespace ?? '';
    const key = keyOf(object);
    const cached = this.watches.get(object.kind)?.cached(namespace, object.metadata.name);
    const expected = this.written.get(key);
    if (cached && (expected === undefined || cached.metadata?.resourceVersion === expected)) {
      this.written.delete(key);
      return cached;
    }
    const fresh = await this.kube.read(
      object.apiVersion,
      object.kind,
      object.metadata.namespace,
      object.metadata.name,
    );
    // Written again (or deleted) by someone since: this read is newer than the write.
    if (fresh?.metadata?.resourceVersion !== expected) this.written.delete(key);
    return fresh;
  }

  wrote(object: KubernetesObject, deleted = false): void {
    const version = object.metadata?.resourceVersion;
    if (deleted || !version) this.written.delete(keyOf(object));
    else this.written.set(keyOf(object), version);
  }

  owned(namespace: string): Promise<KubernetesObject[]> {
    const owned: KubernetesObject[] = [];
    for (const [kind, apiVersion] of PRUNED) {
      owned.push(
        ...(this.watches.get(kind)?.list(namespace) ?? []).map((object) => ({
          ...object,
          kind,
          apiVersion,
        })),
      );
    }
    return Promise.resolve(owned);
  }

  claims(namespace: string): KubernetesObject[] {
    return this.watches.get('PersistentVolumeClaim')?.list(namespace) ?? [];
  }

  workloads(namespace: string): Workloads {
    const cached = (kind: WatchedKind) => this.watches.get(kind)?.list(namespace) ?? [];
    return {
      deployments: cached('Deployment'),
      replicaSets: cached('ReplicaSet'),
      pods: cached('Pod'),
    };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.watches.values()].map((watch) => watch.stop()));
    this.watches.clear();
  }
}
