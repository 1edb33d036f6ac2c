export {
  InvalidInstance,
  VtpmStore,
  type InstanceKey,
  type VtpmStatus,
  type VtpmStoreOptions,
} from './vtpm-store';
export {
  SwtpmError,
  controlCapabilities,
  runningSwtpm,
  startSwtpm,
  stopSwtpm,
  tpmPaths,
  type TpmPaths,
} from './swtpm';
export {
  NodeTpmAgent,
  type AgentLogger,
  type NodeTpmAgentOptions,
  type SyncResult,
  type TpmRequest,
  type TpmRequests,
} from './node-tpm.agent';
export { KubeTpmRequests } from './tpm-requests.repository';
export { IdentityError, seedSecretsIdentity } from './identity';
