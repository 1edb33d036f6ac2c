// Commit statuses back to the forge (issue 19, item 6). Loopback HTTP servers stand in for
// GitHub, Gitea, Forgejo and GitLab (those hosts are out of reach here); every request the
// builder sends is checked against the forge's API description (forge-specs.ts).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BuildJob, Forge } from '@seed/contracts';
import { createLogger } from '@seed/service-kit';
import type { FlakeRepo } from '@seed/testing';
import { ForgeStatuses, type StatusResult } from '../src/forge-statuses';
import { startBuilderStack, type BuilderStack } from './builder-stack';
import { commitStatusProblems, githubSpecVersion, type SentRequest } from './forge-specs';
import { finished, flake, type Pushes } from './harness';

type Answer = number | 'hang';

/** A forge's API on loopback: records every request; `answer` decides each reply. */
class LoopbackForge {
  readonly requests: SentRequest[] = [];
  private readonly held: ServerResponse[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    public answer: (index: number) => Answer,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(answer: (index: number) => Answer = () => 201): Promise<LoopbackForge> {
    const server = createServer();
    const forge = new LoopbackForge(server, answer);
    server.on('request', (request: IncomingMessage, response: ServerResponse) =>
      forge.handle(request, response),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return forge;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Answers the requests held so far. */
  release(status: number): void {
    for (const response of this.held.splice(0)) response.writeHead(status).end('{}');
  }

  async until(count: number): Promise<void> {
    for (const deadline = Date.now() + 60_000; this.requests.length < count;) {
      if (Date.now() > deadline)
        throw new Error(`the forge got ${this.requests.length} of ${count} requests`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const index = this.requests.length;
      this.requests.push({
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
      });
      const answer = this.answer(index);
      if (answer === 'hang') this.held.push(response);
      else response.writeHead(answer, { 'content-type': 'application/json' }).end('{}');
    });
  }
}

const TOKEN = 'forge-token-0123456789abcdef';
const COMMIT = 'c0ffee'.padEnd(40, '0');
let scratch: string;
let tokenFile: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'seed-forge-'));
  tokenFile = path.join(scratch, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** A build of `forge`'s repository whose statuses go to the loopback `api`. */
function job(api: LoopbackForge, forge: Forge, commit = COMMIT): BuildJob {
  return {
    flake: 'github:acme/app',
    commit,
    ref: 'refs/heads/main',
    forge,
    deliveryId: 'd-1',
    receivedAt: new Date().toISOString(),
    forgeStatus: { api: api.url, repository: 'acme/app', tokenFile },
  };
}

/** ForgeStatuses sending to `forge`, its log lines and its counts. */
function statuses(forge: LoopbackForge, options: { attempts?: number; timeoutMs?: number } = {}) {
  const lines: string[] = [];
  const counts: string[] = [];
  const logger = createLogger(
    'builder',
    'info',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    }),
  );
  const sender = new ForgeStatuses(
    {
      buildsUrl: 'http://builder.test/builds',
      attempts: options.attempts ?? 3,
      backoffMs: 10,
      timeoutMs: options.timeoutMs ?? 10_000,
      capacity: 100,
    },
    (forgeName: Forge, result: StatusResult) => counts.push(`${forgeName}:${result}`),
    logger,
  );
  return { sender, lines, counts };
}

const FORGE_API = { github: 'github', gitea: 'gitea', forgejo: 'gitea', gitlab: 'gitlab' } as const;

