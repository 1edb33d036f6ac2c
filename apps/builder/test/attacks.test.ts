// Attacks on the builder's HTTP API, against the real process: build records name flakes
// and carry logs (docs/security.md, "Internal APIs").
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_USERS } from '@seed/builds-queue';
import {
  startRedis,
  startServiceProcess,
  type LocalRedis,
  type ServiceProcess,
} from '@seed/testing';
import { builderCredentials } from './harness';

const MAIN = path.resolve(__dirname, '../dist/main.js');
const FIRST = 'first-token-'.padEnd(32, '1');
const SECOND = 'second-token-'.padEnd(32, '2');

describe("attacks on the builder's API", () => {
  let redis: LocalRedis;
  let work: string;
  let tokenFile: string;
  let builder: ServiceProcess;
  let url: string;

  const get = (route: string, token?: string) =>
    fetch(`${url}${route}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  beforeAll(async () => {
    redis = await startRedis();
    work = await mkdtemp(path.join(tmpdir(), 'seed-builder-attacks-'));
    tokenFile = path.join(work, 'api.token');
    await writeFile(tokenFile, `${FIRST}\n`);
    builder = startServiceProcess(MAIN, {
      ...redis.serviceEnv(REDIS_USERS.builder),
      SEED_TLS_DIR: (await builderCredentials()).certificates.builder,
      SEED_BUILDER_API_TOKEN_FILE: tokenFile,
      SEED_BUILDER_PORT: '0',
      SEED_BUILDER_CONCURRENCY: '1',
    });
    const listening = await builder.waitForLog((line) => line.msg === 'builder listening');
    url = String(listening.url).replace('[::1]', '127.0.0.1');
  });

  afterAll(async () => {
    builder?.kill('SIGKILL');
    await redis?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it('attack: the builder HTTP API without credentials gets 401', async () => {
    // Before: 200 {"builds":[…]}, every flake's builds and logs to anyone.
    for (const route of ['/builds', '/builds?limit=200', '/builds/any-id']) {
      const response = await get(route);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({
        error: 'this API needs Authorization: Bearer <token>',
      });
    }
    expect((await get('/builds', 'guessed')).status).toBe(401);
    expect((await get('/builds', FIRST)).status).toBe(200);
    // Probes and metrics stay open: the kubelet and Prometheus carry no token.
    for (const route of ['/healthz', '/metrics']) expect((await get(route)).status).toBe(200);
  });

  it('attack: an API token rotated on disk replaces the old one without restart', async () => {
    await writeFile(tokenFile, `${SECOND}\n`);
    expect((await get('/builds', SECOND)).status).toBe(200);
    expect((await get('/builds', FIRST)).status).toBe(401);
  });
});
