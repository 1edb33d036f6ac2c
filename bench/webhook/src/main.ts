// bench/webhook: signed GitHub push deliveries per second and p50/p99 latency through the
// webhook's full path (verify, dedupe, enqueue, supersede), side by side with a minimal
// Fastify handler doing only HMAC + SET NX + BullMQ add. Both servers run as processes of
// their own against one real Redis; the load generator shares the machine's cores, as
// the servers alike. Rounds alternate between the two, each round in the other order;
// read the ratios.
import { createHmac } from 'node:crypto';
import path from 'node:path';
import examples from '@octokit/webhooks-examples/api.github.com/index.json';
import autocannon from 'autocannon';
import {
  freeLoopbackPort,
  startRedis,
  startServiceProcess,
  type ServiceProcess,
  runBench,
  rowPrinter,
} from '@seed/testing';
import { Redis } from 'ioredis';

const SECRET = 'bench-secret';
const REPOSITORIES = 20;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

type Payload = Record<string, unknown>;
const pushExample = (examples as unknown as { name: string; examples: Payload[] }[])
  .find((entry) => entry.name === 'push')!
  .examples.find((payload) => payload.ref === 'refs/heads/master')!;

let sequence = 0;
/** A fresh push (new delivery id and commit) to one of the registered repositories. */
function nextDelivery(): { body: string; headers: Record<string, string> } {
  sequence += 1;
  const repository = `bench/repo-${sequence % REPOSITORIES}`;
  const payload = {
    ...pushExample,
    after: sequence.toString(16).padStart(40, '0'),
    repository: {
      ...(pushExample.repository as Payload),
      full_name: repository,
      clone_url: `https://github.com/${repository}.git`,
      html_url: `https://github.com/${repository}`,
      ssh_url: `git@github.com:${repository}.git`,
      git_url: `git://github.com/${repository}.git`,
      url: `https://github.com/${repository}`,
    },
  };
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': `bench-${sequence}`,
      'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
    },
  };
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
}

async function load(url: string): Promise<Figures> {
  const result = await autocannon({
    url: `${url}/webhook`,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => ({ ...request, ...nextDelivery() }),
      },
    ],
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
  };
}

async function started(service: ServiceProcess, message: string): Promise<string> {
  return String((await service.waitForLog((line) => line.msg === message)).url).replace(
    '[::1]',
    '127.0.0.1',
  );
}

async function healthy(url: string, service: ServiceProcess): Promise<string> {
  for (let attempt = 0; attempt < 150; attempt += 1) {
    if (service.child.exitCode !== null) throw new Error(`the service exited: ${service.stderr()}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return url;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not become healthy`);
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const client = new Redis(redis.url);
  const flakes = Array.from({ length: REPOSITORIES }, (_, i) => ({
    flake: `github:bench/repo-${i}`,
    repository: `bench/repo-${i}`,
    secret: SECRET,
  }));
  const webhookPort = await freeLoopbackPort();
  const webhook = startServiceProcess(
    process.env.BENCH_WEBHOOK_MAIN ?? path.resolve(__dirname, '../../../apps/webhook/dist/main.js'),
    {
      SEED_FLAKES: JSON.stringify({ flakes }),
      SEED_REDIS_URL: redis.url,
      SEED_WEBHOOK_PORT: String(webhookPort),
      // Log lines would be parsed by this process, on the same cores as the load generator.
      SEED_LOG_LEVEL: 'warn',
    },
  );
  const minimal = startServiceProcess(path.resolve(__dirname, 'minimal-server.js'), {
    BENCH_REDIS_URL: redis.url,
    BENCH_SECRET: SECRET,
  });
  try {
    const targets = {
      seed: await healthy(`http://127.0.0.1:${webhookPort}`, webhook),
      minimal: await started(minimal, 'listening'),
    };
    const results: Record<keyof typeof targets, Figures[]> = { seed: [], minimal: [] };
    await load(targets.seed); // warm-up: JIT, connections, Redis scripts
    await load(targets.minimal);
    for (let round = 0; round < ROUNDS; round += 1) {
      // Who goes first swaps every round, so a drift in the machine's load does not always
      // land on the same target.
      const order =
        round % 2 === 0 ? (['minimal', 'seed'] as const) : (['seed', 'minimal'] as const);
      for (const name of order) {
        await client.flushall();
        results[name].push(await load(targets[name]));
      }
    }
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const summary = (name: keyof typeof targets) => ({
      rps: mean(results[name].map((r) => r.rps)),
      p50: mean(results[name].map((r) => r.p50)),
      p99: mean(results[name].map((r) => r.p99)),
      non2xx: results[name].reduce((sum, r) => sum + r.non2xx, 0),
    });
    const seed = summary('seed');
    const base = summary('minimal');
    const line = rowPrinter(46);
    console.log(
      `bench/webhook: ${CONNECTIONS} connections, ${ROUNDS} x ${DURATION_S} s per target, ${REPOSITORIES} flakes`,
    );
    for (const [label, figures] of [
      ['seed webhook (full path)', seed],
      ['minimal handler', base],
    ] as const) {
      line(
        label,
        `${figures.rps.toFixed(0)} deliveries/s, p50 ${figures.p50} ms, p99 ${figures.p99} ms, non-2xx ${figures.non2xx}`,
      );
    }
    line('throughput ratio seed / minimal (aim >= 0.8)', (seed.rps / base.rps).toFixed(2));
    line('p99 ratio seed / minimal (aim <= 1.2)', (seed.p99 / base.p99).toFixed(2));
  } finally {
    webhook.kill('SIGTERM');
    minimal.kill('SIGTERM');
    await Promise.all([webhook.exited, minimal.exited]);
    client.disconnect();
    await redis.dispose();
  }
}

runBench('bench/webhook', main);
