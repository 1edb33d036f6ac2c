import { instanceObjectName } from '@seed/k8s-model';
import { AGE_RECIPIENT, readTpmReport, tpmRequestName } from '@seed/contracts';
import { appliedFlakeNamespace, type NamespaceLookup } from '../flake-namespace';
import { KubeCallError } from '../logs/instance-logs';

/**
 * `seed keys <flake> <instance>`: the instance's age recipient, which its node agent
 * recorded in the instance's TPM request (`data.recipient`; docs/secrets.md, "seed
 * keys"). No Kubernetes client here: `kube-logs.repository.ts` implements the port.
 */

/** Why there is no recipient to print; `message` says it to a person. */
export class KeysError extends Error {
  override readonly name = 'KeysError';

  constructor(
    readonly kind:
      | 'invalid-flake'
      | 'unknown-flake'
      | 'no-tpm'
      | 'not-placed'
      | 'tpm-failed'
      | 'no-recipient'
      | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

export interface InstanceKeysPort extends NamespaceLookup {
  /** A ConfigMap's data, or undefined when it does not exist. */
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

export async function instanceRecipient(
  kube: InstanceKeysPort,
  flake: string,
  instance: string,
): Promise<string> {
  const namespace = await appliedFlakeNamespace(
    kube,
    flake,
    (kind, message) => new KeysError(kind, message),
    ask,
  );
  let name: string;
  try {
    name = instanceObjectName(instance);
  } catch (error) {
    throw new KeysError('no-tpm', `no instance ${instance}: ${(error as Error).message}`);
  }
  const data = await ask(() => kube.configMap(namespace, tpmRequestName(name)));
  if (!data)
    throw new KeysError(
      'no-tpm',
      `instance ${instance} of ${flake} has no TPM: only an instance that sets seed.secrets gets one (or it is not in the applied generation; see seed status)`,
    );
  const report = readTpmReport(data);
  if (report.node === undefined || report.ctrlSocket === undefined) {
    if (report.reason !== undefined)
      throw new KeysError(
        'tpm-failed',
        `the TPM of instance ${instance} is not available: ${report.message ?? report.reason}`,
      );
    throw new KeysError(
      'not-placed',
      `the TPM of instance ${instance} is not on a node yet, so it has no identity; seed status ${flake} says why`,
    );
  }
  if (report.recipient === undefined)
    throw new KeysError(
      'no-recipient',
      `node ${report.node} holds the TPM of instance ${instance} but has not recorded its recipient yet; try again in a few seconds`,
    );
  if (!AGE_RECIPIENT.test(report.recipient))
    throw new KeysError(
      'no-recipient',
      `the recipient recorded for instance ${instance} is not an age recipient: ${JSON.stringify(report.recipient)}`,
    );
  return report.recipient;
}

async function ask<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof KubeCallError) throw new KeysError('unavailable', error.message);
    throw error;
  }
}
