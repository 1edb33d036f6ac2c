// bench/webhook: signed GitHub push deliveries per second and p50/p99 latency through the
// webhook's full path (verify, dedupe, enqueue), side by side with a minimal Fastify
// handler doing only HMAC + SET NX + BullMQ add. Both servers run as processes of their
// own against one real Redis; the load generator shares the machine's cores, as the
// servers alike. The targets take turns in short rounds, each round in the other order,
// and the figures are the medians of each round's ratio: a drift or a burst of the
// machine's load then moves both sides of a ratio, or one round, not the result. The CPU
// each delivery costs the server and Redis is shown too: it varies less than throughput.
// Last, a flood: 50 concurrent maximal bad bodies on the shared URL while a flake's own
// hook URL takes pushes; it prints how much the webhook's memory grew and what each got.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import examples from '@octokit/webhooks-examples/api.github.com/index.json';
import autocannon from 'autocannon';
import { REDIS_USERS } from '@seed/builds-queue';
import { flakeHookId } from '@seed/contracts';
import {
  benchSettings,
  freeLoopbackPorts,
  githubPushHeaders,
  startRedis,
  startServiceProcess,
  runBench,
  type BenchCleanups,
  median,
  rowPrinter,
} from '@seed/testing';
import { Redis } from 'ioredis';

const SECRET = 'bench-secret';
const REPOSITORIES = 20;
// Many short rounds: a burst of the machine's load then spoils one round's ratio, and the
// median of twenty is not moved by a few.
const {
  BENCH_DURATION_S: DURATION_S,
  BENCH_ROUNDS: ROUNDS,
  BENCH_CONNECTIONS: CONNECTIONS,
} = benchSettings('bench/webhook', {
  BENCH_DURATION_S: 3,
  BENCH_ROUNDS: 20,
  BENCH_CONNECTIONS: 32,
});
const WARM_UP_S = 5;

type Payload = Record<string, unknown>;
const pushExample = (examples as unknown as { name: string; examples: Payload[] }[])
  .find((entry) => entry.name === 'push')!
  .examples.find((payload) => payload.ref === 'refs/heads/master')!;

let sequence = 0;
/**
 * A fresh push (new delivery id and commit) to one of the registered repositories, in
 * turn, or to the one numbered `index`.
 */
function nextDelivery(index?: number): { body: string; headers: Record<string, string> } {
  sequence += 1;
  const repository = `bench/repo-${index ?? sequence % REPOSITORIES}`;
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
  return { body, headers: githubPushHeaders(body, SECRET, `bench-${sequence}`) };
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** CPU time per delivery, in µs, of the server process and of Redis. */
  serverCpuUs: number;
  redisCpuUs: number;
}

interface Target {
  url: string;
  pid: number;
}

/** CPU seconds a process has used, from /proc (Linux's fixed 100 ticks per second). */
function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function redisCpuSeconds(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

async function load(target: Target, client: Redis, durationS = DURATION_S): Promise<Figures> {
  const before = { server: processCpuSeconds(target.pid), redis: await redisCpuSeconds(client) };
  const result = await autocannon({
    url: `${target.url}/webhook`,
    connections: CONNECTIONS,
    duration: durationS,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => ({ ...request, ...nextDelivery() }),
      },
    ],
  });
  const deliveries = Math.max(result.requests.total, 1);
  const perDelivery = (seconds: number) => (seconds * 1e6) / deliveries;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    serverCpuUs: perDelivery(processCpuSeconds(target.pid) - before.server),
    redisCpuUs: perDelivery((await redisCpuSeconds(client)) - before.redis),
  };
}

