// The node's store is collected by the node's nix-daemon when the shoot pool asks: what a
// root holds (nix-snapshotter's roots of the images containerd keeps) stays with its
// closure, and nothing else. Real nix: a nix-daemon of this test's own, its store a chroot
// store in a temp folder, standing in for the node's (never this machine's /nix).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLogger } from '@seed/service-kit';
import { startNixDaemon, type LocalNixDaemon } from '@seed/testing';
import { ShootMetrics } from '../src/metrics';
import { nodeStoreGc } from '../src/store/node-store-gc';

let daemon: LocalNixDaemon;
let work: string;

async function nix(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    'nix',
    ['--extra-experimental-features', 'nix-command', '--store', daemon.storeUrl, ...args],
    { env: { ...process.env, NIX_USER_CONF_FILES: '' } },
  );
  return stdout.trim();
}

/** A store path of its own, unrooted. */
async function addPath(name: string): Promise<string> {
  const file = path.join(work, name);
  await writeFile(file, randomBytes(8).toString('hex'));
  return nix('store', 'add-file', file);
}

/** A derivation's output that refers to `reference`: its closure is both. */
async function buildReferring(name: string, reference: string): Promise<string> {
  const expression = `derivation { name = "${name}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo \${builtins.storePath "${reference}"} > $out" ]; }`;
  const built = JSON.parse(
    await nix('build', '--impure', '--no-link', '--json', '--expr', expression),
  ) as {
    outputs: { out: string };
  }[];
  return built[0]!.outputs.out;
}

const inStore = (storePath: string) => existsSync(path.join(daemon.storeRoot, storePath));

beforeAll(async () => {
  daemon = await startNixDaemon();
  work = await mkdtemp(path.join(tmpdir(), 'seed-node-gc-'));
}, 60_000);

afterAll(async () => {
  await daemon?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the node store collection', () => {
  it('keeps what nix-snapshotter roots (images in use, with their closures) and takes the rest', async () => {
    const layer = await addPath('layer');
    const image = await buildReferring('image', layer);
    const removed = await addPath('removed-image');
    // nix-snapshotter roots an image it prepares as `nix build --out-link <root> <image>`:
    // an indirect root, gone once containerd removes the snapshot (and the link with it).
    const roots = path.join(work, 'nix-snapshotter', 'gcroots');
    await nix('build', '--out-link', path.join(roots, 'in-use'), image);
    await nix('build', '--out-link', path.join(roots, 'was-used'), removed);
    await rm(path.join(roots, 'was-used'));

    const storeDir = path.join(daemon.storeRoot, 'nix', 'store');
    const metrics = new ShootMetrics(
      () => ({ idle: 0, busy: 0, starting: 0, queued: 0 }),
      storeDir,
    );
    const gc = nodeStoreGc(
      // Every filesystem is short of 100 % free: the check collects at once.
      {
        nixStore: daemon.storeUrl,
        nixBinary: 'nix',
        intervalMs: 3_600_000,
        minFreePercent: 100,
        checkMs: 60_000,
      },
      storeDir,
      metrics.gc,
      createLogger('shoot-pool', 'silent'),
    );
    expect(await gc.check()).toBe('disk-pressure');

    expect([inStore(image), inStore(layer), inStore(removed)]).toEqual([true, true, false]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('seed_shoot_store_gc_runs_total{trigger="disk-pressure",result="ok"} 1');
    expect(text).toMatch(
      new RegExp(`seed_shoot_store_gc_deleted_paths_total\\{store="${storeDir}"\\} [1-9]`),
    );
    expect(text).toMatch(
      new RegExp(`seed_shoot_store_filesystem_free_bytes\\{store="${storeDir}"\\} [1-9]`),
    );
  }, 120_000);
});
