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

  /**
   * Sends only the headers of a request declaring `length` bytes of body: an answer can come
   * only from a check made before the body is read.
   */
  const headersOnly = (route: string, headers: Record<string, string>, length: number) => {
    let request: http.ClientRequest | undefined;
    const answer = new Promise<{ status: number; retryAfter?: string; body: { error?: string } }>(
      (resolve, reject) => {
        request = http.request(
          `${url}${route}`,
          { method: 'POST', headers: { ...headers, 'content-length': String(length) } },
          (response) => {
            let text = '';
            response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
            response.on('end', () =>
              resolve({
                status: response.statusCode ?? 0,
                ...(response.headers['retry-after'] === undefined
                  ? {}
                  : { retryAfter: response.headers['retry-after'] }),
                body: JSON.parse(text) as { error?: string },
              }),
            );
          },
        );
        request.on('error', (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
        });
        request.flushHeaders();
      },
    );
    return { answer, abort: () => request?.destroy() };
  };

  it('attack: an unknown hook id is refused (404) before its body is read', async () => {
    const sent = headersOnly(
      '/hooks/0123456789abcdef0123456789abcdef',
      forged(Buffer.from('{}'), 'unknown-hook'),
      1000,
    );
    try {
      expect(await sent.answer).toEqual({
        status: 404,
        body: { error: 'no flake has this hook id' },
      });
    } finally {
      sent.abort();
    }
  });

  it('attack: unsigned bodies declaring the cap of unverified bytes keep others out unread (503), until they end', async () => {
    // Four bodies of the body limit (1 MiB) fill the 4 MiB of unverified bytes; their bodies
    // never come, so only the hook before the body can have counted them.
    const holders = Array.from({ length: 4 }, (_, index) =>
      headersOnly('/webhook', forged(Buffer.from('{}'), `holder-${index}`), 1 << 20),
    );
    const small = Buffer.from(JSON.stringify(githubPush('c'.repeat(40))));
    const probe = () => post('/webhook', forged(small, `probe-${(sequence += 1)}`), small);
    const until = async (
      status: number,
      send: () => Promise<{ status: number; body: { error?: string } }>,
    ) => {
      for (let attempt = 0; ; attempt += 1) {
        const answer = await send();
        if (answer.status === status || attempt === 100) return answer;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    try {
      // The holders' headers reach the webhook in their own time: probe until they have.
      expect(await until(503, probe)).toEqual({
        status: 503,
        body: {
          error: "too many deliveries are being verified; retry, or use the flake's own hook URL",
        },
      });
      const refused = headersOnly('/webhook', forged(small, 'refused'), small.length);
      expect(await refused.answer).toEqual(
        expect.objectContaining({ status: 503, retryAfter: '5' }),
      );
      refused.abort();
      // The flake's own URL has no such cap.
      const body = JSON.stringify(githubPush('d'.repeat(40)));
      expect(
        (
          await post(
            `/hooks/${flakeHookId(FLAKE, SECRET)}`,
            githubPushHeaders(body, SECRET, 'beside-holders'),
            body,
          )
        ).status,
      ).toBe(202);
    } finally {
      for (const holder of holders) holder.abort();
    }
    // Closed connections give their bytes back: a bad signature is read and refused again.
    expect((await until(401, probe)).status).toBe(401);
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
