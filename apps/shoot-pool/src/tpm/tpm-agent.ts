import { KubeTpmRequests, NodeTpmAgent, VtpmStore, seedSecretsIdentity } from '@seed/vtpm';
import type { Logger } from '@seed/service-kit';
import type { TpmAgentConfig } from '../config';

/**
 * The node's TPM agent, hosted by the shoot pool's daemon: the one Seed process that runs
 * on every node already (docs/secrets.md says why not an apps/node-agent). It shares
 * nothing with the pool but the process: its own loop, its own state folder.
 */
export function startTpmAgent(config: TpmAgentConfig, logger: Logger): { stop(): Promise<void> } {
  const store = new VtpmStore({
    root: config.root,
    swtpm: config.swtpm,
    graceMs: config.graceMs,
    now: Date.now,
    // tpm2-tools and age-keygen from the daemon's PATH.
    createIdentity: config.identityProgram
      ? seedSecretsIdentity(config.identityProgram, process.env.PATH ?? '/usr/bin:/bin')
      : undefined,
  });
  const agent = new NodeTpmAgent(
    KubeTpmRequests.fromKubeconfig(config.kubeconfig),
    store,
    { nodeName: config.nodeName, claim: true },
    logger.child({ part: 'tpm' }),
  );
  logger.info({ root: config.root, node: config.nodeName }, 'TPM agent started');
  return agent.start(config.syncMs);
}
