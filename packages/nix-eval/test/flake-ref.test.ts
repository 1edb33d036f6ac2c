import { describe, expect, it } from '@jest/globals';
import { NixError, parseFlakeRef, pinFlakeRef } from '../src';

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

describe('parseFlakeRef', () => {
  it.each([
    'github:loomtex/seed',
    'github:loomtex/seed/main',
    'git+https://git.example.org/team/app.git?ref=main',
    'git+ssh://git@git.example.org/team/app.git',
    'git+file:///srv/git/app',
    'git://127.0.0.1:9418/app.git',
    'path:/srv/flakes/app',
    'tarball+https://example.org/app.tar.gz',
  ])('accepts %s', (reference) => {
    expect(parseFlakeRef(reference).url).toBe(reference);
  });

  it.each([
    ['', 'must be 1 to 2048 characters'],
    ['https://example.org/app.git', 'unsupported scheme'],
    ['git+git://example.org/app', 'unsupported scheme'],
    ['--impure', 'unsupported scheme'],
    ['nixpkgs', 'unsupported scheme'],
    ['github:loomtex/seed#seeds.web', 'must not name an output'],
    ['github:loomtex', 'expected github:OWNER/REPO'],
    ['path:./app', 'must be absolute'],
    ['git+file://relative/app', 'git+file: references must be absolute'],
    ['git+https:///app.git', 'has no host'],
    ['github:a/b c', 'whitespace'],
  ])('rejects "%s" (%s)', (reference, why) => {
    const error = rejection(() => parseFlakeRef(reference));
    expect(error.kind).toBe('invalid-reference');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(why);
  });
});

describe('flake references with credentials', () => {
  it.each([
    [
      'git+https://alice:hunter2@git.example.org/team/app.git',
      'git+https://***:***@git.example.org',
    ],
    ['git+https://ghp_SECRETTOKEN@github.com/team/app.git', 'git+https://***:***@github.com'],
    ['git+ssh://git:hunter2@git.example.org/team/app.git', 'git+ssh://git:***@git.example.org'],
    ['tarball+https://example.org/app.tar.gz?access_token=hunter2', '?access_token=***'],
    ['github:team/app?token=hunter2', '?token=***'],
  ])('refuses %s without repeating the secret', (reference, shown) => {
    const error = rejection(() => parseFlakeRef(reference));
    expect(error.kind).toBe('invalid-reference');
    expect(error.message).toContain('carries credentials');
    expect(error.message).toContain(shown);
    expect(error.message).not.toMatch(/hunter2|SECRETTOKEN/);
  });
});

describe('pinFlakeRef', () => {
  it('pins github references by path, replacing a branch', () => {
    expect(pinFlakeRef('github:loomtex/seed/main', REV).url).toBe(`github:loomtex/seed/${REV}`);
  });

  it('pins git references by query, keeping other parameters', () => {
    expect(pinFlakeRef('git+https://h.example/a.git?dir=sub', REV, 'release/1').url).toBe(
      `git+https://h.example/a.git?dir=sub&rev=${REV}&ref=release%2F1`,
    );
  });

  it('refuses what is not a commit id, and references without git history', () => {
    expect(rejection(() => pinFlakeRef('github:a/b', 'HEAD')).message).toContain('40-digit');
    expect(rejection(() => pinFlakeRef('path:/srv/app', REV)).message).toContain(
      'cannot be pinned',
    );
  });
});
