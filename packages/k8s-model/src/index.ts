export { renderGeneration, desiredNames } from './render';
export type { DesiredNames } from './render';
export { renderNamespace } from './namespace';
export {
  renderDeployment,
  KATA_MEMORY_ANNOTATION,
  KATA_RUNTIME_CLASS,
  KATA_VCPUS_ANNOTATION,
} from './deployment';
export { renderService } from './service';
export { renderPersistentVolumeClaims } from './volume';
export { renderFlakeNetworkPolicies, renderInstanceNetworkPolicy } from './network-policy';
export { checkWithinQuota, renderFlakeBounds } from './bounds';
export { DEFAULT_NETWORK, DEFAULT_SHOOT_POOL_PORT } from './input';
export type {
  ClusterDns,
  ClusterNetwork,
  GenerationContext,
  GenerationInput,
  RenderOptions,
  SeedInstance,
} from './input';
export { ModelError } from './errors';
export { pinToTpm, renderTpmRequest } from './tpm';
export type { TpmPlacement } from './tpm';
export {
  ANNOTATION_COMMIT,
  ANNOTATION_FLAKE_SHA256,
  ANNOTATION_FLAKE_URI,
  ANNOTATION_GENERATION,
  ANNOTATION_INSTANCE_HASH,
  ENV_INSTANCE,
  ENV_NAMESPACE,
  ENV_NODE_IP,
  ENV_SHOOT_URL,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  MANAGED_BY_SEED,
  connectEnvNames,
  exposePortName,
  flakeStamp,
  instanceObjectName,
  isDns1035Label,
  isDns1123Label,
  isDns1123Subdomain,
  isEnvVarName,
  isIanaServiceName,
  isLabelValue,
  namespaceName,
  pvcName,
  selectorLabels,
  storageVolumeName,
} from './names';
export { KINDS_IN_APPLY_ORDER } from './objects';
export type {
  SeedConfigMap,
  SeedDeployment,
  SeedLimitRange,
  SeedNamespace,
  SeedResourceQuota,
  SeedNetworkPolicy,
  SeedObject,
  SeedObjectKind,
  SeedPersistentVolumeClaim,
  SeedService,
} from './objects';
