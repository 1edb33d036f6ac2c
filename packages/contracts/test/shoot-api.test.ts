import { describe, expect, it } from '@jest/globals';
import { SHOOT_LIMITS, shootAnswerSchema, shootCommandSchema, shootRequestSchema } from '../src';

describe('the shoot API', () => {
  it('fills in the defaults of a request', () => {
    expect(shootRequestSchema.parse({ command: ['true'] })).toEqual({
      command: ['true'],
      timeout: 60_000,
      env: {},
      stdinEncoding: 'utf8',
    });
  });

  it('refuses a bad request with every reason, by field', () => {
    const result = shootRequestSchema.safeParse({
      command: ['', 'a\0b'],
      timeout: 600_001,
      env: { 'NOT-A-NAME': 'x' },
      extra: 1,
    });
    const paths = result.error?.issues.map((issue) => issue.path.join('.')).sort();
    expect(paths).toEqual(['', 'command', 'command.1', 'env', 'timeout']);
  });

  it('reads an answer with base64 output', () => {
    const answer = {
      exitCode: 0,
      stdout: '/w==',
      stderr: '',
      durationMs: 31,
      timedOut: false,
      stdoutTruncated: false,
      stderrTruncated: false,
      encoding: 'base64',
    };
    expect(shootAnswerSchema.parse(answer)).toEqual(answer);
  });
});

describe('the shoot request bounds', () => {
  const reasonsOf = (body: unknown) =>
    shootRequestSchema
      .safeParse(body)
      .error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) ?? [];

  it('counts argument bytes in UTF-8, as the guest kernel does', () => {
    const fits = 'x'.repeat(SHOOT_LIMITS.maxArgBytes);
    // 65537 characters of 2 bytes each: under the limit in characters, over it in bytes.
    const wide = 'é'.repeat(SHOOT_LIMITS.maxArgBytes / 2 + 1);
    expect(reasonsOf({ command: ['echo', fits] })).toEqual([]);
    expect(reasonsOf({ command: ['echo', wide] })).toEqual([
      `command.1: argument of ${SHOOT_LIMITS.maxArgBytes + 2} bytes, at most ${SHOOT_LIMITS.maxArgBytes}`,
    ]);
  });

  it('bounds argv and env together', () => {
    const arg = 'x'.repeat(100 * 1024);
    expect(reasonsOf({ command: Array.from({ length: 10 }, () => arg) })).toEqual([]);
    expect(reasonsOf({ command: Array.from({ length: 11 }, () => arg) })).toEqual([
      `command: command and env of ${11 * (arg.length + 1)} bytes together, at most ${SHOOT_LIMITS.maxCommandBytes}`,
    ]);
    const env = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`V${i}`, arg]));
    expect(reasonsOf({ command: Array.from({ length: 5 }, () => arg), env })[0]).toMatch(
      /^command: command and env of \d+ bytes together, at most 1048576$/,
    );
  });

  it('bounds env names, entries and count', () => {
    const long = 'N'.repeat(SHOOT_LIMITS.maxEnvNameBytes + 1);
    expect(reasonsOf({ command: ['env'], env: { [long]: 'x' } })).toEqual([
      `env.${long}: name of ${long.length} bytes, at most ${SHOOT_LIMITS.maxEnvNameBytes}`,
    ]);
    expect(
      reasonsOf({ command: ['env'], env: { BIG: 'x'.repeat(SHOOT_LIMITS.maxEnvEntryBytes) } }),
    ).toEqual([
      `env.BIG: NAME=value of ${SHOOT_LIMITS.maxEnvEntryBytes + 4} bytes, at most ${SHOOT_LIMITS.maxEnvEntryBytes}`,
    ]);
    const many = Object.fromEntries(
      Array.from({ length: SHOOT_LIMITS.maxEnvEntries + 1 }, (_, i) => [`V${i}`, '']),
    );
    expect(reasonsOf({ command: ['env'], env: many })).toEqual([
      `env: ${SHOOT_LIMITS.maxEnvEntries + 1} entries, at most ${SHOOT_LIMITS.maxEnvEntries}`,
    ]);
  });

  it('refuses a stdin longer than any pool takes before decoding it', () => {
    const stdin = 'A'.repeat((SHOOT_LIMITS.maxStdinBytesCeiling / 3) * 4 + 4);
    expect(reasonsOf({ command: ['cat'], stdin, stdinEncoding: 'base64' })).toEqual([
      'stdin: longer than any pool takes',
    ]);
  });

  it('checks the gRPC fields with the same rules', () => {
    const arg = 'x'.repeat(100 * 1024);
    const result = shootCommandSchema.safeParse({ command: Array.from({ length: 11 }, () => arg) });
    expect(result.error?.issues[0]?.message).toMatch(/at most 1048576$/);
  });
});
