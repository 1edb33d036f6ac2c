import { statfs } from 'node:fs/promises';
import { Gauge, type Registry } from 'prom-client';

/**
 * The size and free bytes of the filesystem holding a nix store, read on each scrape: what
 * the disk-nearly-full alert (deploy/prometheus/alerts.yaml) divides. A store that cannot
 * be read is left out of the scrape rather than reported as empty.
 */
export function registerStoreDiskGauges(
  registry: Registry,
  prefix: string,
  storeDir: string,
): void {
  const read = async (field: 'free' | 'size'): Promise<number | undefined> => {
    const stats = await statfs(storeDir).catch(() => undefined);
    if (!stats) return undefined;
    return (field === 'free' ? stats.bavail : stats.blocks) * stats.bsize;
  };
  for (const field of ['free', 'size'] as const) {
    new Gauge({
      name: `${prefix}store_filesystem_${field}_bytes`,
      help: `${field === 'free' ? 'Bytes free (to unprivileged users)' : 'Size in bytes'} of the filesystem holding the nix store`,
      labelNames: ['store'] as const,
      registers: [registry],
      async collect() {
        const bytes = await read(field);
        if (bytes === undefined) this.reset();
        else this.set({ store: storeDir }, bytes);
      },
    });
  }
}
