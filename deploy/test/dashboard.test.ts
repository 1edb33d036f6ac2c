// deploy/grafana/seed.json queries only metrics the services export: each service's
// `--list-metrics` (the names its registry would serve on /metrics, without starting it).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { DEPLOY_DIR, REPO_ROOT } from './manifests';
import { isExported, metricNames } from './promql';

const run = promisify(execFile);

/** Metric prefix → the app exporting it. */
const SERVICES: Record<string, string> = {
  seed_webhook_: 'webhook',
  seed_builder_: 'builder',
  seed_reconciler_: 'reconciler',
  seed_shoot_: 'shoot-pool',
};

interface Target {
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  templating: { list: { name: string; type: string; query: string }[] };
  panels: Panel[];
}

const dashboard = JSON.parse(
  readFileSync(path.join(DEPLOY_DIR, 'grafana', 'seed.json'), 'utf8'),
) as Dashboard;
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const queryPanels = panels.filter((panel) => panel.type !== 'row');

async function listMetrics(app: string): Promise<Set<string>> {
  const main = path.join(REPO_ROOT, 'apps', app, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build the apps first (pnpm build)`);
  const { stdout } = await run(process.execPath, [main, '--list-metrics'], {
    cwd: REPO_ROOT,
    timeout: 30_000,
  });
  return new Set(
    stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== ''),
  );
}

describe('metricNames', () => {
  it.each([
    ['sum by (outcome) (rate(seed_a_total{outcome!="x"}[$__rate_interval]))', ['seed_a_total']],
    [
      'histogram_quantile(0.99, sum by (le, phase) (rate(seed_b_seconds_bucket[5m])))',
      ['seed_b_seconds_bucket'],
    ],
    ['seed_c / on (job) group_left seed_d offset 1h > 1e3', ['seed_c', 'seed_d']],
    ['max(seed_e) or vector(0)', ['seed_e']],
    ['rate(seed_f_count[1m:30s])', ['seed_f_count']],
  ])('reads the metrics of %s', (expr, names) => {
    expect(metricNames(expr)).toEqual(names);
  });

  it('takes a histogram series as its family', () => {
    const exported = new Set(['seed_h_seconds']);
    expect(isExported('seed_h_seconds_bucket', exported)).toBe(true);
    expect(isExported('seed_h_total', exported)).toBe(false);
  });
});

describe('deploy/grafana/seed.json', () => {
  const exported = new Map<string, Set<string>>();

  // Only the services the dashboard charts are asked.
  beforeAll(async () => {
    const charted = new Set(
      queryPanels
        .flatMap((panel) => panel.targets ?? [])
        .flatMap((target) => metricNames(target.expr))
        .flatMap((name) => Object.entries(SERVICES).filter(([p]) => name.startsWith(p)))
        .map(([, app]) => app),
    );
    for (const app of charted) exported.set(app, await listMetrics(app));
  });

  it('is a dashboard with a Prometheus datasource variable used by every query', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    for (const panel of queryPanels) {
      expect({ panel: panel.title, uid: panel.datasource?.uid }).toEqual({
        panel: panel.title,
        uid: '${datasource}',
      });
      expect(panel.targets?.length ?? 0).toBeGreaterThan(0);
      for (const target of panel.targets ?? [])
        expect(target.datasource?.uid).toBe('${datasource}');
    }
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('has rows for the webhook, builds, reconciles and the shoot pool', () => {
    const rows = panels.filter((panel) => panel.type === 'row').map((panel) => panel.title);
    expect(rows).toEqual(expect.arrayContaining(['Webhook', 'Builds', 'Reconciles', 'Shoot pool']));
  });

  it('queries only metrics the services export', () => {
    const missing: string[] = [];
    let queried = 0;
    for (const panel of queryPanels) {
      for (const target of panel.targets ?? []) {
        const names = metricNames(target.expr);
        expect({ expr: target.expr, names: names.length > 0 }).toEqual({
          expr: target.expr,
          names: true,
        });
        for (const name of names) {
          queried += 1;
          const prefix = Object.keys(SERVICES).find((p) => name.startsWith(p));
          const app = prefix === undefined ? undefined : SERVICES[prefix];
          const list = app === undefined ? undefined : exported.get(app);
          if (list === undefined || !isExported(name, list)) {
            missing.push(`${panel.title}: ${name} (${app ?? 'no Seed service'})`);
          }
        }
      }
    }
    expect(queried).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });

  it('gets a real list from every service it charts', () => {
    for (const app of ['webhook', 'builder', 'reconciler', 'shoot-pool']) {
      expect(exported.get(app)?.size ?? 0).toBeGreaterThan(5);
    }
  });
});
