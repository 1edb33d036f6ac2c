// The builds queue's Redis keys and Lua scripts have one owner, this package: any other
// source or test file of the repository that names a key or carries script text fails
// here, with where.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { RECORD_DELIVERY, RELEASE_LOCK, RENEW_LOCK } from '../src/scripts';

const ROOT = path.resolve(__dirname, '../../..');
const OWNER = path.resolve(__dirname, '..');
const SOURCE = /\.(ts|js|mjs|cjs|lua)$/;

/** Seed's own keys (`seed:build:<id>`, `seed:builds:…`) and Lua's way into Redis. */
const FORBIDDEN: { what: string; pattern: RegExp }[] = [
  { what: 'a builds queue key', pattern: /seed:builds?:/ },
  { what: 'Lua calling Redis', pattern: /redis\.p?call\s*\(/ },
  // Any line of the scripts, even without redis.call (a copied loop, a comparison).
  ...[RECORD_DELIVERY, RELEASE_LOCK, RENEW_LOCK].flatMap((script) =>
    script
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length >= 20)
      .map((line) => ({ what: 'a line of a builds queue script', pattern: literal(line) })),
  ),
];

function literal(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

/** Every source file under apps/*, packages/* and bench/* (src and test), this package aside. */
function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist') walk(full);
      } else if (SOURCE.test(entry.name)) {
        files.push(full);
      }
    }
  };
  for (const group of ['apps', 'packages', 'bench']) {
    for (const name of readdirSync(path.join(ROOT, group))) {
      const packageDir = path.join(ROOT, group, name);
      if (packageDir === OWNER || !statSync(packageDir).isDirectory()) continue;
      for (const part of ['src', 'test']) {
        const dir = path.join(packageDir, part);
        if (statSync(dir, { throwIfNoEntry: false })?.isDirectory()) walk(dir);
      }
    }
  }
  return files;
}

describe('the builds queue has one owner', () => {
  const files = sourceFiles();

  it('finds the sources of the webhook and the builder', () => {
    const relative = files.map((file) => path.relative(ROOT, file));
    expect(relative).toContain('apps/webhook/src/webhook.service.ts');
    expect(relative).toContain('apps/builder/src/build.processor.ts');
  });

  it('names its keys and carries its scripts nowhere else', () => {
    const found: string[] = [];
    for (const file of files) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, index) => {
          for (const { what, pattern } of FORBIDDEN) {
            if (pattern.test(line))
              found.push(`${path.relative(ROOT, file)}:${index + 1}: ${what}: ${line.trim()}`);
          }
        });
    }
    expect(found).toEqual([]);
  });
});
