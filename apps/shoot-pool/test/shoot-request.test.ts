// The shoot pool's request checks (shoot.service.ts), for both transports: every bound
// refused with a reason naming it, before a caller is looked up or a VM taken.
import { describe, expect, it } from '@jest/globals';
import { SHOOT_LIMITS } from '@seed/contracts';
import { ShootInvalid, parseGrpcShoot, parseHttpShoot } from '../src/shoot.service';

const limits = { maxOutputBytes: 1 << 20, maxStdinBytes: 1000 };

function reasons(parse: () => unknown): string[] {
  try {
    parse();
  } catch (error) {
    if (error instanceof ShootInvalid) return error.reasons;
    throw error;
  }
  return [];
}

const grpc = (fields: Partial<Parameters<typeof parseGrpcShoot>[0]>) =>
  parseGrpcShoot(
    { command: ['true'], timeoutMs: 0, env: {}, stdin: Buffer.alloc(0), ...fields },
    limits,
  );

describe('shoot requests', () => {
  it("refuses stdin over the pool's cap, naming its variable, on both transports", () => {
    const expected = ['stdin: 1001 bytes, at most 1000 (SEED_SHOOT_MAX_STDIN_BYTES)'];
    expect(
      reasons(() => parseHttpShoot({ command: ['cat'], stdin: 'x'.repeat(1001) }, limits)),
    ).toEqual(expected);
    expect(reasons(() => grpc({ stdin: Buffer.alloc(1001) }))).toEqual(expected);
    expect(reasons(() => grpc({ stdin: Buffer.alloc(1000) }))).toEqual([]);
  });

  it('attack: argv and env beyond what the guest can execve are refused before a VM is taken', () => {
    const arg = 'x'.repeat(100 * 1024);
    const command = Array.from({ length: 11 }, () => arg);
    const total = `command: command and env of ${11 * (arg.length + 1)} bytes together, at most ${SHOOT_LIMITS.maxCommandBytes}`;
    expect(reasons(() => parseHttpShoot({ command }, limits))).toEqual([total]);
    expect(reasons(() => grpc({ command }))).toEqual([total]);
    expect(reasons(() => grpc({ command: Array.from({ length: 257 }, () => 'x') }))).toEqual([
      'command: at most 256 arguments',
    ]);
    expect(reasons(() => grpc({ timeoutMs: SHOOT_LIMITS.maxTimeoutMs + 1 }))).toEqual([
      `timeout: at most ${SHOOT_LIMITS.maxTimeoutMs} ms`,
    ]);
  });
});
