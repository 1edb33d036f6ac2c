export { FlakeRepo } from './flake-repo';
export { startRedis } from './redis-server';
export type { LocalRedis, RedisAclUser, RedisCredentials } from './redis-server';
export { NIX_DAEMON_CONF, startNixDaemon } from './nix-daemon';
export type { LocalNixDaemon, NixDaemonOptions } from './nix-daemon';
export { startServiceProcess } from './service-process';
export type { LogLine, ServiceProcess } from './service-process';
export {
  KUBE_BINARIES_SCRIPT,
  serviceAccountKubeconfig,
  startKubeApiServer,
} from './kube-apiserver';
export type { KubeApiServer, KubeApiServerOptions } from './kube-apiserver';
export { freeLoopbackPort, freeLoopbackPorts } from './ports';
export { FLAKE_TOOLS_SCRIPT, flakeToolsDir } from './flake-tools';
export type { FlakeToolsKind } from './flake-tools';
export { githubPushHeaders } from './github-delivery';
export { reconcilerNetworkEnv, startNode, NODE_BINARIES_SCRIPT } from './node/node';
export type { LocalNode, NodeOptions } from './node/node';
export { NODE_NETWORK } from './node/node-config';
export { kubeRequest } from './node/kube-requests';
export { CertificateAuthority, createPlatformCertificates, issueTlsDir } from './certificates';
export type { PlatformCertificates } from './certificates';
export { addToStore, buildNixImage } from './node/nix-image';
export type { NixImageSpec } from './node/nix-image';
export { startLocalCluster } from './local-cluster';
export type { LocalCluster } from './local-cluster';
export { NIXPKGS_LIB_URL, offlineSeedFiles } from './seed-library';
export { acquireNodeLock } from './node/node-lock';
export type { NodeLock } from './node/node-lock';
export { exampleFlakeFiles } from './example-flake';
export { httpGetOnce } from './http-get';
export type { HttpAnswer } from './http-get';
export { hostSharedCluster, takeClusterTurn, SHARED_CLUSTER_ENV } from './shared-cluster';
export type { ClusterTurn, SharedClusterHost } from './shared-cluster';
export { startQuotaController } from './quota-controller';
export type { QuotaController } from './quota-controller';
export { startPrometheus } from './prometheus';
export type { LocalPrometheus, PromSample, PrometheusOptions, ScrapeTarget } from './prometheus';
export { SEED_FLAKE_CRD, installSeedFlakeCrd } from './seed-flake-crd';
export { SecretsVm, SEED_SECRETS_PROGRAM, secretsToolsDir, sopsEncrypt } from './secrets-vm';
export type { GuestJob, GuestResult } from './secrets-vm';
