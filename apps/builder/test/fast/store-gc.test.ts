// The rules of what garbage collection keeps, without nix: which roots folders go, which
// cache files go, and how builds and collections take turns.
import { describe, expect, it } from '@jest/globals';
import { cacheGarbage, parseNarInfo, type NarInfo } from '../../src/binary-cache-gc';
import { rootsToDrop, type RootsFolder } from '../../src/generation-roots';
import { StoreGate } from '../../src/store-gate';

const HOUR = 60 * 60_000;

function folder(startedAt: number, generation?: string): RootsFolder {
  return { name: `${String(startedAt).padStart(15, '0')}-00000000`, startedAt, generation };
}

describe('rootsToDrop', () => {
  it('keeps the newest build of each of the last N generations and drops the rest', () => {
    const folders = [folder(1, 'a'), folder(2, 'b'), folder(3, 'a'), folder(4, 'c')];
    expect(rootsToDrop(folders, 2, 10, HOUR)).toEqual([folder(2).name, folder(1).name]);
    expect(rootsToDrop(folders, 5, 10, HOUR)).toEqual([folder(1).name]);
  });

  it('leaves a running build alone and drops one whose process died long ago', () => {
    const folders = [folder(1, 'a'), folder(5 * HOUR), folder(10)];
    expect(rootsToDrop(folders, 1, 5 * HOUR + 1, HOUR)).toEqual([folder(10).name]);
  });
});

function narinfo(base: string, references: string[] = [], url = `nar/${base}.nar.zst`): NarInfo {
  return { file: `${base.slice(0, 32)}.narinfo`, storePath: `/nix/store/${base}`, url, references };
}

describe('cacheGarbage', () => {
  const hash = (c: string) => c.repeat(32);
  const image = narinfo(`${hash('a')}-image`, [`${hash('b')}-dep`, `${hash('a')}-image`]);
  const dep = narinfo(`${hash('b')}-dep`);
  const old = narinfo(`${hash('c')}-old`, [`${hash('d')}-old-dep`]);
  const oldDep = narinfo(`${hash('d')}-old-dep`);
  // The same bytes under two store paths: one NAR, named by both.
  const twin = narinfo(`${hash('e')}-twin`, [], dep.url);

  it('keeps the closures of the live images, through the narinfos’ references', () => {
    const garbage = cacheGarbage([image, dep, old, oldDep, twin], [image.storePath]);
    expect(garbage.narinfos.map((info) => info.file).sort()).toEqual(
      [old.file, oldDep.file, twin.file].sort(),
    );
    // The twin's NAR is also the live dep's: it stays.
    expect(garbage.nars.sort()).toEqual([old.url, oldDep.url].sort());
  });

  it('reads the fields it needs from a narinfo nix wrote', () => {
    const text = [
      `StorePath: /nix/store/${hash('a')}-image`,
      `URL: nar/${hash('f')}.nar.zst`,
      'Compression: zstd',
      `References: ${hash('a')}-image ${hash('b')}-dep`,
      'Sig: key:abc==',
      '',
    ].join('\n');
    expect(parseNarInfo('x.narinfo', text)).toEqual({
      file: 'x.narinfo',
      storePath: `/nix/store/${hash('a')}-image`,
      url: `nar/${hash('f')}.nar.zst`,
      references: [`${hash('a')}-image`, `${hash('b')}-dep`],
    });
    expect(parseNarInfo('y.narinfo', 'Compression: zstd\n')).toBeUndefined();
  });
});

describe('StoreGate', () => {
  it('makes a collection wait for the builds inside, and builds arriving meanwhile wait for it', async () => {
    const gate = new StoreGate();
    const order: string[] = [];
    let finishBuild!: () => void;
    const build = gate.use(async () => {
      order.push('build starts');
      await new Promise<void>((resolve) => (finishBuild = resolve));
      order.push('build ends');
    });
    const step = (name: string) => () => Promise.resolve(void order.push(name));
    const collection = gate.exclusive(step('collection'));
    const later = gate.use(step('later build'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['build starts']);
    finishBuild();
    await Promise.all([build, collection, later]);
    expect(order).toEqual(['build starts', 'build ends', 'collection', 'later build']);
  });
});
