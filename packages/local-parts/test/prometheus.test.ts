import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPrometheus, type LocalPrometheus } from '../src';
import { sleep } from '../src/managed-process';

let served = 3;
let target: Server;
let prometheus: LocalPrometheus;

beforeAll(async () => {
  target = createServer((req, res) => {
    res.writeHead(req.url === '/metrics' ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(
      req.url === '/metrics' ? `# TYPE seed_test_total counter\nseed_test_total ${served}\n` : '',
    );
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const { port } = target.address() as AddressInfo;
  prometheus = await startPrometheus({
    targets: [
      { job: 'served', url: `http://127.0.0.1:${port}/metrics` },
      { job: 'missing', url: `http://127.0.0.1:${port}/nothing-here` },
    ],
  });
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  target?.close();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no ${what} in 20 s`);
    await sleep(200);
  }
}

describe('startPrometheus', () => {
  it("scrapes its targets: a served counter's value, labelled with the target's job", async () => {
    const [sample] = await until('sample', async () => {
      const samples = await prometheus.query('seed_test_total');
      return samples.length > 0 ? samples : undefined;
    });
    expect(sample).toEqual({
      metric: expect.objectContaining({ job: 'served', __name__: 'seed_test_total' }),
      value: 3,
    });
    served = 5;
    await until('the new value', async () =>
      (await prometheus.query('seed_test_total'))[0]?.value === 5 ? true : undefined,
    );
  }, 30_000);

  it('tells which targets it can scrape', async () => {
    const health = await until('both scraped', async () => {
      const found = await prometheus.targetHealth();
      return Object.values(found).includes('unknown') ? undefined : found;
    });
    expect(health).toEqual({
      served: 'up',
      missing: expect.stringMatching(/^down: server returned HTTP status 404/),
    });
  }, 30_000);

  it("rejects a query Prometheus cannot parse with Prometheus's error", async () => {
    await expect(prometheus.query('sum(')).rejects.toThrow(/parse error/);
  });

  it('removes its data folder on stop', async () => {
    const other = await startPrometheus({ targets: [] });
    expect(existsSync(other.dir)).toBe(true);
    await other.stop();
    await expect(fetch(`${other.url}/-/ready`)).rejects.toThrow();
    expect(existsSync(other.dir)).toBe(false);
  }, 30_000);
});
