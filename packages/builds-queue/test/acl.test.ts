// The builds queue's Redis users against a real redis-server run as Seed runs it: the
// default user off, each service held to its keys and commands.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startRedis, type LocalRedis } from '@seed/local-parts';
import { Redis } from 'ioredis';
import { BuildsQueueConsumer, BuildsQueueProducer, REDIS_USERS, redisAclUsers } from '../src';
import { redisAclRules } from '../src/acl';
import { buildRecordKey } from '../src/keys';

let redis: LocalRedis;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis(redisAclUsers());
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redis?.dispose();
});

/**
 * A plain client signed in as `username` (or as nobody: no ready check, which would need
 * INFO), rejecting with Redis's answer to AUTH instead of retrying.
 */
async function signIn(username?: string, password?: string): Promise<Redis> {
  const client = new Redis(redis.port, '127.0.0.1', {
    username,
    password,
    lazyConnect: true,
    enableReadyCheck: username !== undefined,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  clients.push(client);
  await new Promise((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
    client.connect().catch(() => undefined);
  });
  client.on('error', () => undefined);
  return client;
}

function as(service: keyof typeof REDIS_USERS): Promise<Redis> {
  const { username, password } = redis.user(REDIS_USERS[service]);
  return signIn(username, password);
}

describe('Redis ACL users of the builds queue', () => {
  it('attack: a client without a password gets nothing', async () => {
    const anonymous = await signIn();
    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    await expect(anonymous.flushall()).rejects.toThrow(/NOAUTH/);
  });

  it('attack: a wrong password is refused', async () => {
    await expect(signIn(REDIS_USERS.webhook, 'not-the-password')).rejects.toThrow(/WRONGPASS/);
    await expect(signIn('default', 'anything')).rejects.toThrow(/WRONGPASS/);
  });

  it("attack: the webhook's user cannot read build records", async () => {
    const admin = await signIn(redis.admin.username, redis.admin.password);
    await admin.set(buildRecordKey('build-victim'), '{"log":["secret"]}');
    const webhook = await as('webhook');
    await expect(webhook.get(buildRecordKey('build-victim'))).rejects.toThrow(/NOPERM/);
    // Nor through a script, nor by listing keys.
    await expect(
      webhook.eval("return redis.call('GET', KEYS[1])", 1, buildRecordKey('build-victim')),
    ).rejects.toThrow(/NOPERM|No permissions/);
    await expect(webhook.keys('*')).rejects.toThrow(/NOPERM/);
    await expect(webhook.scan(0)).rejects.toThrow(/NOPERM/);
  });

  it("attack: the webhook's user cannot FLUSHALL", async () => {
    const webhook = await as('webhook');
    await expect(webhook.flushall()).rejects.toThrow(/NOPERM/);
    await expect(webhook.flushdb()).rejects.toThrow(/NOPERM/);
  });

  it("attack: the builder's user cannot FLUSHALL, CONFIG or DEBUG", async () => {
    const builder = await as('builder');
    await expect(builder.flushall()).rejects.toThrow(/NOPERM/);
    await expect(builder.config('SET', 'appendonly', 'no')).rejects.toThrow(/NOPERM/);
    await expect(builder.call('ACL', 'WHOAMI')).rejects.toThrow(/NOPERM/);
    // Redis refuses DEBUG to everyone by default (enable-debug-command); ACL refuses it too.
    const admin = await signIn(redis.admin.username, redis.admin.password);
    expect(await admin.call('ACL', 'DRYRUN', REDIS_USERS.builder, 'DEBUG', 'SLEEP', '0')).toMatch(
      /no permissions to run the 'debug' command/,
    );
    // It reads the latest build the webhook recorded but cannot forge one.
    await expect(builder.set('seed:builds:latest:0123456789abcdef', 'x')).rejects.toThrow(/NOPERM/);
  });

  it("gives each service's user every command BullMQ's scripts call", async () => {
    const bullmq = path.dirname(require.resolve('bullmq/package.json'));
    const commandsDir = path.join(bullmq, 'dist/cjs/commands');
    const lua = [commandsDir, path.join(commandsDir, 'includes')]
      .flatMap((dir) =>
        readdirSync(dir)
          .filter((name) => name.endsWith('.lua'))
          .map((name) => readFileSync(path.join(dir, name), 'utf8')),
      )
      .join('\n');
    // Every quoted word that is a Redis command: scripts also pick some by variable
    // (`pushCmd = lifo and 'RPUSH' or 'LPUSH'`), so not only the arguments of rcall.
    const admin = await signIn(redis.admin.username, redis.admin.password);
    const commands = new Set((await admin.call('COMMAND', 'LIST')) as string[]);
    const called = new Set(
      [...lua.matchAll(/["']([A-Z]+)["']/g)]
        .map((match) => match[1]!.toLowerCase())
        .filter((word) => commands.has(word)),
    );
    for (const service of ['webhook', 'builder'] as const) {
      const allowed = redisAclRules(service);
      expect([...called].filter((name) => !allowed.includes(`+${name}`))).toEqual([]);
    }
  });

  it('keeps queued builds across a Redis restart', async () => {
    // Redis 7.0 replays the MULTI/EXEC of each script's writes checking `default`'s rights:
    // with `default` off and `-@all`, this build was silently gone after the restart.
    const producer = new BuildsQueueProducer({
      redis: { url: redis.url, ...redis.user(REDIS_USERS.webhook) },
      commandTimeoutMs: 2_000,
      dedupeTtlSeconds: 60,
      onConnectionError: () => undefined,
    });
    const consumer = new BuildsQueueConsumer(
      { url: redis.url, ...redis.user(REDIS_USERS.builder) },
      () => undefined,
    );
    try {
      expect(await producer.connected(5_000)).toBe(true);
      const build = {
        flake: 'github:acme/restart',
        commit: 'e'.repeat(40),
        ref: 'refs/heads/main',
        forge: 'github' as const,
        deliveryId: 'restart-1',
        receivedAt: new Date().toISOString(),
      };
      const queued = await producer.queue(build.forge, build.deliveryId, [build]);
      const jobId = queued.duplicate ? queued.jobIds[0]! : queued.builds[0]!.jobId;
      await redis.stop();
      await redis.start();
      expect(await consumer.get(jobId)).toMatchObject({ id: jobId, state: 'queued' });
      expect(await consumer.latest(build.flake)).toBe(jobId);
    } finally {
      await producer.close();
      await consumer.close();
    }
  });

  it('uses a rotated password from the next connection on, without a restart', async () => {
    const webhook = redis.user(REDIS_USERS.webhook);
    const producer = new BuildsQueueProducer({
      redis: { url: redis.url, ...webhook },
      commandTimeoutMs: 2_000,
      dedupeTtlSeconds: 60,
      onConnectionError: () => undefined,
    });
    try {
      expect(await producer.connected(5_000)).toBe(true);
      const admin = await signIn(redis.admin.username, redis.admin.password);
      const rotated = 'rotated-password-0123456789abcdef';
      writeFileSync(webhook.passwordFile, `${rotated}\n`);
      await admin.call('ACL', 'SETUSER', webhook.username, 'resetpass', `>${rotated}`);
      await admin.call('CLIENT', 'KILL', 'USER', webhook.username);
      await expect(signIn(webhook.username, webhook.password)).rejects.toThrow(/WRONGPASS/);
      expect(await producer.connected(5_000)).toBe(true);
      expect(await producer.ping()).toBe(true);
    } finally {
      await producer.close();
    }
  });

  it('refuses to start a connection without its password file', () => {
    expect(
      () =>
        new BuildsQueueConsumer(
          { url: redis.url, username: REDIS_USERS.builder, passwordFile: '/nonexistent/password' },
          () => undefined,
        ),
    ).toThrow(/nonexistent/);
  });
});