async function main(cleanups: BenchCleanups): Promise<void> {
  const redis = await startRedis();
  cleanups.add('redis', () => redis.dispose());
  const client = new Redis(redis.port, redis.host, redis.admin);
  cleanups.add('the Redis client', () => client.disconnect());
  const flakes = Array.from({ length: REPOSITORIES }, (_, i) => ({
    flake: `github:bench/repo-${i}`,
    repository: `bench/repo-${i}`,
    secret: SECRET,
    // No builder takes jobs here: at the default cap every push would first drop a
    // superseded build (fair-builds.test.ts covers that path). This measures a delivery.
    maxQueuedBuilds: 1000,
  }));
  const [webhookPort, minimalPort] = await freeLoopbackPorts(2);
  const webhook = startServiceProcess(
    process.env.BENCH_WEBHOOK_MAIN ?? path.resolve(__dirname, '../../../apps/webhook/dist/main.js'),
    {
      SEED_FLAKES: JSON.stringify({ flakes }),
      SEED_POLL_INTERVAL_SECONDS: '0', // its flakes' remotes are off this machine
      ...redis.serviceEnv(REDIS_USERS.webhook),
      SEED_WEBHOOK_PORT: String(webhookPort),
      // Log lines would be parsed by this process, on the same cores as the load generator.
      SEED_LOG_LEVEL: 'warn',
    },
  );
  cleanups.addProcess('the webhook', webhook);
  const minimal = startServiceProcess(path.resolve(__dirname, 'minimal-server.js'), {
    // Signed in too (its own keys are not the webhook's: as the fixture's admin).
    BENCH_REDIS_URL: redis.url,
    BENCH_REDIS_USERNAME: redis.admin.username,
    BENCH_REDIS_PASSWORD_FILE: redis.admin.passwordFile,
    BENCH_SECRET: SECRET,
    BENCH_PORT: String(minimalPort),
  });
  cleanups.addProcess('the minimal handler', minimal);

  const targets = {
    seed: { url: `http://127.0.0.1:${webhookPort}`, pid: webhook.child.pid! },
    minimal: { url: `http://127.0.0.1:${minimalPort}`, pid: minimal.child.pid! },
  };
  await webhook.healthy(targets.seed.url);
  await minimal.healthy(targets.minimal.url);
  await load(targets.seed, client, WARM_UP_S); // JIT, connections, Redis scripts
  await load(targets.minimal, client, WARM_UP_S);
  const rounds: Record<keyof typeof targets, Figures>[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = round % 2 === 0 ? (['minimal', 'seed'] as const) : (['seed', 'minimal'] as const);
    const figures: Partial<Record<keyof typeof targets, Figures>> = {};
    for (const name of order) {
      await client.flushall();
      figures[name] = await load(targets[name], client);
    }
    rounds.push(figures as Record<keyof typeof targets, Figures>);
  }

  const of = (name: keyof typeof targets, figure: keyof Figures) =>
    median(rounds.map((round) => round[name][figure]));
  const ratios = (figure: keyof Figures) =>
    rounds.map((round) => round.seed[figure] / round.minimal[figure]);
  const ratio = (figure: keyof Figures, aim: string) =>
    `${median(ratios(figure)).toFixed(2)} (rounds: ${ratios(figure)
      .map((value) => value.toFixed(2))
      .join(' ')}; aim ${aim})`;
  const line = rowPrinter(34);
  console.log(
    `bench/webhook: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_S} s per target, ${REPOSITORIES} flakes (medians over the rounds)`,
  );
  for (const [label, name] of [
    ['seed webhook (full path)', 'seed'],
    ['minimal handler', 'minimal'],
  ] as const) {
    const non2xx = rounds.reduce((sum, round) => sum + round[name].non2xx, 0);
    line(
      label,
      `${of(name, 'rps').toFixed(0)} deliveries/s, p50 ${of(name, 'p50')} ms, p99 ${of(name, 'p99')} ms, non-2xx ${non2xx}`,
    );
    line(
      `  CPU per delivery`,
      `server ${of(name, 'serverCpuUs').toFixed(0)} µs, Redis ${of(name, 'redisCpuUs').toFixed(0)} µs`,
    );
  }
  line('throughput ratio seed / minimal', ratio('rps', '>= 0.8'));
  line('p99 ratio seed / minimal', ratio('p99', '<= 1.2'));
  await flood(targets.seed);
}

/** The resident set of a process, in MiB. */
function rssMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kib ?? 0) / 1024;
}

const FLOOD = 50;
const FLOOD_BODY_BYTES = 1 << 20;
const FLOOD_PUSHES = 5;

/**
 * 50 concurrent `[{},{},…]` bodies of the largest size the shared URL takes, signed with a
 * wrong secret, and pushes to a flake's hook URL at the same time.
 */
async function flood(target: Target): Promise<void> {
  const bad = `[${'{},'.repeat(Math.floor(FLOOD_BODY_BYTES / 3) - 2)}{}]`;
  const post = async (route: string, headers: Record<string, string>, body: string) =>
    (await fetch(`${target.url}${route}`, { method: 'POST', headers, body })).status;
  const before = rssMiB(target.pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(target.pid))), 10);
  const started = performance.now();
  const hook = `/hooks/${flakeHookId('github:bench/repo-0', SECRET)}`;
  const [flooded, pushed] = await Promise.all([
    Promise.all(
      Array.from({ length: FLOOD }, (_, i) =>
        post('/webhook', githubPushHeaders(bad, 'wrong-secret', `flood-${i}`), bad),
      ),
    ),
    Promise.all(
      Array.from({ length: FLOOD_PUSHES }, () => {
        // repo-0's own: a hook URL refuses (400) a delivery naming another repository.
        const { body, headers } = nextDelivery(0);
        return post(hook, headers, body);
      }),
    ),
  ]);
  const elapsedMs = performance.now() - started;
  clearInterval(sampler);
  peak = Math.max(peak, rssMiB(target.pid));
  const count = (statuses: number[]) =>
    Object.entries(
      statuses.reduce<Record<number, number>>(
        (counts, status) => ({ ...counts, [status]: (counts[status] ?? 0) + 1 }),
        {},
      ),
    )
      .map(([status, n]) => `${n}× ${status}`)
      .join(', ');
  const line = rowPrinter(34);
  console.log(
    `flood: ${FLOOD} concurrent ${FLOOD_BODY_BYTES >> 20} MiB bad bodies on /webhook, ${FLOOD_PUSHES} pushes to a hook URL`,
  );
  line('webhook RSS growth', `${(peak - before).toFixed(1)} MiB (aim <= 64 MiB)`);
  line('bad bodies answered', count(flooded));
  line('hook pushes answered', `${count(pushed)} (aim: all 202), in ${elapsedMs.toFixed(0)} ms`);
}

runBench('bench/webhook', main);
