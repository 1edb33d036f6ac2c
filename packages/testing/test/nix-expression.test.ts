import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { toNixExpression } from '../src';

const run = promisify(execFile);

describe('toNixExpression', () => {
  it('renders values that the real nix reads back unchanged', async () => {
    const value = {
      port: 8080,
      enable: true,
      nothing: null,
      list: [1, 'two', { three: 3 }],
      'key-with-dash': 'quote " backslash \\ interpolation ${x} newline\n',
    };
    const { stdout } = await run('nix-instantiate', [
      '--eval',
      '--strict',
      '--json',
      '--expr',
      toNixExpression(value),
    ]);
    expect(JSON.parse(stdout)).toEqual(value);
  });

  it('refuses values Nix fixtures cannot hold', () => {
    expect(() => toNixExpression(1.5)).toThrow('integers');
    expect(() => toNixExpression(() => 1)).toThrow('cannot render function');
  });
});
