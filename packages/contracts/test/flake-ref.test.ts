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
