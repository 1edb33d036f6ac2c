import { readTpmReport, type TpmReport } from '@seed/contracts';
import type { TpmPlacement } from '@seed/k8s-model';
import type { InstanceRollout } from './instance-rollout';

/** The part of a TPM request ConfigMap the reconciler reads: what the node agent wrote. */
export interface TpmRequestView {
  data?: Record<string, string>;
}

/**
 * Whether an instance's Deployment may be applied: once a node agent has claimed its TPM
 * and had it running (`node` and `ctrlSocket` written), the pod can be pinned there.
 * A pod that stopped its VM stops swtpm too (QEMU's CMD_SHUTDOWN); the agent restarts it,
 * and the placement stays the same, so a Deployment once placed is always applied.
 */
export function tpmPlacement(
  request: TpmRequestView | undefined,
  namespace: string,
  instance: string,
): TpmPlacement | undefined {
  const report = readTpmReport(request?.data);
  if (report.node === undefined || report.ctrlSocket === undefined) return undefined;
  if (placementProblem(report, namespace, instance) !== undefined) return undefined;
  return { node: report.node, ctrlSocket: report.ctrlSocket };
}

/** A node name (a DNS subdomain), as the node affinity takes it. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Why a report cannot place the pod: the socket Kata attaches must be this instance's
 * own (VtpmStore's `<root>/<namespace>_<instance>/tpm.sock.ctrl`), so a report edited to
 * name another instance's TPM never reaches a pod.
 */
function placementProblem(
  report: TpmReport,
  namespace: string,
  instance: string,
): string | undefined {
  if (!NODE_NAME.test(report.node ?? '') || (report.node ?? '').length > 253)
    return `node ${JSON.stringify(report.node)} is not a node name`;
  const socket = report.ctrlSocket ?? '';
  const own = `/${namespace}_${instance}/tpm.sock.ctrl`;
  if (!socket.startsWith('/') || !socket.endsWith(own) || socket.includes('/../'))
    return `socket ${JSON.stringify(socket)} is not this instance's TPM (…${own})`;
  return undefined;
}

/**
 * What an instance's TPM says about its rollout, when it holds the instance back (no
 * Deployment yet, or the node agent reports a failure); undefined when the Deployment
 * answers alone. docs/reconciler.md lists the reasons.
 */
export function tpmRollout(
  request: TpmRequestView | undefined,
  deploymentExists: boolean,
  namespace: string,
  instance: string,
): InstanceRollout | undefined {
  const report: TpmReport = readTpmReport(request?.data);
  if (report.node !== undefined && report.ctrlSocket !== undefined) {
    const problem = placementProblem(report, namespace, instance);
    if (problem !== undefined)
      return {
        rollout: 'failed',
        reason: 'InvalidTpmReport',
        message: `the TPM request's report cannot place the pod: ${problem}`,
        readyReplicas: 0,
      };
  }
  if (report.reason !== undefined && !report.ready) {
    return {
      rollout: 'failed',
      reason: report.reason,
      message: `node ${report.node ?? '(none)'} cannot provide the instance's TPM: ${report.message ?? report.reason}`,
      readyReplicas: 0,
    };
  }
  if (deploymentExists) return undefined;
  const waiting = (message: string): InstanceRollout => ({
    rollout: 'progressing',
    reason: 'TpmPending',
    message,
    readyReplicas: 0,
  });
  if (!request) return waiting('waiting for its TPM request to be written');
  if (report.node === undefined)
    return waiting(
      'waiting for a node agent to claim its TPM (no node with a TPM agent has taken it)',
    );
  if (report.ctrlSocket === undefined)
    return waiting(`waiting for node ${report.node} to start its TPM`);
  return waiting(`its TPM is ready on node ${report.node}; the Deployment is applied next`);
}
