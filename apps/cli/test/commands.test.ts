// The everyday commands with nothing to talk to: each says which service it cannot reach,
// and bad input gets a message. And `seed up`, which runs the dev stack's own program.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPlatformCertificates, freeLoopbackPort } from '@seed/testing';
import { seed } from './seed-cli';

describe('the everyday commands without a stack', () => {
  it('say which service they cannot reach, and exit 1', async () => {
    const port = await freeLoopbackPort();
    // The operator's credentials, so each command gets as far as its connection.
    const credentials = mkdtempSync(path.join(tmpdir(), 'seed-cli-credentials-'));
    const certificates = await createPlatformCertificates(credentials);
    writeFileSync(path.join(credentials, 'api.token'), 'a'.repeat(32));
    const env = {
      SEED_TLS_DIR: certificates.operator,
      SEED_BUILDER_API_TOKEN_FILE: path.join(credentials, 'api.token'),
      SEED_RECONCILER_ADDRESS: `127.0.0.1:${port}`,
      SEED_BUILDER_URL: `http://127.0.0.1:${port}`,
      SEED_SHOOT_URL: `http://127.0.0.1:${port}`,
    };
    const status = await seed(['status'], { env });
    expect(status.code).toBe(1);
    expect(status.err).toMatch(
      new RegExp(
        `^seed: cannot reach the reconciler at 127\\.0\\.0\\.1:${port}: .*set SEED_RECONCILER_ADDRESS\\)\\n$`,
      ),
    );
    const builds = await seed(['builds'], { env });
    expect(builds.code).toBe(1);
    expect(builds.err).toMatch(
      /^seed: cannot reach the builder at .*ECONNREFUSED.*SEED_BUILDER_URL\)\n$/,
    );
    const shoot = await seed(['shoot', '--', 'true'], { env });
    expect(shoot.code).toBe(1);
    expect(shoot.err).toMatch(/^seed: cannot reach the shoot pool at .*SEED_SHOOT_URL\)\n$/);
    rmSync(credentials, { recursive: true, force: true });
  });

  it('refuses bad input with a message', async () => {
    const badUrl = await seed(['builds'], { env: { SEED_BUILDER_URL: 'ftp://builder' } });
    expect(badUrl).toMatchObject({ code: 1 });
    expect(badUrl.err).toContain('SEED_BUILDER_URL must be an http:// or https:// URL');
    const noCommand = await seed(['shoot'], { env: {} });
    expect(noCommand.code).toBe(1);
    expect(noCommand.err).toContain("missing required argument 'command'");
    const badEnv = await seed(['shoot', '--env', 'novalue', '--', 'true'], { env: {} });
    expect(badEnv.code).toBe(1);
    expect(badEnv.err).toContain('expected NAME=value');
    const badLimit = await seed(['builds', '--limit', '0'], { env: {} });
    expect(badLimit.code).toBe(1);
    expect(badLimit.err).toContain('expected a positive integer');
    const bigLimit = await seed(['builds', '--limit', '500'], { env: {} });
    expect(bigLimit.code).toBe(1);
    expect(bigLimit.err).toContain('expected at most 200');
  });
});

describe('seed up', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'seed-up-stand-in-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs the dev stack's seed-up from PATH with the arguments, and exits with its code", async () => {
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    // A stand-in that records what it was given.
    writeFileSync(
      path.join(bin, 'seed-up'),
      `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args"\nexit 7\n`,
      { mode: 0o755 },
    );
    const run = await seed(['up', '--keep', '--wait-timeout', '5'], {
      env: { PATH: `${bin}:${process.env.PATH}` },
    });
    expect(run.code).toBe(7);
    expect(readFileSync(path.join(dir, 'args'), 'utf8')).toBe('--keep\n--wait-timeout\n5\n');
  });

  it('says how to get the dev stack when seed-up is not on PATH', async () => {
    const run = await seed(['up'], { env: { PATH: path.join(dir, 'nowhere') } });
    expect(run.code).toBe(1);
    expect(run.err).toBe(
      "seed: seed up runs Seed's dev stack (seed-up), which is not on PATH: from a checkout of Seed, run `pnpm seed up`\n",
    );
  });

  it('is not a dependency: the CLI depends on no app', () => {
    const apps = readdirSync(path.resolve(__dirname, '../..')).map(
      (app) =>
        (
          JSON.parse(
            readFileSync(path.resolve(__dirname, '../..', app, 'package.json'), 'utf8'),
          ) as { name: string }
        ).name,
    );
    const own = JSON.parse(readFileSync(path.resolve(__dirname, '../package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    const dependencies = Object.keys({ ...own.dependencies, ...own.devDependencies });
    expect(dependencies.filter((name) => apps.includes(name))).toEqual([]);
  });
});

describe('seed shoot in an instance', () => {
  it("sends the instance's token from SEED_SHOOT_TOKEN_FILE", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'seed-shoot-token-'));
    const seenAuthorization: (string | undefined)[] = [];
    const pool = http.createServer((request, response) => {
      seenAuthorization.push(request.headers.authorization);
      request.resume();
      request.on('end', () => {
        response.setHeader('content-type', 'application/json');
        response.end(
          JSON.stringify({
            exitCode: 0,
            stdout: 'ok\n',
            stderr: '',
            durationMs: 1,
            timedOut: false,
            stdoutTruncated: false,
            stderrTruncated: false,
          }),
        );
      });
    });
    await new Promise<void>((resolve) => pool.listen(0, '127.0.0.1', resolve));
    try {
      const tokenFile = path.join(dir, 'token');
      writeFileSync(tokenFile, 'the-pods-token\n');
      const env = {
        SEED_SHOOT_URL: `http://127.0.0.1:${(pool.address() as AddressInfo).port}`,
        SEED_SHOOT_TOKEN_FILE: tokenFile,
      };
      const run = await seed(['shoot', '--', 'true'], { env });
      expect(run).toEqual({ code: 0, out: 'ok\n', err: '' });
      expect(seenAuthorization).toEqual(['Bearer the-pods-token']);
      const missing = await seed(['shoot', '--', 'true'], {
        env: { ...env, SEED_SHOOT_TOKEN_FILE: path.join(dir, 'none') },
      });
      expect(missing.code).toBe(1);
      expect(missing.err).toContain('SEED_SHOOT_TOKEN_FILE: cannot read');
    } finally {
      pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
