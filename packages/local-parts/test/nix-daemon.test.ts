import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { startNixDaemon, type LocalNixDaemon } from '../src';

const run = promisify(execFile);
let daemon: LocalNixDaemon;

beforeAll(async () => {
  daemon = await startNixDaemon();
});

afterAll(async () => {
  await daemon?.dispose();
});

it('builds in its own chroot store, sandboxed, as a build user', async () => {
  // `id -u` inside the sandbox is always 1000 (nix maps the build user there); the group
  // name and the empty root show the sandbox.
  const expression = `derivation { name = "probe"; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" "echo ${randomBytes(4).toString('hex')}; id -gn > $out; ls / >> $out" ]; }`;
  const { stdout } = await run(
    'nix',
    ['--extra-experimental-features', 'nix-command', '--store', daemon.storeUrl].concat([
      'build',
      '--no-link',
      '--json',
      '--expr',
      expression,
    ]),
    { env: { PATH: process.env.PATH, HOME: process.env.HOME, NIX_USER_CONF_FILES: '' } },
  );
  const out = (JSON.parse(stdout) as { outputs: { out: string } }[])[0]!.outputs.out;
  expect(existsSync(out)).toBe(false); // not in the node's /nix
  const built = await readFile(`${daemon.storeRoot}${out}`, 'utf8');
  expect(built.split('\n')).toEqual([
    'nixbld',
    'bin',
    'build',
    'dev',
    'etc',
    'nix',
    'proc',
    'tmp',
    '',
  ]);
});

it('stops and leaves nothing behind', async () => {
  const other = await startNixDaemon();
  await other.dispose();
  expect(existsSync(other.socketPath)).toBe(false);
  expect(existsSync(other.storeRoot)).toBe(false);
});
