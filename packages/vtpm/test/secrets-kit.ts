import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { sopsEncrypt } from '@seed/testing';
import { runningSwtpm, stopSwtpm, type InstanceKey, type VtpmStore } from '../src';

export const PLAINTEXT = 'password: correct horse battery staple\n';

/**
 * What the developer does on their machine: `sops --encrypt` to the instance's
 * recipient, the result committed to the flake.
 */
export async function encryptTo(tools: string, recipient: string, dir: string): Promise<string> {
  const plain = path.join(dir, 'db-password.yaml');
  writeFileSync(plain, PLAINTEXT);
  const file = path.join(dir, 'db-password.enc.yaml');
  writeFileSync(file, await sopsEncrypt(tools, recipient, plain));
  return file;
}

/** Stops the swtpms a test's store started (they run detached, past the test). */
export async function stopSwtpms(store: VtpmStore, instances: InstanceKey[]): Promise<void> {
  for (const instance of instances) {
    const pid = await runningSwtpm(store.paths(instance));
    if (pid !== undefined) await stopSwtpm(pid);
  }
}
