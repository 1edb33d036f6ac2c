import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runningSwtpm, stopSwtpm, type InstanceKey, type VtpmStore } from '../src';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The activation program nix/modules/secrets.nix installs. */
export const SEED_SECRETS = path.join(ROOT, 'nix', 'secrets', 'seed-secrets.sh');

/** The directory of a project script's cache (its last line of stdout). */
export function scriptOutput(script: string): string {
  const lines = execFileSync(path.join(ROOT, 'scripts', script), { encoding: 'utf8' }).trim();
  return lines.split('\n').at(-1) ?? '';
}

/** age, age-keygen and sops, static (scripts/secrets-tools). */
export const secretsTools = (): string => scriptOutput('secrets-tools');

export const PLAINTEXT = 'password: correct horse battery staple\n';

/**
 * What the developer does on their machine: `sops --encrypt` to the instance's
 * recipient, the result committed to the flake.
 */
export function encryptTo(tools: string, recipient: string, dir: string): string {
  const plain = path.join(dir, 'db-password.yaml');
  writeFileSync(plain, PLAINTEXT);
  const encrypted = execFileSync(
    path.join(tools, 'sops'),
    ['--encrypt', '--age', recipient, plain],
    { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir } },
  );
  const file = path.join(dir, 'db-password.enc.yaml');
  writeFileSync(file, encrypted);
  return file;
}

/** Stops the swtpms a test's store started (they run detached, past the test). */
export async function stopSwtpms(store: VtpmStore, instances: InstanceKey[]): Promise<void> {
  for (const instance of instances) {
    const pid = await runningSwtpm(store.paths(instance));
    if (pid !== undefined) await stopSwtpm(pid);
  }
}
