// The baseline: a Fastify handler doing only the unavoidable work of accepting a signed
// GitHub push (HMAC check, Redis SET NX of the delivery id, BullMQ add of the build job the
// builder needs, as the job contract has it). Run as its own process by main.ts, on the
// port it is given, with a /healthz for main.ts to wait on.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BUILD_JOB_NAME, BUILDS_QUEUE, buildJobOptions } from '@seed/contracts';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const SECRET = process.env.BENCH_SECRET ?? 'bench-secret';
const redis = new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', {
  maxRetriesPerRequest: 1,
  username: process.env.BENCH_REDIS_USERNAME,
  password: process.env.BENCH_REDIS_PASSWORD_FILE
    ? readFileSync(process.env.BENCH_REDIS_PASSWORD_FILE, 'utf8').trim()
    : undefined,
});
const queue = new Queue(BUILDS_QUEUE, { connection: redis });
const app = Fastify({ bodyLimit: 25 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

app.post('/webhook', async (request, reply) => {
  const body = request.body as Buffer;
  const given = Buffer.from(String(request.headers['x-hub-signature-256'] ?? '').slice(7), 'hex');
  const expected = createHmac('sha256', SECRET).update(body).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return reply.status(401).send({ error: 'bad signature' });
  const push = JSON.parse(body.toString('utf8')) as {
    after: string;
    ref: string;
    repository: { full_name: string };
  };
  const deliveryId = String(request.headers['x-github-delivery']);
  if ((await redis.set(`delivery:${deliveryId}`, '1', 'EX', 259_200, 'NX')) === null)
    return reply.status(200).send({ status: 'duplicate' });
  const flake = `github:${push.repository.full_name}`;
  const job = {
    flake,
    commit: push.after,
    ref: push.ref,
    forge: 'github',
    deliveryId,
    receivedAt: new Date().toISOString(),
  };
  await queue.add(BUILD_JOB_NAME, job, buildJobOptions(job));
  return reply.status(202).send({ status: 'queued' });
});

app.get('/healthz', () => ({ status: 'ok' }));

app.listen({ port: Number(process.env.BENCH_PORT), host: '127.0.0.1' }).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
process.on('SIGTERM', () => {
  void app
    .close()
    .then(() => queue.close())
    .then(() => process.exit(0));
});
