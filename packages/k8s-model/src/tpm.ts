import {
  KATA_TPM_SOCKET_ANNOTATION,
  LABEL_TPM,
  TPM_KEYS,
  TPM_REQUEST,
  tpmRequestName,
} from '@seed/contracts';
import type { GenerationContext, SeedInstance } from './input';
import { instanceObjectMeta } from './metadata';
import { withSortedKeys, type SeedConfigMap, type SeedDeployment } from './objects';

/**
 * The request for an instance's TPM (`meta.tpm`): a ConfigMap `seed-tpm-<instance>` that a
 * node agent claims and reports on (`@seed/contracts` tpm-request.ts). Seed sets only its
 * labels and `data.instance`; the agent's keys are its own field manager's.
 */
export function renderTpmRequest(
  context: GenerationContext,
  instance: SeedInstance,
): SeedConfigMap | undefined {
  if (instance.meta.tpm !== true) return undefined;
  const metadata = instanceObjectMeta(context, instance, tpmRequestName(instance.name));
  return withSortedKeys({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { ...metadata, labels: { ...metadata.labels, [LABEL_TPM]: TPM_REQUEST } },
    data: { [TPM_KEYS.instance]: instance.name },
  });
}

/** Where an instance's TPM is: the node holding it and its swtpm control socket there. */
export interface TpmPlacement {
  node: string;
  ctrlSocket: string;
}

/**
 * The instance's Deployment with its pod pinned to the node holding its TPM (required
 * node affinity on the node's name, as the DaemonSet controller pins its pods) and the
 * annotation Kata attaches the TPM through.
 */
export function pinToTpm(deployment: SeedDeployment, tpm: TpmPlacement): SeedDeployment {
  const template = deployment.spec!.template;
  return withSortedKeys({
    ...deployment,
    spec: {
      ...deployment.spec!,
      template: {
        ...template,
        metadata: {
          ...template.metadata,
          annotations: {
            ...template.metadata?.annotations,
            [KATA_TPM_SOCKET_ANNOTATION]: tpm.ctrlSocket,
          },
        },
        spec: {
          ...template.spec!,
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [
                  { matchFields: [{ key: 'metadata.name', operator: 'In', values: [tpm.node] }] },
                ],
              },
            },
          },
        },
      },
    },
  });
}
