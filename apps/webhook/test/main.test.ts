import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_USERS } from '@seed/builds-queue';
import { startRedis, startServiceProcess, type LocalRedis } from '@seed/testing';

const MAIN = path.resolve(__dirname, '../dist/main.js');
const FLAKES = 'flakes: [{ flake: "github:acme/app", repository: "acme/app", secret: "s" }]';

describe('the webhook process', () => {
  let redis: LocalRedis;

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis.dispose();
  });

  it('logs JSON, serves, and drains on SIGTERM with exit code 0', async () => {
    const service = startServiceProcess(MAIN, {
      SEED_FLAKES: FLAKES,
      SEED_POLL_INTERVAL_SECONDS: '0', // its flake's remote is off this machine
      ...redis.serviceEnv(REDIS_USERS.webhook),
      SEED_WEBHOOK_PORT: '0',
    });
    try {
      const listening = await service.waitForLog((line) => line.msg === 'webhook listening');
      expect(listening).toMatchObject({ service: 'webhook', flakes: 1 });
      const url = String(listening.url);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      service.kill('SIGTERM');
      expect(await service.exited).toEqual({ code: 0, signal: null });
      expect(service.logs.map((line) => line.msg)).toEqual(
        expect.arrayContaining(['shutting down', 'stopped']),
      );
    } finally {
      service.kill('SIGKILL');
    }
  });

  it('refuses to start on bad configuration, naming every problem', async () => {
    const service = startServiceProcess(MAIN, {
      SEED_FLAKES: 'flakes: [{ flake: "nixpkgs", repository: "acme/app" }]',
      SEED_WEBHOOK_PORT: '99999',
    });
    expect((await service.exited).code).toBe(1);
    expect(service.stderr()).toContain('SEED_WEBHOOK_PORT="99999"');
    const registry = startServiceProcess(MAIN, {
      SEED_FLAKES: 'flakes: [{ flake: "nixpkgs", repository: "acme/app" }]',
      ...redis.serviceEnv(REDIS_USERS.webhook),
    });
    expect((await registry.exited).code).toBe(1);
    expect(registry.stderr()).toContain('SEED_FLAKES: flakes[0] (nixpkgs).flake:');
    expect(registry.stderr()).toContain('give exactly one of secret, secretFile or secretEnv');
  });
});
