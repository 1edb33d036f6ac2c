import 'reflect-metadata';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Registry } from 'prom-client';
import { z } from 'zod';
import {
  ConfigError,
  JsonErrorFilter,
  ProbesModule,
  TokenFile,
  redisEnv,
  bearerToken,
  createLogger,
  envVar,
  parseEnv,
  startGrpcServer,
} from '../src';

describe('parseEnv', () => {
  const schema = z.object({
    SEED_PORT: envVar.port(8080),
    SEED_DEBUG: envVar.flag(false),
    SEED_SECRET: z.string().min(1),
  });

  it('applies defaults and reads flags strictly', () => {
    expect(parseEnv(schema, { SEED_SECRET: 's', SEED_DEBUG: '1' })).toEqual({
      SEED_PORT: 8080,
      SEED_DEBUG: true,
      SEED_SECRET: 's',
    });
  });

  it('reports every bad variable at once, with its value', () => {
    try {
      parseEnv(schema, { SEED_PORT: '70000', SEED_DEBUG: 'yes' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        expect.stringMatching(/^SEED_PORT="70000": /),
        'SEED_DEBUG="yes": expected true, false, 1 or 0',
        expect.stringMatching(/^SEED_SECRET: /),
      ]);
    }
  });

  it('attack: a Redis URL carrying a password is refused at start without repeating it', () => {
    let problems: string[] = [];
    try {
      parseEnv(z.object(redisEnv('seed-webhook')), {
        SEED_REDIS_URL: 'redis://seed-webhook:hunter2-password@redis:6379',
        SEED_REDIS_PASSWORD_FILE: '/nonexistent',
      });
    } catch (error) {
      problems = (error as ConfigError).problems;
    }
    expect(problems[0]).toBe(
      'SEED_REDIS_URL="redis://***:***@redis:6379": credentials do not belong in the URL: give the user in SEED_REDIS_USERNAME and its password in SEED_REDIS_PASSWORD_FILE',
    );
    expect(problems.join('\n')).not.toContain('hunter2');
  });
});

@Controller()
class FailingController {
  @Get('boom')
  boom(): never {
    throw new Error('secret internals');
  }
}

async function probesApp(ready: () => Promise<true | string>): Promise<NestFastifyApplication> {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'test' });
  @Module({
    imports: [
      ProbesModule.register({ registry, readiness: { store: ready }, readinessTimeoutMs: 200 }),
    ],
    controllers: [FailingController],
  })
  class TestModule {}
  const app = await NestFactory.create<NestFastifyApplication>(TestModule, new FastifyAdapter(), {
    logger: false,
  });
  app.useGlobalFilters(new JsonErrorFilter(createLogger('test', 'silent')));
  await app.listen(0, '127.0.0.1');
  return app;
}

describe('probes and errors', () => {
  it('answers healthz, readyz and metrics, and names what is not ready', async () => {
    let answer: true | string = true;
    const app = await probesApp(() => Promise.resolve(answer));
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    try {
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
      expect(await (await fetch(`${url}/readyz`)).json()).toEqual({
        status: 'ready',
        checks: { store: 'ok' },
      });
      answer = 'connection refused';
      const notReady = await fetch(`${url}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({
        error: 'store: connection refused',
        checks: { store: 'connection refused' },
      });
      const metrics = await fetch(`${url}/metrics`);
      expect(metrics.headers.get('content-type')).toContain('text/plain');
      expect(await (await fetch(`${url}/boom`)).json()).toEqual({ error: 'internal error' });
      expect(await (await fetch(`${url}/missing`)).json()).toEqual({
        error: 'Cannot GET /missing',
      });
    } finally {
      await app.close();
    }
  });

  it('counts a hung readiness check as failed', async () => {
    const app = await probesApp(() => new Promise(() => undefined));
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    try {
      const response = await fetch(`${url}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ error: 'store: no answer within 200 ms' });
    } finally {
      await app.close();
    }
  });
});

describe('TokenFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'service-kit-token-'));
  const file = path.join(dir, 'token');

  it('takes a rotated token at once, and refuses short or empty ones at start', () => {
    writeFileSync(file, `${'a'.repeat(32)}\n`);
    const token = new TokenFile(file);
    expect(token.matches('a'.repeat(32))).toBe(true);
    // As Kubernetes updates a Secret: a new file in place of the old one.
    writeFileSync(`${file}.new`, 'b'.repeat(40));
    renameSync(`${file}.new`, file);
    expect(token.matches('b'.repeat(40))).toBe(true);
    expect(token.matches('a'.repeat(32))).toBe(false);
    writeFileSync(file, 'REPLACE-ME');
    expect(() => new TokenFile(file)).toThrow('holds 10 characters, fewer than 32');
    writeFileSync(file, '\n');
    expect(() => new TokenFile(file)).toThrow('is empty');
  });

  it('reads only Bearer headers', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe('startGrpcServer with mutual TLS', () => {
  it('refuses to serve a method nobody is allowed to call', async () => {
    const definition = {
      Call: {
        path: '/test.v1.Service/Call',
        requestStream: false,
        responseStream: false,
        requestSerialize: (value: Buffer) => value,
        requestDeserialize: (value: Buffer) => value,
        responseSerialize: (value: Buffer) => value,
        responseDeserialize: (value: Buffer) => value,
      },
    };
    await expect(
      startGrpcServer(
        '127.0.0.1',
        0,
        [{ name: 'test.v1.Service', definition, handlers: {}, callers: {} }],
        {
          kind: 'mtls',
          tls: { certFile: '', keyFile: '', caFile: '', identity: 'test' },
          reloadMs: 1_000,
        },
      ),
    ).rejects.toThrow('test.v1.Service/Call has no callers: say who may call it');
  });
});
