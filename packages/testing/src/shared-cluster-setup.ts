// Jest's global set-up of a package's on-node project: one local cluster for all its
// files (tooling/jest-config's `withSharedClusterProject`), stopped by the tear-down
// beside it. Jest runs a project's global set-up only when one of its files is selected.
import { hostSharedCluster, type SharedClusterHost } from '@seed/local-parts';

const HOST = Symbol.for('seed.sharedClusterHost');
type WithHost = typeof globalThis & { [HOST]?: SharedClusterHost };

export default async function setUpSharedCluster(): Promise<void> {
  (globalThis as WithHost)[HOST] = await hostSharedCluster();
}

export async function tearDownSharedCluster(): Promise<void> {
  await (globalThis as WithHost)[HOST]?.stop();
}
