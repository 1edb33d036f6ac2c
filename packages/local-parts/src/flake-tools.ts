// The directories offline flakes (examples/hello, test fixtures) take as `path:` inputs to
// build real nix-snapshotter images without nixpkgs (nix/offline-image.nix).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Prepares the directories below; same path from src/ and dist/. */
export const FLAKE_TOOLS_SCRIPT = path.resolve(__dirname, '../../../scripts/flake-tools');

/**
 * `tools`: `bin/busybox` (static) and `bin/nix2container`, what every offline image is
 * built with and its programs run with. `coredns`: `bin/coredns`, for the example's dns.
 * `shoot-client`: the curl and jq (with their libraries) of nix/offline-seed-shoot.nix.
 */
export type FlakeToolsKind = 'tools' | 'coredns' | 'shoot-client';

const OVERRIDE_ENV: Record<FlakeToolsKind, string> = {
  tools: 'SEED_FLAKE_TOOLS_DIR',
  coredns: 'SEED_FLAKE_COREDNS_DIR',
  'shoot-client': 'SEED_FLAKE_SHOOT_CLIENT_DIR',
};

/**
 * The directory of one kind of flake tools: its OVERRIDE_ENV variable when set, else what scripts/flake-tools prints on its last line
 * (it copies the binaries once; later calls only hash them, about 0.1 s). A flake names it
 * as `{ url = "path:<dir>"; flake = false; }`.
 */
export async function flakeToolsDir(kind: FlakeToolsKind = 'tools'): Promise<string> {
  const override = process.env[OVERRIDE_ENV[kind]];
  if (override !== undefined && override !== '') return override;
  let stdout: string;
  try {
    ({ stdout } = await run(FLAKE_TOOLS_SCRIPT, [kind], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 60 * 60 * 1000,
    }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`${FLAKE_TOOLS_SCRIPT} ${kind} failed${stderr ? `: ${stderr}` : ''}`, {
      cause: error,
    });
  }
  const dir = stdout.trim().split('\n').pop();
  if (!dir) throw new Error(`${FLAKE_TOOLS_SCRIPT} ${kind} printed no directory`);
  return dir;
}
