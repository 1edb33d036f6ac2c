import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { keepInformerRunning, loadKubeConfig } from '@seed/kube-config';
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  NetworkingV1Api,
  PatchStrategy,
  V1MicroTime,
  VersionApi,
  makeInformer,
  setHeaderOptions,
  type Informer,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { LeaseRecord, LeaseStore } from '../controller/leader-election';

export type { KubernetesObject } from '@kubernetes/client-node';

/** The API server refused an object as invalid: applying it again cannot help. */
export class KubeRejected extends Error {
  override readonly name = 'KubeRejected';

  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The API server could not be reached, timed out, or answered a conflict: try again later. */
export class KubeUnavailable extends Error {
  override readonly name: string = 'KubeUnavailable';
}

/** Someone else wrote the object since it was read (409): read it again, then retry. */
export class KubeConflict extends KubeUnavailable {
  override readonly name = 'KubeConflict';
}

/**
 * Kinds Seed watches: its own objects for drift (the flake namespaces and their
 * `seed-state` ConfigMaps included), and the pods and ReplicaSets the Deployment
 * controller makes of them, for the instances' rollout.
 */
export type WatchedKind =
  | 'Namespace'
  | 'ConfigMap'
  | 'Deployment'
  | 'Service'
  | 'NetworkPolicy'
  | 'ResourceQuota'
  | 'LimitRange'
  | 'PersistentVolumeClaim'
  | 'Pod'
  | 'ReplicaSet';

export type WatchEvent = 'add' | 'update' | 'delete';

/** Who Seed's writes are from, in `managedFields`. */
export const FIELD_MANAGER = 'seed';
/** `source.component` and `reportingComponent` of the reconciler's Events. */
export const EVENT_SOURCE = 'seed-reconciler';

/**
 * Everything the reconciler does with the Kubernetes API, and the only file that knows
 * @kubernetes/client-node: server-side apply, reads, label-selected lists, deletes,
 * Events, and informers that restart themselves after the API server went away.
 */
export class KubeRepository {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly networking: NetworkingV1Api;
  private readonly versions: VersionApi;
  private readonly coordination: CoordinationV1Api;

  constructor(private readonly config: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(config);
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
    this.networking = config.makeApiClient(NetworkingV1Api);
    this.versions = config.makeApiClient(VersionApi);
    this.coordination = config.makeApiClient(CoordinationV1Api);
  }

  /** From a kubeconfig file, or the usual places (in-cluster, $KUBECONFIG, ~/.kube/config). */
  static fromKubeconfig(path?: string): KubeRepository {
    return new KubeRepository(loadKubeConfig(path));
  }

  /** Server-side apply as field manager `seed`, taking over conflicting fields. */
  async apply(object: AppliedObject): Promise<KubernetesObject> {
    const applied = await this.call(() =>
      this.objects.patch(
        clientModel(object),
        undefined,
        undefined,
        FIELD_MANAGER,
        true,
        PatchStrategy.ServerSideApply,
      ),
    );
    return wireForm(applied);
  }

  /**
   * JSON merge patch of an object: lists in it replace the live lists whole. Used to undo
   * a hand edit that server-side apply cannot (entries another field manager owns).
   */
  async mergePatch(object: AppliedObject): Promise<KubernetesObject> {
    const patched = await this.call(() =>
      this.objects.patch(
        clientModel(object),
        undefined,
        undefined,
        FIELD_MANAGER,
        undefined,
        PatchStrategy.MergePatch,
      ),
    );
    return wireForm(patched);
  }

