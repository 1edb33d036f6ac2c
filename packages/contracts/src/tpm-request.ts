/**
 * How an instance's TPM is asked for and reported: one ConfigMap per instance that wants
 * a TPM (`meta.tpm`), in its flake's namespace. The reconciler writes the request (its
 * labels and `data.instance`, field manager `seed`); the node agent of the node that
 * claims it writes the rest (field manager `seed-node-agent`). The agent takes the TPM's
 * identity from the ConfigMap's own namespace and `instance` label, never from anything
 * a tenant could put in `data`, so a request can only ever name its own instance's TPM.
 * docs/secrets.md, "Kata and the pod", says why a ConfigMap.
 */

/** Label on every TPM request (value `request`): what the agent and the reconciler watch. */
export const LABEL_TPM = 'seed.loom.farm/tpm';
export const TPM_REQUEST = 'request';

/** The pod annotation Kata (with the TPM patch) attaches the VM's TPM through. */
export const KATA_TPM_SOCKET_ANNOTATION = 'io.katacontainers.config.hypervisor.tpm_socket';

/** Field manager of the node agent's writes to a TPM request. */
export const NODE_AGENT_FIELD_MANAGER = 'seed-node-agent';

const REQUEST_PREFIX = 'seed-tpm-';

/** The request's name: `seed-tpm-<instance>` (an instance name is a DNS label, so it fits). */
export function tpmRequestName(instance: string): string {
  return `${REQUEST_PREFIX}${instance}`;
}

/** The keys of a TPM request's `data`. */
export const TPM_KEYS = {
  /** Reconciler: the instance (also its label; the two must agree). */
  instance: 'instance',
  /** Agent: the node that holds the TPM (the claim; never changed once set). */
  node: 'node',
  /** Agent: `true` while swtpm answers on `ctrlSocket`, else `false`. */
  ready: 'ready',
  /** Agent: the swtpm control socket on `node` (set once the TPM first ran). */
  ctrlSocket: 'ctrlSocket',
  /** Agent: one word when not ready (`TpmFailed`, `InvalidRequest`), empty when ready. */
  reason: 'reason',
  /** Agent: for people, why the TPM is not ready. */
  message: 'message',
  /** Agent: the instance's age recipient, once known (docs/secrets.md). */
  recipient: 'recipient',
} as const;

/** What the agent has written, read back from a request's `data` (absent keys: not yet). */
export interface TpmReport {
  node?: string;
  ready: boolean;
  ctrlSocket?: string;
  reason?: string;
  message?: string;
  recipient?: string;
}

export function readTpmReport(data: Readonly<Record<string, string>> | undefined): TpmReport {
  const value = (key: string) => {
    const v = data?.[key];
    return v === undefined || v === '' ? undefined : v;
  };
  return {
    node: value(TPM_KEYS.node),
    ready: data?.[TPM_KEYS.ready] === 'true',
    ctrlSocket: value(TPM_KEYS.ctrlSocket),
    reason: value(TPM_KEYS.reason),
    message: value(TPM_KEYS.message),
    recipient: value(TPM_KEYS.recipient),
  };
}

/** An age X25519 recipient as `age-keygen -y` prints it. */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
