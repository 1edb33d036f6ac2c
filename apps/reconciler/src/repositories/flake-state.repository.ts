import { LABEL_MANAGED_BY, MANAGED_BY_SEED, flakeStamp } from '@seed/k8s-model';
import type { Logger } from '@seed/service-kit';
import {
  STATE_CONFIG_MAP,
  appliedSchema,
  desiredSchema,
  keptSchema,
  removalSchema,
  type DesiredGeneration,
  type FlakeState,
} from '../flake-state';
import type {
  AppliedObject,
  KubeRepository,
  KubernetesObject,
  WatchHandle,
} from './kube.repository';

const STATE_LABEL = 'seed.loom.farm/state';
const STATE_SELECTOR = `${STATE_LABEL}=flake`;

interface ConfigMap extends KubernetesObject {
  data?: Record<string, string>;
}

/**
 * Each flake's state as a ConfigMap `seed-state` in its namespace, and the flake
 * namespaces themselves, both watched like every other Seed object: a change to either
 * (a hand edit, a delete, a write by another replica) queues the flake. The reconciler
 * reads the state fresh; the watch's cache answers the cheap questions (is this push a
 * no-op, whose is this namespace) and wakes callers waiting for a reconcile's outcome.
 * Writes go through server-side apply guarded by the resourceVersion read, so two
 * replicas (or a reconcile and an ApplyGeneration) never overwrite each other's state.
 */
export class FlakeStateRepository {
  private configMaps: WatchHandle | undefined;
  private namespaceWatch: WatchHandle | undefined;
  /**
   * The last state seen of each flake, kept when its ConfigMap is deleted (by hand, or
   * with its namespace): the only copy of the desired generation left to restore it from.
   */
  private readonly lastSeen = new Map<string, FlakeState>();
  /**
   * Generations this replica took (ApplyGeneration, while leading) for flakes whose state
   * is stored already, and has not written yet: the reconcile applies one and records it
   * with its outcome in one write, so a push writes the state once, not twice.
   */
  private readonly proposals = new Map<string, DesiredGeneration>();
  private readonly listeners = new Set<(namespace: string) => void>();

  constructor(
    private readonly kube: KubeRepository,
    private readonly logger: Logger,
  ) {}

  start(onChange: (namespace: string) => void): void {
    this.configMaps = this.kube.watch(
      'ConfigMap',
      STATE_SELECTOR,
      (_event, object) => {
        const namespace = object.metadata?.namespace;
        if (!namespace || object.metadata?.name !== STATE_CONFIG_MAP) return;
        const state = parseState(object);
        if (state.desired) this.lastSeen.set(namespace, state);
        onChange(namespace);
        for (const listener of this.listeners) listener(namespace);
      },
      (error) =>
        this.logger.warn({ err: error, kind: 'ConfigMap' }, 'watch interrupted; restarting'),
    );
    this.namespaceWatch = this.kube.watch(
      'Namespace',
      `${LABEL_MANAGED_BY}=${MANAGED_BY_SEED}`,
      (_event, object) => {
        if (object.metadata?.name) onChange(object.metadata.name);
      },
      (error) =>
        this.logger.warn({ err: error, kind: 'Namespace' }, 'watch interrupted; restarting'),
    );
  }

  async stop(): Promise<void> {
    await Promise.all([this.configMaps?.stop(), this.namespaceWatch?.stop()]);
  }

  /** The state as the API server has it now. */
  async load(namespace: string): Promise<FlakeState> {
    const configMap = await this.kube.read<ConfigMap>(
      'v1',
      'ConfigMap',
      namespace,
      STATE_CONFIG_MAP,
    );
    return configMap ? parseState(configMap) : { lastError: '' };
  }

  /** The state as the watch last saw it, or fresh while the watch has not seen it. */
  async cached(namespace: string): Promise<FlakeState> {
    const configMap = this.configMaps?.cached(namespace, STATE_CONFIG_MAP);
    return configMap ? parseState(configMap) : this.load(namespace);
  }

  /** The last state seen before its ConfigMap was deleted, to restore it from. */
  remembered(namespace: string): FlakeState | undefined {
    return this.lastSeen.get(namespace);
  }

