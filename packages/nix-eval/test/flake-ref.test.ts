import { describe, expect, it } from '@jest/globals';
import { NixError, pinFlakeRef } from '../src';

const REV = '0123456789abcdef0123456789abcdef01234567';

function rejection(action: () => unknown): NixError {
  try {
    action();
  } catch (error) {
    if (error instanceof NixError) return error;
    throw error;
  }
  throw new Error('expected a NixError');
}

describe('pinFlakeRef', () => {
  it('pins github references by path, replacing a branch', () => {
    expect(pinFlakeRef('github:loomtex/seed/main', REV).url).toBe(`github:loomtex/seed/${REV}`);
  });

  it('pins git references by query, keeping other parameters', () => {
    expect(pinFlakeRef('git+https://h.example/a.git?dir=sub', REV, 'release/1').url).toBe(
      `git+https://h.example/a.git?dir=sub&rev=${REV}&ref=release%2F1`,
    );
  });

  it('refuses a reference Seed does not accept as a final invalid-reference', () => {
    const error = rejection(() => pinFlakeRef('nixpkgs', REV));
    expect(error.kind).toBe('invalid-reference');
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      'flake reference "nixpkgs": unsupported scheme (Seed accepts github: git+https:// git+ssh:// git+file:// git:// path: tarball+https://)',
    );
  });

  it('refuses what is not a commit id, and references without git history', () => {
    expect(rejection(() => pinFlakeRef('github:a/b', 'HEAD')).message).toContain('40-digit');
    expect(rejection(() => pinFlakeRef('path:/srv/app', REV)).message).toContain(
      'cannot be pinned',
    );
  });
});
