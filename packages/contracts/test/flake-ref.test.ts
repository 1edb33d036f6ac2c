import { describe, expect, it } from '@jest/globals';
import { InvalidFlakeRef, parseFlakeRef } from '../src';

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
    expect(() => parseFlakeRef(reference)).toThrow(InvalidFlakeRef);
    expect(() => parseFlakeRef(reference)).toThrow(why);
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
    let message = '';
    try {
      parseFlakeRef(reference);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidFlakeRef);
      message = (error as InvalidFlakeRef).message;
    }
    expect(message).toContain('carries credentials');
    expect(message).toContain(shown);
    expect(message).not.toMatch(/hunter2|SECRETTOKEN/);
  });
});
