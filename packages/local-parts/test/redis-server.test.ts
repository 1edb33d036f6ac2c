import { createConnection } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { startRedis, type RedisCredentials } from '../src';

/**
 * Sends AUTH (when given a user) and `line` (one command or several, CRLF-separated);
 * answers what came after AUTH's reply, once `lines` reply lines have arrived.
 */
function command(port: number, line: string, user?: RedisCredentials, lines = 1): Promise<string> {
  const auth = user ? `AUTH ${user.username} ${user.password}\r\n` : '';
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () =>
      socket.write(`${auth}${line}\r\n`),
    );
    let answer = '';
    socket.on('data', (data) => {
      answer += data.toString();
      const replies = answer.split('\r\n').length - 1;
      if (replies < (user ? lines + 1 : lines)) return;
      socket.destroy();
      resolve(user ? answer.slice(answer.indexOf('\r\n') + 2) : answer);
    });
    socket.once('error', reject);
  });
}

describe('startRedis', () => {
  it('keeps acknowledged writes across a stop and start on the same port', async () => {
    const redis = await startRedis();
    try {
      expect(await command(redis.port, 'SET seed:test kept', redis.admin)).toBe('+OK\r\n');
      await redis.stop();
      await expect(command(redis.port, 'PING')).rejects.toThrow();
      await redis.start();
      expect(await command(redis.port, 'GET seed:test', redis.admin, 2)).toBe('$4\r\nkept\r\n');
      expect(await command(redis.port, 'CONFIG GET maxmemory-policy', redis.admin, 5)).toContain(
        'noeviction',
      );
    } finally {
      await redis.dispose();
    }
  });

  it('runs with the default user off and each user held to its rules', async () => {
    const redis = await startRedis([{ name: 'reader', rules: ['~mine:*', '-@all', '+get'] }]);
    try {
      expect(await command(redis.port, 'PING')).toMatch(/^-NOAUTH/);
      const reader = redis.user('reader');
      expect(await command(redis.port, 'GET mine:a', reader)).toBe('$-1\r\n');
      expect(await command(redis.port, 'GET other', reader)).toMatch(/^-NOPERM/);
      expect(await command(redis.port, 'SET mine:a 1', reader)).toMatch(/^-NOPERM/);
      expect(redis.serviceEnv('reader')).toEqual({
        SEED_REDIS_URL: redis.url,
        SEED_REDIS_USERNAME: 'reader',
        SEED_REDIS_PASSWORD_FILE: reader.passwordFile,
      });
    } finally {
      await redis.dispose();
    }
  });
});
