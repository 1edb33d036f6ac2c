// An in-memory API server for the reconcile's ports, for the fast tier: objects by kind,
// namespace and name; every write is counted; an object can be made to be rejected. The
// same reconcile against a real kube-apiserver is in test/reconciler.test.ts.
import type { SeedObject } from '@seed/k8s-model';
import type { DesiredGeneration, FlakeState } from '../../src/flake-state';
import type { FlakeStates, LiveObjects, ObjectWrites, Workloads } from '../../src/flake.reconciler';
import {
  KubeRejected,
  type AppliedObject,
  type KubernetesObject,
} from '../../src/repositories/kube.repository';

type Stored = KubernetesObject & { metadata: { name: string; namespace?: string } };

const key = (object: { kind?: string; metadata?: { namespace?: string; name?: string } }) =>
  `${object.kind}/${object.metadata?.namespace ?? ''}/${object.metadata?.name}`;

export class InMemoryCluster implements ObjectWrites, LiveObjects {
  readonly objects = new Map<string, Stored>();
  readonly writes: string[] = [];
  /** `Kind/name` of objects the API server refuses, with its message. */
  readonly rejects = new Map<string, string>();
  private uids = 0;

  async apply(object: AppliedObject): Promise<KubernetesObject> {
    const refused = this.rejects.get(`${object.kind}/${object.metadata.name}`);
    if (refused) throw new KubeRejected(refused, 422);
    this.writes.push(`apply ${object.kind}/${object.metadata.name}`);
    const previous = this.objects.get(key(object));
    const stored = structuredClone({
      ...object,
      metadata: { ...object.metadata, uid: previous?.metadata.uid ?? `uid-${++this.uids}` },
    }) as Stored;
    this.objects.set(key(object), stored);
    return structuredClone(stored);
  }

  async mergePatch(object: AppliedObject): Promise<KubernetesObject> {
    this.writes.push(`patch ${object.kind}/${object.metadata.name}`);
    return this.apply(object);
  }

  async delete(object: KubernetesObject): Promise<void> {
    this.writes.push(`delete ${object.kind}/${object.metadata?.name}`);
    this.objects.delete(key(object));
  }

  async get(object: SeedObject): Promise<KubernetesObject | undefined> {
    const found = this.objects.get(key(object));
    return found && structuredClone(found);
  }

  /** Reads are never behind a write here. */
  wrote(): void {}

  async owned(namespace: string): Promise<KubernetesObject[]> {
    return [...this.objects.values()].filter(
      (object) => object.metadata.namespace === namespace && object.kind !== 'Namespace',
    );
  }

  claims(namespace: string): KubernetesObject[] {
    return [...this.objects.values()].filter(
      (object) =>
        object.metadata.namespace === namespace && object.kind === 'PersistentVolumeClaim',
    );
  }

  workloads(): Workloads {
    return { deployments: [], replicaSets: [], pods: [] };
  }

  /** Changes a stored object as `kubectl edit` would. */
  edit(kind: string, namespace: string, name: string, change: (object: Stored) => void): void {
    const object = this.objects.get(key({ kind, metadata: { namespace, name } }));
    if (!object) throw new Error(`no ${kind} ${namespace}/${name}`);
    change(object);
  }

  names(kind: string): string[] {
    return [...this.objects.values()].filter((o) => o.kind === kind).map((o) => o.metadata.name);
  }
}

/** `seed-state` of each namespace, and the namespaces, kept in the in-memory cluster. */
export class InMemoryStates implements FlakeStates {
  readonly states = new Map<string, FlakeState>();
  readonly saves: FlakeState[] = [];
  readonly proposals = new Map<string, DesiredGeneration>();

  constructor(private readonly cluster: InMemoryCluster) {}

  async load(namespace: string): Promise<FlakeState> {
    return structuredClone(this.states.get(namespace) ?? { lastError: '' });
  }

  remembered(namespace: string): FlakeState | undefined {
    return this.states.get(namespace);
  }

  async namespace(name: string): Promise<KubernetesObject | undefined> {
    return this.cluster.get({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    });
  }

  proposal(namespace: string): DesiredGeneration | undefined {
    return this.proposals.get(namespace);
  }

  settle(namespace: string, desired: DesiredGeneration): void {
    if (this.proposals.get(namespace) === desired) this.proposals.delete(namespace);
  }

  async save(namespace: string, state: FlakeState): Promise<FlakeState> {
    const saved = { ...structuredClone(state), resourceVersion: String(this.saves.length + 1) };
    this.states.set(namespace, saved);
    this.saves.push(saved);
    return structuredClone(saved);
  }
}