describe(`commit statuses, checked against each forge's API (GitHub's document ${githubSpecVersion()})`, () => {
  it.each(['github', 'gitea', 'forgejo', 'gitlab'] as const)(
    'sends every event to %s, in order, as its API takes it',
    async (forgeName) => {
      const forge = await LoopbackForge.start();
      const { sender, counts } = statuses(forge);
      const build = job(forge, forgeName);
      sender.report(build, 'build-1', 'queued', 'queued: a builder took the build');
      sender.report(build, 'build-1', 'building', 'building');
      sender.report(build, 'build-1', 'succeeded', 'generation 0123456789ab applied');
      const other = job(forge, forgeName, 'beef'.padEnd(40, '1'));
      sender.report(other, 'build-2', 'failed', 'failed (nix)');
      sender.report(other, 'build-3', 'superseded', 'superseded by a newer push');
      await forge.until(5);
      await sender.close();
      await forge.stop();

      for (const request of forge.requests)
        expect(commitStatusProblems(FORGE_API[forgeName], request)).toEqual([]);
      const states = forge.requests.map((request) => (request.body as { state: string }).state);
      expect(states).toEqual(
        {
          github: ['pending', 'pending', 'success', 'failure', 'error'],
          gitea: ['pending', 'pending', 'success', 'failure', 'warning'],
          forgejo: ['pending', 'pending', 'success', 'failure', 'warning'],
          gitlab: ['pending', 'running', 'success', 'failed', 'canceled'],
        }[forgeName],
      );
      expect(forge.requests[0]!.path).toContain(
        forgeName === 'gitlab' ? '/projects/acme%2Fapp/statuses/' : '/repos/acme/app/statuses/',
      );
      expect(forge.requests[0]!.path.endsWith(COMMIT)).toBe(true);
      expect(forge.requests[2]!.body).toMatchObject({
        target_url: 'http://builder.test/builds/build-1',
        description: 'generation 0123456789ab applied',
      });
      const auth = forge.requests[0]!.headers;
      expect(auth.authorization ?? auth['private-token']).toContain(TOKEN);
      expect(counts).toEqual(Array(5).fill(`${forgeName}:sent`));
    },
  );

  it('the checks refuse what a forge would not take', () => {
    const sent = (body: unknown, headers: Record<string, string> = {}) => ({
      method: 'POST',
      path: `/repos/acme/app/statuses/${COMMIT}`,
      headers: { 'content-type': 'application/json', authorization: 'Bearer t', ...headers },
      body,
    });
    expect(commitStatusProblems('github', sent({ state: 'success' }))).toEqual([]);
    expect(commitStatusProblems('github', sent({ state: 'running' }))).toEqual([
      'body/state must be equal to one of the allowed values',
    ]);
    expect(commitStatusProblems('github', sent({ state: 'success', targetUrl: 'x' }))).toEqual([
      'body must NOT have additional properties',
    ]);
    expect(commitStatusProblems('gitea', sent({ state: 'success' }))).toContain(
      `path /repos/acme/app/statuses/${COMMIT} is not /api/v1/repos/{owner}/{repo}/statuses/{sha}`,
    );
    expect(commitStatusProblems('gitlab', sent({ state: 'success' }))).toContain(
      'no authentication header of this forge',
    );
  });

  it("logs a wrong token's 401 once, without the token, and does not retry it", async () => {
    const forge = await LoopbackForge.start(() => 401);
    const { sender, lines, counts } = statuses(forge);
    sender.report(job(forge, 'github'), 'build-1', 'queued', 'queued');
    await forge.until(1);
    for (const deadline = Date.now() + 10_000; counts.length === 0 && Date.now() < deadline;)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await sender.close();
    await forge.stop();
    expect(counts).toEqual(['github:rejected']);
    expect(forge.requests).toHaveLength(1);
    const log = lines.join('');
    expect(log).toContain('the forge refused the commit status');
    expect(log).toContain('"httpStatus":401');
    expect(log).not.toContain(TOKEN);
  });

  it('tries a failing forge a bounded number of times, drops the status, and sends the next in order', async () => {
    const forge = await LoopbackForge.start((index) => (index < 3 ? 500 : 201));
    const { sender, lines, counts } = statuses(forge, { attempts: 3 });
    const build = job(forge, 'github');
    sender.report(build, 'build-1', 'queued', 'queued');
    sender.report(build, 'build-1', 'building', 'building');
    sender.report(build, 'build-1', 'succeeded', 'applied');
    await forge.until(5);
    await sender.close();
    await forge.stop();
    const descriptions = forge.requests.map((r) => (r.body as { description: string }).description);
    expect(descriptions).toEqual(['queued', 'queued', 'queued', 'building', 'applied']);
    expect(counts).toEqual([
      'github:retried',
      'github:retried',
      'github:dropped',
      'github:sent',
      'github:sent',
    ]);
    expect(lines.join('')).toContain('commit status dropped: no answer after 3 tries');
  });
});

describe('a real builder with a forge that does not answer', () => {
  let stack: BuilderStack;
  let url: string;
  let pushes: Pushes;
  let forge: LoopbackForge;
  let repo: FlakeRepo;

  beforeAll(async () => {
    forge = await LoopbackForge.start(() => 'hang');
    repo = await flake({ web: {} });
    stack = await startBuilderStack({
      SEED_BUILDS_URL: 'http://builder.test/builds/',
      // Long enough that the whole build runs while the first status hangs.
      SEED_FORGE_STATUS_TIMEOUT_MS: '120000',
    });
    ({ url, pushes } = stack);
  });

  afterAll(async () => {
    forge?.release(500);
    await stack?.stop();
    await forge?.stop();
    await repo?.dispose();
  });

  it('finishes the build while the forge hangs, then sends its statuses in order', async () => {
    const jobId = await pushes.pushJob(repo, await repo.head(), {
      forgeStatus: { api: forge.url, repository: 'acme/web', tokenFile },
    });
    const record = await finished(url, jobId);
    expect(record.state).toBe('succeeded');
    // The build is done; the forge has had one request (queued) and answered nothing.
    expect(forge.requests).toHaveLength(1);

    forge.answer = () => 201;
    forge.release(201);
    await forge.until(3);
    const bodies = forge.requests.map((request) => request.body as Record<string, string>);
    expect(bodies.map((body) => body.state)).toEqual(['pending', 'pending', 'success']);
    expect(bodies[2]).toEqual({
      state: 'success',
      context: 'seed',
      target_url: `http://builder.test/builds/${jobId}`,
      description: `generation ${record.generation} applied`,
    });
    for (const request of forge.requests) {
      expect(commitStatusProblems('github', request)).toEqual([]);
      expect(request.path).toBe(`/repos/acme/web/statuses/${record.commit}`);
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/seed_builder_forge_statuses_total\{forge="github",result="sent"\} 3/);
  }, 120_000);
});
