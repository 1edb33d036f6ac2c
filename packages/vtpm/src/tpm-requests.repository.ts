// The TPM requests in the cluster, from the Kubernetes API: the only file of this package
// importing client-node.
import { LABEL_TPM, NODE_AGENT_FIELD_MANAGER, TPM_REQUEST } from '@seed/contracts';
import { LABEL_MANAGED_BY, MANAGED_BY_SEED } from '@seed/k8s-model';
import { loadKubeConfig } from '@seed/kube-config';
import {
  ApiException,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { TpmRequest, TpmRequests } from './node-tpm.agent';

const SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_SEED},${LABEL_TPM}=${TPM_REQUEST}`;

/**
 * Lists every TPM request (ConfigMaps labelled `seed.loom.farm/tpm=request` in all
 * namespaces) and writes the agent's keys with JSON merge patches as field manager
 * `seed-node-agent`. A claim carries the resourceVersion read, so of two agents claiming
 * one request only the first succeeds (409 for the other).
 */
export class KubeTpmRequests implements TpmRequests {
  readonly #core: CoreV1Api;

  constructor(config: KubeConfig) {
    this.#core = config.makeApiClient(CoreV1Api);
  }

  static fromKubeconfig(path?: string): KubeTpmRequests {
    return new KubeTpmRequests(loadKubeConfig(path));
  }

  async list(): Promise<TpmRequest[]> {
    const list = await this.#core.listConfigMapForAllNamespaces({ labelSelector: SELECTOR });
    return list.items.map((item) => ({
      namespace: item.metadata?.namespace ?? '',
      name: item.metadata?.name ?? '',
      labels: item.metadata?.labels ?? {},
      data: item.data ?? {},
      resourceVersion: item.metadata?.resourceVersion ?? '',
    }));
  }

  async write(
    request: TpmRequest,
    data: Record<string, string>,
    guarded: boolean,
  ): Promise<boolean> {
    try {
      await this.#core.patchNamespacedConfigMap(
        {
          namespace: request.namespace,
          name: request.name,
          body: {
            metadata: guarded ? { resourceVersion: request.resourceVersion } : {},
            data,
          },
          fieldManager: NODE_AGENT_FIELD_MANAGER,
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return true;
    } catch (error) {
      // Written by someone else since it was read (another agent's claim), or deleted.
      if (error instanceof ApiException && (error.code === 409 || error.code === 404)) return false;
      throw error;
    }
  }
}
