import type { Registry } from 'prom-client';

/**
 * `node dist/main.js --list-metrics` prints the names of the metrics a service exports
 * (one per line, histograms with their _bucket/_sum/_count series) and exits, without
 * starting anything: the Grafana dashboard's test checks every query against them.
 */
export async function listMetricsIfAsked(
  registry: () => Registry,
  argv = process.argv,
): Promise<boolean> {
  if (!argv.includes('--list-metrics')) return false;
  const names: string[] = [];
  for (const metric of await registry().getMetricsAsJSON()) {
    const type = String(metric.type);
    if (type === 'histogram')
      names.push(`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`);
    else if (type === 'summary')
      names.push(metric.name, `${metric.name}_sum`, `${metric.name}_count`);
    else names.push(metric.name);
  }
  process.stdout.write(`${names.sort().join('\n')}\n`);
  return true;
}