  /** Takes `desired` as the flake's desired generation before it is stored; the latest wins. */
  propose(namespace: string, desired: DesiredGeneration): void {
    this.proposals.set(namespace, desired);
  }

  /** The generation proposed for the flake and not yet recorded by a reconcile. */
  proposal(namespace: string): DesiredGeneration | undefined {
    return this.proposals.get(namespace);
  }

  /**
   * Forgets a proposal its reconcile has recorded (applied or failed), unless a newer one
   * took its place meanwhile: that one still needs a reconcile.
   */
  settle(namespace: string, desired: DesiredGeneration): void {
    if (this.proposals.get(namespace) === desired) this.proposals.delete(namespace);
  }

  /** The flake namespace as the watch last saw it, or fresh. */
  async namespace(name: string): Promise<KubernetesObject | undefined> {
    return (
      this.namespaceWatch?.cached('', name) ?? this.kube.read('v1', 'Namespace', undefined, name)
    );
  }

  /**
   * Writes the state. A state read from the cluster is written only over that same
   * version (else the API server answers 409 and the caller retries with a fresh read).
   */
  async save(namespace: string, state: FlakeState): Promise<FlakeState> {
    const data: Record<string, string> = { lastError: state.lastError };
    if (state.desired) {
      data.flakeUri = state.desired.flakeUri;
      data.desired = JSON.stringify(state.desired);
    }
    if (state.applied) data.applied = JSON.stringify(state.applied);
    if (state.removal) data.removal = JSON.stringify(state.removal);
    if (state.kept?.length) data.kept = JSON.stringify(state.kept);
    // The flake's generation, commit and URI, as on its Namespace: for `kubectl get -o
    // yaml`, and so the state alone tells which flake the namespace holds.
    const stamp = state.desired
      ? flakeStamp({ ...state.desired, commit: state.desired.revision })
      : undefined;
    const configMap: ConfigMap & AppliedObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: STATE_CONFIG_MAP,
        namespace,
        labels: { [LABEL_MANAGED_BY]: MANAGED_BY_SEED, [STATE_LABEL]: 'flake' },
        ...(stamp && { annotations: stamp.annotations }),
        ...(state.resourceVersion && { resourceVersion: state.resourceVersion }),
      },
      data,
    };
    const written = await this.kube.apply(configMap);
    return { ...state, resourceVersion: written.metadata?.resourceVersion };
  }

  /**
   * Resolves with the first state the watch sees (now or later) for which `decide`
   * answers something; undefined after `timeoutMs`.
   */
  async waitFor<T>(
    namespace: string,
    decide: (state: FlakeState) => T | undefined,
    timeoutMs: number,
  ): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve) => {
      const check = (changed: string) => {
        if (changed !== namespace) return;
        const configMap = this.configMaps?.cached(namespace, STATE_CONFIG_MAP);
        const answer = configMap ? decide(parseState(configMap)) : undefined;
        if (answer !== undefined) done(answer);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const done = (answer: T | undefined) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(answer);
      };
      this.listeners.add(check);
      check(namespace);
    });
  }

  /** Namespaces that hold a Seed flake's state, for resuming after a restart. */
  async namespaces(): Promise<string[]> {
    const configMaps = await this.kube.list<ConfigMap>(
      'v1',
      'ConfigMap',
      undefined,
      STATE_SELECTOR,
    );
    return configMaps
      .filter((configMap) => configMap.metadata?.name === STATE_CONFIG_MAP)
      .map((configMap) => configMap.metadata!.namespace!)
      .sort();
  }
}

function parseState(configMap: ConfigMap): FlakeState {
  const data = configMap.data ?? {};
  const json = (text: string | undefined) => {
    try {
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    } catch {
      return undefined;
    }
  };
  const desired = desiredSchema.safeParse(json(data.desired));
  const applied = appliedSchema.safeParse(json(data.applied));
  const removal = removalSchema.safeParse(json(data.removal));
  const kept = keptSchema.array().safeParse(json(data.kept));
  return {
    resourceVersion: configMap.metadata?.resourceVersion,
    desired: desired.success ? desired.data : undefined,
    applied: applied.success ? applied.data : undefined,
    lastError: data.lastError ?? '',
    ...(removal.success && { removal: removal.data }),
    ...(kept.success && { kept: kept.data }),
  };
}
