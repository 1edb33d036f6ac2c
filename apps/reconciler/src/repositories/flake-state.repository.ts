import { LABEL_MANAGED_BY, MANAGED_BY_SEED, flakeStamp } from '@seed/k8s-model';
import { STATE_CONFIG_MAP, appliedSchema, desiredSchema, type FlakeState } from '../flake-state';
import type { AppliedObject, KubeRepository, KubernetesObject } from './kube.repository';

const STATE_LABEL = 'seed.loom.farm/state';

interface ConfigMap extends KubernetesObject {
  data?: Record<string, string>;
}

/**
 * Each flake's state as a ConfigMap `seed-state` in its namespace, cached in memory after
 * the first read. Writes go through server-side apply like every other Seed object.
 */
export class FlakeStateRepository {
  private readonly cache = new Map<string, FlakeState>();

  constructor(private readonly kube: KubeRepository) {}

  async load(namespace: string): Promise<FlakeState> {
    const cached = this.cache.get(namespace);
    if (cached) return cached;
    const configMap = await this.kube.read<ConfigMap>(
      'v1',
      'ConfigMap',
      namespace,
      STATE_CONFIG_MAP,
    );
    const state = parseState(configMap?.data ?? {});
    this.cache.set(namespace, state);
    return state;
  }

  async save(namespace: string, state: FlakeState): Promise<void> {
    const data: Record<string, string> = { lastError: state.lastError };
    if (state.desired) {
      data.flakeUri = state.desired.flakeUri;
      data.desired = JSON.stringify(state.desired);
    }
    if (state.applied) data.applied = JSON.stringify(state.applied);
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
      },
      data,
    };
    await this.kube.apply(configMap);
    this.cache.set(namespace, state);
  }

  /** Namespaces that hold a Seed flake's state, for resuming after a restart. */
  async namespaces(): Promise<string[]> {
    const configMaps = await this.kube.list<ConfigMap>(
      'v1',
      'ConfigMap',
      undefined,
      `${STATE_LABEL}=flake`,
    );
    return configMaps
      .filter((configMap) => configMap.metadata?.name === STATE_CONFIG_MAP)
      .map((configMap) => configMap.metadata!.namespace!)
      .sort();
  }
}

function parseState(data: Record<string, string>): FlakeState {
  const json = (text: string | undefined) => {
    try {
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    } catch {
      return undefined;
    }
  };
  const desired = desiredSchema.safeParse(json(data.desired));
  const applied = appliedSchema.safeParse(json(data.applied));
  return {
    desired: desired.success ? desired.data : undefined,
    applied: applied.success ? applied.data : undefined,
    lastError: data.lastError ?? '',
  };
}
