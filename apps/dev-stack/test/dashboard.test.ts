// The dashboard check of `seed up` against a real Prometheus scraping a stand-in service;
// `seed up`'s own test (up.test.ts) runs it on the whole stack.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPrometheus, type LocalPrometheus } from '@seed/local-parts';
import { askDashboard, dashboardQueries } from '../src/dashboard';

const METRICS = [
  '# TYPE seed_demo_builds_total counter',
  'seed_demo_builds_total{outcome="succeeded"} 4',
  '# TYPE seed_demo_wait_seconds histogram',
  'seed_demo_wait_seconds_bucket{le="1"} 0',
  'seed_demo_wait_seconds_bucket{le="+Inf"} 0',
  'seed_demo_wait_seconds_sum 0',
  'seed_demo_wait_seconds_count 0',
  '',
].join('\n');

let service: Server;
let prometheus: LocalPrometheus;

beforeAll(async () => {
  service = createServer((_req, res) => res.end(METRICS));
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  const { port } = service.address() as AddressInfo;
  prometheus = await startPrometheus({
    targets: [{ job: 'demo', url: `http://127.0.0.1:${port}/metrics` }],
  });
  // Three scrapes at least, so every rate has samples to work on.
  const deadline = Date.now() + 30_000;
  const scrapes = async () =>
    (await prometheus.query('count_over_time(seed_demo_wait_seconds_count[1m])'))[0]?.value ?? 0;
  while ((await scrapes()) < 3) {
    if (Date.now() > deadline) throw new Error('prometheus did not scrape the demo service');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  service?.close();
});

describe('askDashboard', () => {
  it('passes a panel with data and names each kind of empty panel', async () => {
    const answers = await askDashboard(
      (expr) => prometheus.query(expr),
      [
        {
          panel: 'Builds',
          expr: 'sum by (outcome) (rate(seed_demo_builds_total[$__rate_interval]))',
        },
        { panel: 'Missing', expr: 'sum(seed_demo_not_exported)' },
        {
          panel: 'Unobserved',
          expr: 'histogram_quantile(0.5, sum by (le) (rate(seed_demo_wait_seconds_bucket[$__rate_interval])))',
        },
        { panel: 'Padded', expr: 'sum(seed_demo_not_exported) or vector(0)' },
        { panel: 'Constant', expr: '1' },
        { panel: 'Broken', expr: 'sum(seed_demo_builds_total' },
      ],
      '1m',
    );
    expect(answers.map(({ panel, series, problem }) => [panel, series, problem])).toEqual([
      ['Builds', 1, undefined],
      ['Missing', 0, 'no data'],
      ['Unobserved', 0, 'only NaN: nothing was observed'],
      ['Padded', 0, 'a constant query, not the services’ data'],
      ['Constant', 0, 'a constant query, not the services’ data'],
      ['Broken', 0, expect.stringMatching(/parse error/)],
    ]);
  });
});

describe('dashboardQueries', () => {
  it("reads every panel's queries from deploy/grafana/seed.json, rows' panels included", async () => {
    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThanOrEqual(30);
    expect(new Set(queries.map((q) => q.panel))).toContain('Shoot latency');
    for (const { expr } of queries) expect(expr).toMatch(/seed_/);
  });
});
