// Attacks on the webhook by a sender who knows no flake's secret (docs/security.md lists
// each with the answer it got before the webhook verified first). The real process,
// against a real Redis.
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_USERS } from '@seed/builds-queue';
import { flakeHookId } from '@seed/contracts';
import {
  githubPushHeaders,
  startRedis,
  startServiceProcess,
  type LocalRedis,
  type ServiceProcess,
} from '@seed/testing';
import { githubPush } from './forge-payloads';

const MAIN = path.resolve(__dirname, '../dist/main.js');
const FLAKE = 'github:Codertocat/Hello-World';
const SECRET = 'hello-secret';
const FLAKES = `flakes: [{ flake: "${FLAKE}", repository: "Codertocat/Hello-World", secret: "${SECRET}" }]`;

/** `[{},{},…]` of `bytes` bytes: the most objects per byte for JSON.parse to allocate. */
function emptyObjects(bytes: number): Buffer {
  const count = Math.floor((bytes - 2) / 3);
  return Buffer.from(`[${'{},'.repeat(count - 1)}{}]`);
}

/** Signed with a secret no flake has. */
function forged(body: Buffer, id: string): Record<string, string> {
  return githubPushHeaders(body.toString('utf8'), 'not-the-secret', id);
}

describe('attacks on the webhook', () => {
  let redis: LocalRedis;
  let webhook: ServiceProcess;
  let url = '';
  let sequence = 0;

  // Through node:http: the webhook answers 413 before a too-large body has all arrived and
  // closes the connection, which fetch reports as a failure instead of the answer.
  const post = (route: string, headers: Record<string, string>, body: Buffer | string) =>
    new Promise<{ status: number; body: { error?: string } }>((resolve, reject) => {
      const request = http.request(`${url}${route}`, { method: 'POST', headers }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: JSON.parse(text) as { error?: string },
          }),
        );
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
      });
      request.end(body);
    });

  beforeAll(async () => {
    redis = await startRedis();
    webhook = startServiceProcess(MAIN, {
      SEED_FLAKES: FLAKES,
      SEED_POLL_INTERVAL_SECONDS: '0', // its flakes' remotes are off this machine
      ...redis.serviceEnv(REDIS_USERS.webhook),
      SEED_WEBHOOK_PORT: '0',
    });
    url = String((await webhook.waitForLog((line) => line.msg === 'webhook listening')).url);
  });

  afterAll(async () => {
    await webhook?.stop(5_000);
    await redis?.dispose();
  }, 30_000);

  it('attack: a 25 MiB body with a wrong signature is refused before it is parsed', async () => {
    // Only the headers go out: the answer must come from the declared length alone. (Sending
    // the body races the server's close: a reset can discard the 413 before it is read.)
    const body = emptyObjects(25 << 20);
    const sent = await new Promise<{ status: number; body: { error?: string } }>(
      (resolve, reject) => {
        const request = http.request(
          `${url}/webhook`,
          {
            method: 'POST',
            headers: { ...forged(body, 'big'), 'content-length': String(body.length) },
          },
          (response) => {
            let text = '';
            response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
            response.on('end', () => {
              request.destroy();
              resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as object });
            });
          },
        );
        request.on('error', reject);
        request.flushHeaders();
      },
    );
    expect(sent).toEqual({ status: 413, body: { error: 'Request body is too large' } });
  }, 60_000);

  it('attack: probing which repositories are registered gets the answer of a wrong signature', async () => {
    const probe = (repository: string) => {
      const payload = githubPush('a'.repeat(40));
      const body = JSON.stringify({ ...payload, repository: { full_name: repository } });
      return post('/webhook', forged(Buffer.from(body), `probe-${(sequence += 1)}`), body);
    };
    const registered = await probe('Codertocat/Hello-World');
    const unregistered = await probe('nobody/nothing');
    expect(registered.status).toBe(401);
    expect(unregistered).toEqual(registered);
  });

  it("attack: a flood of maximal bad bodies does not keep a flake's push out", async () => {
    const bad = emptyObjects(1 << 20);
    const flood = Array.from({ length: 50 }, (_, index) =>
      post('/webhook', forged(bad, `flood-${index}`), bad),
    );
    const hook = `/hooks/${flakeHookId(FLAKE, SECRET)}`;
    const pushes = Array.from({ length: 5 }, (_, index) => {
      const body = JSON.stringify(githubPush(String(index + 1).padStart(40, 'b')));
      return post(hook, githubPushHeaders(body, SECRET, `push-${index}`), body);
    });
    const [flooded, pushed] = await Promise.all([Promise.all(flood), Promise.all(pushes)]);
    // Parsed and found wanting (400: not a push payload), or refused unread by the cap
    // (how many depends on how the bodies interleave; bench/webhook prints the memory).
    for (const answer of flooded) expect([400, 503]).toContain(answer.status);
    expect(pushed.map((answer) => answer.status)).toEqual([202, 202, 202, 202, 202]);
  }, 120_000);
});
