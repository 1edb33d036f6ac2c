import { execFileSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { flakeHookId } from '../src';

describe('flakeHookId', () => {
  it('is what the documented shell line computes', () => {
    const flake = 'github:acme/app';
    const secret = 's3cret with spaces';
    const shell = execFileSync(
      'sh',
      [
        '-c',
        `printf 'seed-hook\\n%s\\n%s' "$1" "$2" | sha256sum | cut -c1-32`,
        'sh',
        flake,
        secret,
      ],
      { encoding: 'utf8' },
    ).trim();
    expect(flakeHookId(flake, secret)).toBe(shell);
    expect(flakeHookId(flake, secret)).toMatch(/^[0-9a-f]{32}$/);
    expect(flakeHookId(flake, 'another')).not.toBe(shell);
  });
});
