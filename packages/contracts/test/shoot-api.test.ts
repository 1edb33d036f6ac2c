import { describe, expect, it } from '@jest/globals';
import { shootAnswerSchema, shootRequestSchema } from '../src';

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