  async read<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return wireForm(
        await this.call(() =>
          this.objects.read<T>({
            apiVersion,
            kind,
            metadata: { name, ...(namespace ? { namespace } : {}) },
          }),
        ),
      );
    } catch (error) {
      if (error instanceof KubeRejected && error.status === 404) return undefined;
      throw error;
    }
  }

  async list<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    labelSelector: string,
  ): Promise<T[]> {
    const list = await this.call(() =>
      this.objects.list<T>(
        apiVersion,
        kind,
        namespace,
        undefined,
        undefined,
        undefined,
        undefined,
        labelSelector,
      ),
    );
    return list.items;
  }

  /** Deletes an object; one that is already gone counts as deleted. */
  async delete(object: KubernetesObject): Promise<void> {
    try {
      await this.call(() =>
        this.objects.delete(object, undefined, undefined, undefined, undefined, 'Background'),
      );
    } catch (error) {
      if (!(error instanceof KubeRejected && error.status === 404)) throw error;
    }
  }

  /**
   * Records a Kubernetes Event about an object, so `kubectl describe` shows what happened.
   * Events are aggregated as client-go's recorder does: the same object, type, reason and
   * `key` (the message by default) always make the same Event name, so a repeat raises its
   * `count` and `lastTimestamp` (and takes the new message) instead of adding an Event,
   * also across restarts of the reconciler (until the API server expires it, 1 h by default).
   */
  async recordEvent(
    involved: { apiVersion: string; kind: string; namespace: string; name: string; uid?: string },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    key: string = message,
  ): Promise<void> {
    // `kubectl describe` selects Events by the object's uid too: find it when not given.
    const uid =
      involved.uid ??
      (await this.read(involved.apiVersion, involved.kind, involved.namespace, involved.name).then(
        (object) => object?.metadata?.uid,
        () => undefined,
      ));
    const now = new Date();
    const digest = createHash('sha256')
      .update([involved.kind, involved.name, type, reason, key].join('\0'))
      .digest('hex')
      .slice(0, 16);
    const name = `${involved.name}.${digest}`;
    const text = message.slice(0, 1024);
    const created = await this.call(async () => {
      try {
        await this.core.createNamespacedEvent({
          namespace: involved.namespace,
          body: {
            metadata: { name, namespace: involved.namespace },
            involvedObject: {
              apiVersion: involved.apiVersion,
              kind: involved.kind,
              name: involved.name,
              namespace: involved.namespace,
              uid,
            },
            type,
            reason,
            message: text,
            source: { component: EVENT_SOURCE },
            reportingComponent: EVENT_SOURCE,
            reportingInstance: hostname(),
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        });
        return true;
      } catch (error) {
        if (error instanceof ApiException && error.code === 409) return false;
        throw error;
      }
    });
    if (created) return;
    const existing = await this.call(() =>
      this.core.readNamespacedEvent({ namespace: involved.namespace, name }),
    );
    await this.call(() =>
      this.core.patchNamespacedEvent({
        namespace: involved.namespace,
        name,
        body: [
          { op: 'add', path: '/count', value: (existing.count ?? 1) + 1 },
          { op: 'add', path: '/lastTimestamp', value: now.toISOString() },
          { op: 'add', path: '/message', value: text },
        ],
      }),
    );
  }

  /** Sets (or, with null, removes) one label of a pod: a JSON merge patch of it alone. */
  async labelPod(namespace: string, name: string, key: string, value: string | null) {
    await this.call(() =>
      this.core.patchNamespacedPod(
        { namespace, name, body: { metadata: { labels: { [key]: value } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
  }

  /**
   * A `coordination.k8s.io` Lease for leader election. Writes are guarded by the
   * resourceVersion read, so of two replicas racing for it one wins and the other sees
   * `false` (a 409), never both.
   */
  lease(namespace: string, name: string): LeaseStore {
    const toLease = (record: LeaseRecord, resourceVersion?: string) => ({
      metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
      spec: {
        holderIdentity: record.holder,
        leaseDurationSeconds: record.leaseDurationSeconds,
        acquireTime: new V1MicroTime(record.acquireTime.getTime()),
        renewTime: new V1MicroTime(record.renewTime.getTime()),
        leaseTransitions: record.transitions,
      },
    });
    const unlessConflict = async (write: () => Promise<unknown>): Promise<boolean> => {
      try {
        await this.call(write);
        return true;
      } catch (error) {
        if (error instanceof KubeConflict) return false;
        throw error;
      }
    };
    return {
      get: async () => {
        try {
          const lease = await this.call(() =>
            this.coordination.readNamespacedLease({ namespace, name }),
          );
          const spec = lease.spec ?? {};
          return {
            version: lease.metadata?.resourceVersion ?? '',
            record: {
              holder: spec.holderIdentity ?? '',
              leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
              acquireTime: new Date(spec.acquireTime ?? 0),
              renewTime: new Date(spec.renewTime ?? 0),
              transitions: spec.leaseTransitions ?? 0,
            },
          };
        } catch (error) {
          if (error instanceof KubeRejected && error.status === 404) return undefined;
          throw error;
        }
      },
      create: (record) =>
        unlessConflict(() =>
          this.coordination.createNamespacedLease({ namespace, body: toLease(record) }),
        ),
      update: (record, version) =>
        unlessConflict(() =>
          this.coordination.replaceNamespacedLease({
            namespace,
            name,
            body: toLease(record, version),
          }),
        ),
    };
  }

  /** Answers when the API server does. */
  async version(): Promise<string> {
    const info = await this.call(() => this.versions.getCode());
    return info.gitVersion;
  }

  /**
   * Watches one kind across namespaces (label-selected) and reports every change. The
   * informer is started again after errors (an API server restart ends its watch), with
   * a growing pause so an outage does not become a hot loop.
   */
  watch(
    kind: WatchedKind,
    labelSelector: string,
    onChange: (event: WatchEvent, object: KubernetesObject) => void,
    onError: (error: unknown) => void,
  ): WatchHandle {
    const informer = this.informerFor(kind, labelSelector);
    for (const event of ['add', 'update', 'delete'] as const) {
      informer.on(event, (object) => onChange(event, wireForm(object)));
    }
    const running = keepInformerRunning(informer, onError);
    return {
      cached: (namespace, name) => {
        const object = kind === 'Namespace' ? informer.get(name) : informer.get(name, namespace);
        return object && wireForm(object);
      },
      list: (namespace) => informer.list(namespace).map(wireForm),
      stop: () => running.stop(),
    };
  }

  private informerFor(
    kind: WatchedKind,
    labelSelector: string,
  ): Informer<KubernetesObject> & ObjectCache<KubernetesObject> {
    switch (kind) {
      case 'Namespace':
        return makeInformer(
          this.config,
          '/api/v1/namespaces',
          () => this.core.listNamespace({ labelSelector }),
          labelSelector,
        );
      case 'ConfigMap':
        return makeInformer(
          this.config,
          '/api/v1/configmaps',
          () => this.core.listConfigMapForAllNamespaces({ labelSelector }),
          labelSelector,
        );
      case 'Deployment':
        return makeInformer(
          this.config,
          '/apis/apps/v1/deployments',
          () => this.apps.listDeploymentForAllNamespaces({ labelSelector }),
          labelSelector,
        );
      case 'Service':
        return makeInformer(
          this.config,
          '/api/v1/services',
          () => this.core.listServiceForAllNamespaces({ labelSelector }),
          labelSelector,
        );
      case 'NetworkPolicy':
        return makeInformer(
          this.config,
          '/apis/networking.k8s.io/v1/networkpolicies',
          () => this.networking.listNetworkPolicyForAllNamespaces({ labelSelector }),
          labelSelector,
        );
      case 'ResourceQuota':
        return makeInformer(
          this.config,
          '/api/v1/resourcequotas',
          () => this.core.listResourceQuotaForAllNamespaces({ labelSelector }),
          labelSelector,
        );
      case 'LimitRange':
        return makeInformer(
          this.config,
          '/api/v1/limitranges',
          () => this.core.listLimitRangeForAllNamespaces({ labelSelector }),
          labelSelector,
        );
      case 'PersistentVolumeClaim':
        return makeInformer(
          this.config,
          '/api/v1/persistentvolumeclaims',
          () => this.core.listPersistentVolumeClaimForAllNamespaces({ labelSelector }),
          labelSelector,
        );
      case 'Pod':
        return makeInformer(
          this.config,
          '/api/v1/pods',
          () => this.core.listPodForAllNamespaces({ labelSelector }),
          labelSelector,
        );
      case 'ReplicaSet':
        return makeInformer(
          this.config,
          '/apis/apps/v1/replicasets',
          () => this.apps.listReplicaSetForAllNamespaces({ labelSelector }),
          labelSelector,
        );
    }
  }

  /** Maps client errors: invalid requests are final, everything else is worth retrying. */
  private async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (error instanceof ApiException) {
        const status = error.code;
        const detail = apiMessage(error.body) ?? error.message;
        if (status === 409) throw new KubeConflict(`the API server answered 409: ${detail}`);
        if (status === 429 || status >= 500) {
          throw new KubeUnavailable(`the API server answered ${status}: ${detail}`);
        }
        throw new KubeRejected(detail, status);
      }
      throw new KubeUnavailable(`the API server is unreachable: ${(error as Error).message}`);
    }
  }
}

/** Any object Seed renders: plain JSON with the identifying fields set. */
/**
 * client-node's models name NetworkPolicy's `ingress[].from` `_from` (`from` is reserved
 * in its generator), and its serializer sends only the fields its models name: given the
 * API's own JSON, it would send ingress rules without `from`, which admit every source.
 * Seed's objects are the API's JSON; these two put the one name right on the way in and
 * out of the library.
 */
function clientModel(object: AppliedObject): KubernetesObject {
  return renameIngressPeers(object, 'from', '_from');
}

function wireForm<T extends KubernetesObject>(object: T): T {
  return renameIngressPeers(object, '_from', 'from') as T;
}

function renameIngressPeers(object: object, name: string, as: string): object {
  // Only NetworkPolicies have `spec.ingress`; objects of an informer's list carry no kind.
  const { spec } = object as { spec?: { ingress?: object[] } };
  if (!Array.isArray(spec?.ingress)) return object;
  const ingress = spec.ingress.map((rule) => {
    const { [name]: peers, ...rest } = rule as Record<string, unknown>;
    return peers === undefined ? rest : { ...rest, [as]: peers };
  });
  return { ...object, spec: { ...spec, ingress } };
}

export interface AppliedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

export interface WatchHandle {
  /** The informer's copy of an object, without a request. */
  cached(namespace: string, name: string): KubernetesObject | undefined;
  /** The informer's objects in a namespace. */
  list(namespace: string): KubernetesObject[];
  stop(): Promise<void>;
}

function apiMessage(body: unknown): string | undefined {
  if (typeof body === 'string') {
    try {
      return apiMessage(JSON.parse(body));
    } catch {
      return body || undefined;
    }
  }
  if (typeof body === 'object' && body !== null && 'message' in body) {
    return String(body.message);
  }
  return undefined;
}
