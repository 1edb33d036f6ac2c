// The baseline: a Fastify handler doing only the unavoidable work of accepting a signed
// GitHub push (HMAC check, Redis SET NX of the delivery id, BullMQ add). Run as its own
// process by main.ts; prints its URL as its one line of output.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const SECRET = process.env.BENCH_SECRET ?? 'bench-secret';
const redis = new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', {
  maxRetriesPerRequest: 1,
});
const queue = new Queue('builds', { connection: redis });
const app = Fastify({ bodyLimit: 25 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

app.post('/webhook', async (request, reply) => {
  const body = request.body as Buffer;
  const given = Buffer.from(String(request.headers['x-hub-signature-256'] ?? '').slice(7), 'hex');
  const expected = createHmac('sha256', SECRET).update(body).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return reply.status(401).send({ error: 'bad signature' });
  const push = JSON.parse(body.toString('utf8')) as { after: string; ref: string };
  const delivery = String(request.headers['x-github-delivery']);
  if ((await redis.set(`delivery:${delivery}`, '1', 'EX', 259_200, 'NX')) === null)
    return reply.status(200).send({ status: 'duplicate' });
  await queue.add('build', { commit: push.after, ref: push.ref }, { jobId: `build-${push.after}` });
  return reply.status(202).send({ status: 'queued' });
});

app.listen({ port: 0, host: '127.0.0.1' }).then(
  (url) => console.log(JSON.stringify({ msg: 'listening', url })),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
process.on('SIGTERM', () => {
  void app
    .close()
    .then(() => queue.close())
    .then(() => process.exit(0));
});
