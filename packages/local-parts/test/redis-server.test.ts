import { createConnection } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { startRedis } from '../src';

function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write(`${line}\r\n`));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString());
    });
    socket.once('error', reject);
  });
}

describe('startRedis', () => {
  it('keeps acknowledged writes across a stop and start on the same port', async () => {
    const redis = await startRedis();
    try {
      expect(await command(redis.port, 'SET seed:test kept')).toBe('+OK\r\n');
      await redis.stop();
      await expect(command(redis.port, 'PING')).rejects.toThrow();
      await redis.start();
      expect(await command(redis.port, 'GET seed:test')).toBe('$4\r\nkept\r\n');
      expect(await command(redis.port, 'CONFIG GET maxmemory-policy')).toContain('noeviction');
    } finally {
      await redis.dispose();
    }
  });
});
