// Jest's global tear-down of a package's on-node project (see shared-cluster-setup.ts).
export { tearDownSharedCluster as default } from './shared-cluster-setup';
