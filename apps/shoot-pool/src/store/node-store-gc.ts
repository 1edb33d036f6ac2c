import { NixClient } from '@seed/nix-eval';
import { StoreGcSchedule, type Logger, type StoreGcMetrics } from '@seed/service-kit';
import type { ShootPoolConfig } from '../config';

/**
 * The node's store collection, on the pool's schedule and under disk pressure. The node's
 * own nix-daemon collects (`nix store gc` through its socket): it sees every root of the
 * node — nix-snapshotter's roots of the images containerd holds, which keep every image in
 * use and its closure, the system's profiles, and what running processes use — where this
 * container sees only its own. What goes is what no root holds: images containerd
 * removed (kubelet's image GC), and anything else left unrooted.
 */
export function nodeStoreGc(
  gc: NonNullable<ShootPoolConfig['gc']>,
  storeDir: string,
  metrics: StoreGcMetrics,
  logger: Logger,
): StoreGcSchedule {
  const nix = new NixClient({ nixBinary: gc.nixBinary, store: gc.nixStore });
  return new StoreGcSchedule(
    async () => [{ store: storeDir, ...(await nix.collectGarbage()) }],
    metrics,
    { ...gc, folders: [storeDir] },
    logger,
  );
}
