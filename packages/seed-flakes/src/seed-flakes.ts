import {
  ApiException,
  CustomObjectsApi,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import {
  SEED_FLAKE_API,
  type RebuildAnswer,
  type SeedFlakeResource,
  type SeedFlakeSpec,
  type SeedFlakeStatus,
} from '@seed/contracts';
import { keepInformerRunning } from '@seed/kube-config';

const { group, version, plural } = SEED_FLAKE_API;

/** The SeedFlakes as the API server has them, followed as they change. */
export interface SeedFlakeWatch {
  /** Every SeedFlake now, from the watch's cache. */
  list(): SeedFlakeResource[];
  /** The first list has arrived: `list` is the cluster's, not an empty start. */
  synced(): boolean;
  stop(): Promise<void>;
}

/**
 * Watches every SeedFlake and calls `onChange` with all of them after each change (and
 * once the first list arrives): readers rebuild what they derive from the whole set,
 * which a namespace taken by two flakes needs. The watch starts again after errors.
 */
export function watchSeedFlakes(
  config: KubeConfig,
  onChange: (flakes: SeedFlakeResource[]) => void,
  onError: (error: unknown) => void,
): SeedFlakeWatch {
  const api = config.makeApiClient(CustomObjectsApi);
  const informer = makeInformer<KubernetesObject>(
    config,
    `/apis/${group}/${version}/${plural}`,
    () => api.listClusterCustomObject({ group, version, plural }),
  );
  let synced = false;
  const list = () => informer.list() as unknown as SeedFlakeResource[];
  const changed = () => onChange(list());
  for (const event of ['add', 'update', 'delete'] as const) informer.on(event, changed);
  informer.on('connect', () => {
    synced = true;
    changed();
  });
  const running = keepInformerRunning(informer, onError);
  return { list, synced: () => synced, stop: () => running.stop() };
}

/** Reads, writes and deletes SeedFlakes as one field manager. */
/** A merge patch of a status; a member of the rebuild answer set to null is deleted. */
export type StatusPatch = Omit<SeedFlakeStatus, 'lastHandledRebuild'> & {
  lastHandledRebuild?: { [M in keyof RebuildAnswer]?: RebuildAnswer[M] | null };
};

export class SeedFlakeClient {
  private readonly api: CustomObjectsApi;

  constructor(
    config: KubeConfig,
    private readonly fieldManager: string,
  ) {
    this.api = config.makeApiClient(CustomObjectsApi);
  }

  async get(name: string): Promise<SeedFlakeResource | undefined> {
    try {
      return (await this.api.getClusterCustomObject({
        group,
        version,
        plural,
        name,
      })) as SeedFlakeResource;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  }

  async list(): Promise<SeedFlakeResource[]> {
    const list = (await this.api.listClusterCustomObject({ group, version, plural })) as {
      items: SeedFlakeResource[];
    };
    return list.items;
  }

  /**
   * Server-side apply of a SeedFlake's spec (the fields this manager sets, others kept);
   * the API server's refusal (schema, validation rules) throws with its message.
   */
  async apply(name: string, spec: Partial<SeedFlakeSpec>): Promise<SeedFlakeResource> {
    const body = {
      apiVersion: SEED_FLAKE_API.apiVersion,
      kind: SEED_FLAKE_API.kind,
      metadata: { name },
      spec,
    };
    return (await this.api.patchClusterCustomObject(
      { group, version, plural, name, body, fieldManager: this.fieldManager, force: true },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    )) as SeedFlakeResource;
  }

  /**
   * JSON merge patch of the status subresource: the fields given replace theirs (an
   * object's members one by one: null deletes one).
   */
  async patchStatus(name: string, status: StatusPatch): Promise<SeedFlakeResource> {
    return (await this.api.patchClusterCustomObjectStatus(
      { group, version, plural, name, body: { status }, fieldManager: this.fieldManager },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as SeedFlakeResource;
  }

  /** JSON merge patch of the metadata (finalizers, annotations) or spec. */
  async patch(
    name: string,
    patch: {
      metadata?: { finalizers?: string[] | null; annotations?: Record<string, string | null> };
      spec?: Partial<SeedFlakeSpec>;
    },
  ): Promise<SeedFlakeResource> {
    return (await this.api.patchClusterCustomObject(
      { group, version, plural, name, body: patch, fieldManager: this.fieldManager },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as SeedFlakeResource;
  }

  /** Asks for its deletion; false when there was none. */
  async delete(name: string): Promise<boolean> {
    try {
      await this.api.deleteClusterCustomObject({ group, version, plural, name });
      return true;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return false;
      throw error;
    }
  }
}
