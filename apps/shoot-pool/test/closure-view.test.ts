// A shoot sees its caller's closure and nothing else of the node's store: real nix (two
// toy derivations in the closure of an image, one outside it) and real microVMs (QEMU,
// TCG here) through the daemon.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mountsUnder } from '@seed/mount-table';
import { loadShootPoolConfig } from '../src/config';
import { createShootPoolApp, type ShootPoolApp } from '../src/shoot-pool.app';
import { ClosureViews } from '../src/store/closure-views';
import { GUEST_IMAGE_TIMEOUT_MS, guestImage, qemuMissing } from './guest-image';

const missing = qemuMissing();
if (missing !== undefined) console.warn(missing);
const describeVm = missing === undefined ? describe : describe.skip;

const run = promisify(execFile);
/** Root, no daemon, no network (RUNTIME-NOTES.md, "Nix"). */
const NIX_CONFIG = [
  'experimental-features = nix-command',
  'sandbox = false',
  'build-users-group =',
  'substituters =',
].join('\n');

/** Every store path a test made (outputs and derivations), deleted afterwards. */
const made: string[] = [];

/** Builds `expr` (a Nix expression of one derivation) and returns its output path. */
async function build(expr: string): Promise<string> {
  const { stdout } = await run(
    'nix',
    ['build', '--impure', '--no-link', '--json', '--expr', expr],
    {
      env: { ...process.env, NIX_CONFIG },
    },
  );
  const [built] = JSON.parse(stdout) as { drvPath: string; outputs: { out: string } }[];
  made.push(built!.outputs.out, built!.drvPath);
  return built!.outputs.out;
}

const toy = (name: string, script: string) =>
  `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; }`;

describeVm("a shoot's /nix/store", () => {
  let root: string;
  let app: ShootPoolApp | undefined;
  let url: string;
  const paths = { dep: '', image: '', outside: '' };

  const shoot = async (command: string[]) => {
    const response = await fetch(`${url}/shoot`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command, timeout: 20_000 }),
    });
    return (await response.json()) as { exitCode: number; stdout: string; stderr: string };
  };

  beforeAll(async () => {
    const marker = `${process.pid}-${Date.now()}`;
    paths.dep = await build(toy('shoot-closure-dep', `echo dep-${marker} > $out`));
    paths.image = await build(
      `let dep = ${toy('shoot-closure-dep', `echo dep-${marker} > $out`)}; in derivation { name = "shoot-closure-image"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo \${dep} > $out" ]; }`,
    );
    paths.outside = await build(toy('shoot-closure-outside', `echo outside-${marker} > $out`));

    const guestDir = path.dirname((await guestImage()).kernel);
    root = await mkdtemp(path.join(tmpdir(), 'shoot-closure-'));
    await writeFile(path.join(root, 'status.token'), 'status-token-'.padEnd(32, '0'));
    const config = loadShootPoolConfig({
      SEED_SHOOT_HOST: '127.0.0.1',
      SEED_SHOOT_PORT: '0',
      SEED_SHOOT_GRPC_PORT: '0',
      SEED_SHOOT_ACCEL: 'tcg',
      SEED_SHOOT_RUN_ROOT: path.join(root, 'run'),
      SEED_GUEST_DIR: guestDir,
      SEED_LOG_LEVEL: 'silent',
      SEED_SHOOT_POOL_SIZE: '1',
      SEED_SHOOT_STATUS_TOKEN_FILE: path.join(root, 'status.token'),
      SEED_SHOOT_LOCAL_CALLER: JSON.stringify({
        '127.0.0.1': { store: '/nix/store', image: paths.image, volumes: [] },
      }),
    });
    app = await createShootPoolApp(config);
    await app.http.listen(0, '127.0.0.1');
    url = (await app.http.getUrl()).replace('[::1]', '127.0.0.1').replace('localhost', '127.0.0.1');
    for (let i = 0; i < 400 && app.pool.status().idle < 1; i += 1) await sleep(50);
  }, GUEST_IMAGE_TIMEOUT_MS);

  afterAll(async () => {
    await app?.http.close();
    if (root !== undefined) {
      expect(await mountsUnder(root)).toEqual([]);
      await rm(root, { recursive: true, force: true });
    }
    // Leave the store as it was: the toy paths are nobody's (no GC root); nix deletes the
    // outputs before the derivations nothing keeps alive anymore.
    if (made.length > 0) {
      await run('nix-store', ['--delete', ...new Set(made)], {
        env: { ...process.env, NIX_CONFIG },
      }).catch((error: unknown) =>
        console.warn(`could not delete the toy store paths: ${String(error)}`),
      );
    }
  });

  it("attack: a shoot lists exactly its caller's closure, not the node's store", async () => {
    const listed = await shoot(['ls', '/nix/store']);
    const hostEntries = (await readdir('/nix/store')).length;
    console.log(
      `a shoot listed ${listed.stdout.split('\n').filter(Boolean).length} store entries; the host has ${hostEntries}`,
    );
    expect(listed).toMatchObject({ exitCode: 0 });
    expect(listed.stdout.split('\n').filter(Boolean).sort()).toEqual(
      [paths.dep, paths.image].map((p) => path.basename(p)).sort(),
    );
    const outside = await shoot(['cat', paths.outside]);
    expect(outside.exitCode).not.toBe(0);
  });

  it('reads the closure through its references, read-only', async () => {
    const read = await shoot(['sh', '-c', `cat $(cat ${paths.image})`]);
    expect(read).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^dep-/) });
    const write = await shoot(['sh', '-c', `echo x > /nix/store/new; echo x > ${paths.dep}`]);
    expect(write.exitCode).not.toBe(0);
    expect(write.stderr).toMatch(/read-only/i);
  });

  it("removes an image's view once no shoot has held it for the idle time, and builds it again", async () => {
    const views = new ClosureViews({
      root: path.join(root, 'views'),
      storeDir: '/nix/store',
      idleMs: 60_000,
    });
    try {
      const held = await views.hold(paths.image);
      expect((await readdir(held.dir)).sort()).toEqual(
        [paths.dep, paths.image].map((member) => path.basename(member)).sort(),
      );
      expect(await mountsUnder(held.dir)).toHaveLength(2);
      // Held: never removed, however long.
      expect(await views.evictIdle(Date.now() + 3_600_000)).toEqual([]);
      held.release();
      expect(await views.evictIdle(Date.now() + 30_000)).toEqual([]);
      expect(await views.evictIdle(Date.now() + 61_000)).toEqual([paths.image]);
      expect(await mountsUnder(held.dir)).toEqual([]);
      expect(existsSync(held.dir)).toBe(false);
      expect(views.size).toBe(0);

      const again = await views.hold(paths.image);
      expect(again.dir).toBe(held.dir);
      expect(await mountsUnder(again.dir)).toHaveLength(2);
      again.release();
    } finally {
      await views.clear();
    }
  });
});
