import { statfs } from 'node:fs/promises';
import { Gauge, type Registry } from 'prom-client';

/** The filesystem holding a folder, in bytes; `free` is what unprivileged users may still take. */
export interface DiskUsage {
  size: number;
  used: number;
  free: number;
}

/** Undefined when the folder cannot be read (a volume not mounted yet). */
export async function diskUsage(folder: string): Promise<DiskUsage | undefined> {
  const stats = await statfs(folder).catch(() => undefined);
  if (!stats) return undefined;
  return {
    size: stats.blocks * stats.bsize,
    used: (stats.blocks - stats.bfree) * stats.bsize,
    free: stats.bavail * stats.bsize,
  };
}

const FIELDS = {
  size: 'Size in bytes',
  used: 'Bytes used',
  free: 'Bytes free (to unprivileged users)',
} as const;

/**
 * The size, used and free bytes of the filesystem holding each store (a nix store, a
 * binary cache), labelled `store` by folder and read on each scrape: what the
 * disk-nearly-full alert (deploy/prometheus/alerts.yaml) divides. A store that cannot be
 * read is left out of the scrape rather than reported as empty.
 */
export function registerStoreDiskGauges(
  registry: Registry,
  prefix: string,
  storeDirs: readonly string[],
): void {
  for (const field of Object.keys(FIELDS) as (keyof typeof FIELDS)[]) {
    new Gauge({
      name: `${prefix}store_filesystem_${field}_bytes`,
      help: `${FIELDS[field]} of the filesystem holding the store`,
      labelNames: ['store'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const store of storeDirs) {
          const usage = await diskUsage(store);
          if (usage) this.set({ store }, usage[field]);
        }
      },
    });
  }
}
