import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hasExited, spawnOwned } from './owned-process';
import { freeLoopbackPort } from './ports';

/** A Redis ACL user: its name and its rules (keys, commands) without `on` and a password. */
export interface RedisAclUser {
  name: string;
  rules: readonly string[];
}

/** How a client signs in as a user. */
export interface RedisCredentials {
  username: string;
  password: string;
  /** The password in a file of its own (mode 0600), as a service reads it from a Secret. */
  passwordFile: string;
}

export interface LocalRedis {
  host: string;
  port: number;
  /** No credentials in it: the user and its password come separately, as in production. */
  url: string;
  /** The fixture's own user, allowed everything: for tests that inspect or reset Redis. */
  admin: RedisCredentials;
  /** The credentials of one of the users it was started with. */
  user(name: string): RedisCredentials;
  /** What a Seed service reads to reach this Redis as `name`. */
  serviceEnv(name: string): {
    SEED_REDIS_URL: string;
    SEED_REDIS_USERNAME: string;
    SEED_REDIS_PASSWORD_FILE: string;
  };
  /** Stops the server (SHUTDOWN-like SIGTERM: the append-only file is flushed). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  dispose(): Promise<void>;
}

/**
 * Off: a connection that has not signed in can do nothing (NOAUTH), and no password makes
 * it `default`. Its rights are those of Redis 7.0's AOF loading, which replays a logged
 * MULTI/EXEC (every write of a Lua script) checking it against `default`: with `-@all`
 * a restart silently drops every such write. deploy/manifests/redis.yaml does the same.
 */
const DEFAULT_USER = 'user default off resetpass ~* &* +@all';

/** The fixture's user with every right, for tests' own looks into Redis. */
const ADMIN = 'seed-test-admin';

/**
 * A real redis-server on a free loopback port, in a temp directory of its own, run as in
 * production: the `default` user is off and each client signs in as one of `users`, with a
 * random password kept in a file. The append-only file is on, so a test can stop and
 * restart it and see that nothing that was acknowledged got lost.
 */
export async function startRedis(users: readonly RedisAclUser[] = []): Promise<LocalRedis> {
  const dir = await mkdtemp(path.join(tmpdir(), 'seed-redis-'));
  const port = await freeLoopbackPort();
  let child: ChildProcess | undefined;
  const credentials = new Map<string, RedisCredentials>();
  const aclFile = path.join(dir, 'users.acl');

  const writeUsers = async () => {
    await mkdir(path.join(dir, 'passwords'), { mode: 0o700 });
    const lines = [DEFAULT_USER];
    const all: RedisAclUser[] = [{ name: ADMIN, rules: ['~*', '&*', '+@all'] }, ...users];
    for (const { name, rules } of all) {
      const password = randomBytes(24).toString('hex');
      const passwordFile = path.join(dir, 'passwords', name);
      await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
      credentials.set(name, { username: name, password, passwordFile });
      const hashed = createHash('sha256').update(password).digest('hex');
      lines.push(`user ${name} on #${hashed} ${rules.join(' ')}`);
    }
    await writeFile(aclFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  };

  const start = async () => {
    const args = [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--save',
      '',
      '--aclfile',
      aclFile,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      // BullMQ needs keys never evicted.
      '--maxmemory-policy',
      'noeviction',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
    ];
    // stderr is dropped: redis warns about the host's overcommit setting on every start.
    const process = spawnOwned('redis-server', args, { stdio: ['ignore', 'ignore', 'ignore'] });
    child = process;
    try {
      await waitForPong(port, credentials.get(ADMIN)!, process);
    } catch (error) {
      process.kill('SIGKILL');
      throw error;
    }
  };

  const stop = async () => {
    const process = child;
    child = undefined;
    if (!process || hasExited(process)) return;
    await new Promise<void>((resolve) => {
      process.once('exit', () => resolve());
      process.kill('SIGTERM');
    });
  };

  try {
    await writeUsers();
    await start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const url = `redis://127.0.0.1:${port}`;
  const user = (name: string) => {
    const found = credentials.get(name);
    if (!found) throw new Error(`this Redis has no user ${name}`);
    return found;
  };
  return {
    host: '127.0.0.1',
    port,
    url,
    admin: user(ADMIN),
    user,
    serviceEnv: (name) => {
      const { username, passwordFile } = user(name);
      return {
        SEED_REDIS_URL: url,
        SEED_REDIS_USERNAME: username,
        SEED_REDIS_PASSWORD_FILE: passwordFile,
      };
    },
    start,
    stop,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPong(
  port: number,
  admin: RedisCredentials,
  process: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (hasExited(process))
      throw new Error(`redis-server exited (${process.signalCode ?? process.exitCode})`);
    if (await ping(port, admin)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

/** AUTH then PING (the default user is off); true once both answer OK and PONG. */
function ping(port: number, admin: RedisCredentials): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once('connect', () =>
      socket.write(`AUTH ${admin.username} ${admin.password}\r\nPING\r\n`),
    );
    let answer = '';
    socket.on('data', (data) => {
      answer += data.toString();
      const [auth, pong, rest] = answer.split('\r\n');
      if (rest === undefined) return;
      socket.destroy();
      resolve(auth === '+OK' && pong === '+PONG');
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
