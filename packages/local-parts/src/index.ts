export { FlakeRepo } from './flake-repo';
export { startRedis } from './redis-server';
export type { LocalRedis } from './redis-server';
export { startServiceProcess } from './service-process';
export type { LogLine, ServiceProcess } from './service-process';
export { KUBE_BINARIES_SCRIPT, startKubeApiServer } from './kube-apiserver';
export type { KubeApiServer, KubeApiServerOptions } from './kube-apiserver';
export { freeLoopbackPort, freeLoopbackPorts } from './ports';
export { githubPushHeaders } from './github-delivery';
