export {
  EXPOSE_PROTOCOLS,
  META_LIMITS,
  SIZE_TIERS,
  canonicalJson,
  parseSeedMeta,
  quantityBytes,
  seedMetaSchema,
  transportsOf,
} from './meta';
export type {
  ConnectEntry,
  ExposeEntry,
  ExposeProtocol,
  MetaParseResult,
  MetaProblem,
  SeedMeta,
  SizeTier,
  StorageEntry,
} from './meta';
export {
  FLAKE_SCHEMES,
  GITHUB_FLAKE_REF,
  InvalidFlakeRef,
  gitRemoteOf,
  parseFlakeRef,
  redactFlakeRef,
} from './flake-ref';
export type { FlakeRef, FlakeScheme } from './flake-ref';
export { deriveNamespace, flakeUriDigest, generationHash, instanceHash } from './identity';
export type { InstanceIdentity } from './identity';
export {
  BUILDS_QUEUE,
  BUILD_JOB_NAME,
  BUILD_JOB_OPTIONS,
  FORGES,
  buildJobId,
  buildJobOptions,
  buildJobSchema,
  flakeKey,
} from './jobs';
export type { BuildJob, Forge } from './jobs';
export { flakeHookId } from './hooks';
export {
  ENV_SHOOT_TOKEN_FILE,
  SHOOT_TOKEN_AUDIENCE,
  SHOOT_TOKEN_DIR,
  SHOOT_TOKEN_EXPIRATION_SECONDS,
  SHOOT_TOKEN_FILE,
} from './shoot-token';
export { PLATFORM_IDENTITIES, RECONCILER_CALLERS } from './callers';
export type { PlatformIdentity } from './callers';
export {
  TLS_FILE_NAMES,
  peerIdentity,
  platformChannelCredentials,
  readTlsDirectory,
  tlsDirectorySchema,
  watchTlsDirectory,
} from './tls';
export type { TlsDirectory } from './tls';
export {
  PROTO_DIR,
  createReconcilerClient,
  createShootClient,
  reconcilerService,
  shootService,
} from './grpc';
export type {
  ApplyGenerationRequest,
  ApplyGenerationRequest__Output,
} from './generated/seed/v1/ApplyGenerationRequest';
export type {
  ApplyGenerationResponse,
  ApplyGenerationResponse__Output,
} from './generated/seed/v1/ApplyGenerationResponse';
export type { FlakeStatus, FlakeStatus__Output } from './generated/seed/v1/FlakeStatus';
export type { KeptGeneration, KeptGeneration__Output } from './generated/seed/v1/KeptGeneration';
export type { RollbackRequest, RollbackRequest__Output } from './generated/seed/v1/RollbackRequest';
export type {
  GetStatusRequest,
  GetStatusRequest__Output,
} from './generated/seed/v1/GetStatusRequest';
export type { Instance, Instance__Output } from './generated/seed/v1/Instance';
export type { InstanceStatus, InstanceStatus__Output } from './generated/seed/v1/InstanceStatus';
export type {
  ReconcilerClient,
  ReconcilerDefinition,
  ReconcilerHandlers,
} from './generated/seed/v1/Reconciler';
export type { PoolStatus, PoolStatus__Output } from './generated/seed/v1/PoolStatus';
export type { ShootClient, ShootDefinition, ShootHandlers } from './generated/seed/v1/Shoot';
export type { ShootRequest, ShootRequest__Output } from './generated/seed/v1/ShootRequest';
export type { ShootResult, ShootResult__Output } from './generated/seed/v1/ShootResult';
export {
  FINAL_BUILD_STATES,
  buildListSchema,
  buildRecordSchema,
  queuedBuildRecord,
} from './build-record';
export type { BuildError, BuildList, BuildRecord, BuildState, BuildSummary } from './build-record';
export {
  SHOOT_LIMITS,
  shootAnswerSchema,
  shootCommandSchema,
  shootRequestSchema,
} from './shoot-api';
export type { ShootAnswer, ShootPoolStatus, ShootRequestBody } from './shoot-api';
export {
  commitStatusRequest,
  forgeStatusSchema,
  statusTargetOf,
  statusTargetSchema,
} from './forge-status';
export type {
  CommitStatus,
  CommitStatusEvent,
  ForgeStatusTarget,
  StatusTarget,
} from './forge-status';
export {
  DEFAULT_FLAKE_QUOTA,
  FLAKE_QUOTA_FIELDS,
  INSTANCE_POD,
  canonicalFlakeQuota,
  canonicalQuantity,
  flakeNeeds,
  flakeQuotaOverridesSchema,
  flakeQuotaSchema,
  quotaExcess,
  withQuotaDefaults,
} from './quota';
export type { FlakeNeeds, FlakeQuota } from './quota';
export { readFlakeRegistry } from './flake-registry';
export type { FlakeRegistryEntry } from './flake-registry';
export {
  AGE_RECIPIENT,
  KATA_TPM_SOCKET_ANNOTATION,
  LABEL_TPM,
  NODE_AGENT_FIELD_MANAGER,
  TPM_KEYS,
  TPM_REQUEST,
  readTpmReport,
  tpmRequestName,
} from './tpm-request';
export type { TpmReport } from './tpm-request';
export {
  DEFAULT_MAX_QUEUED_BUILDS,
  DELETED_BY_ANNOTATION,
  SEED_FLAKE_API,
  SEED_FLAKE_CONDITIONS,
  namespaceHolders,
  REBUILD_ANNOTATION,
  WEBHOOK_STATUS_FIELDS,
  rebuildRequestSchema,
  seedFlakeSettingsSchema,
  seedFlakeSpecSchema,
} from './seed-flake';
export type {
  NamespaceTaken,
  RebuildAnswer,
  RebuildRequest,
  SeedFlakeCondition,
  SeedFlakeConditionType,
  SeedFlakeInstanceStatus,
  SeedFlakeResource,
  SeedFlakeSettings,
  SeedFlakeSpec,
  SeedFlakeStatus,
} from './seed-flake';
