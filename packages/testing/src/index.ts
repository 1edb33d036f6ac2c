export { SEED_OFFLINE_IMAGE_NIX, demoFlakeFiles } from './flake-repo';
export type { DemoFlakeOptions, DemoSeed } from './flake-repo';
export { toNixExpression } from './nix-expression';
export {
  BenchCleanups,
  BenchInputError,
  benchSettings,
  median,
  parseBenchSettings,
  rowPrinter,
  runBench,
} from './bench';
// The real parts tests start (on loopback, and the one local node a machine runs), from
// the package `seed up` shares.
export {
  CertificateAuthority,
  createPlatformCertificates,
  issueTlsDir,
  FlakeRepo,
  KUBE_BINARIES_SCRIPT,
  flakeToolsDir,
  freeLoopbackPort,
  freeLoopbackPorts,
  githubPushHeaders,
  installSeedFlakeCrd,
  kubeRequest,
  NODE_BINARIES_SCRIPT,
  addToStore,
  reconcilerNetworkEnv,
  serviceAccountKubeconfig,
  buildNixImage,
  startKubeApiServer,
  startLocalCluster,
  startQuotaController,
  startNixDaemon,
  startServiceProcess,
  takeClusterTurn,
  SecretsVm,
  SEED_SECRETS_PROGRAM,
  secretsToolsDir,
  sopsEncrypt,
} from '@seed/local-parts';
export type {
  ClusterTurn,
  PlatformCertificates,
  KubeApiServer,
  KubeApiServerOptions,
  LocalCluster,
  LocalNode,
  LocalNixDaemon,
  LocalRedis,
  LogLine,
  QuotaController,
  ServiceProcess,
  GuestResult,
} from '@seed/local-parts';
export { startRedis } from './redis';
export { apiWrites, splitEvents, writesBetween } from './api-writes';
export { collidingFlakeUris } from './namespace-collision';
export type { WriteCounts } from './api-writes';
export { queueBuild } from './queue-build';
export {
  clhRequestSchemaName,
  clhResponseSchemaName,
  clhSchemaProblems,
  clhSpec,
  clhSpecOperation,
} from './clh-spec';
export type { JsonSchema } from './clh-spec';
export { seedMeta } from './seed-meta';
