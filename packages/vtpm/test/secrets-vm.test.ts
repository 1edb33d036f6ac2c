import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SecretsVm, secretsToolsDir, type GuestResult } from '@seed/testing';
import { VtpmStore, type InstanceKey } from '../src';
import { PLAINTEXT, encryptTo, stopSwtpms } from './secrets-kit';

// End to end: the agent's swtpm attached to a real QEMU VM (the shoot guest's kernel,
// q35 with a TIS TPM, under TCG), the activation program run inside it (SecretsVm, which
// `seed up` runs too).
const web: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'web' };
const other: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'other' };

let dir: string;
let tools: string;
let vm: SecretsVm;
const agent = (): VtpmStore =>
  new VtpmStore({ root: path.join(dir, 'tpms'), swtpm: 'swtpm', graceMs: 60_000, now: () => 0 });

/** Boots the VM on `instance`'s TPM, started or adopted by a new agent, as a node would. */
async function boot(
  instance: InstanceKey,
  job: Parameters<SecretsVm['run']>[1],
): Promise<GuestResult> {
  const { ctrlSocket } = await agent().ensure(instance);
  return vm.run(ctrlSocket, job);
}

/** Two boots per test at most (SecretsVm bounds one at 180 s), and the root built once. */
const TEST_TIMEOUT_MS = 2 * 180_000 + 60_000;

const MANIFEST = 'db-password /job/db-password.enc.yaml root root 0400\n';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'secrets-vm-'));
  // Cached after the first run; the first builds sops (~10 minutes) and the guest kernel.
  tools = await secretsToolsDir();
  vm = await SecretsVm.prepare(await mkdtemp(path.join(dir, 'vm-')));
}, 1_200_000);

afterAll(async () => {
  await stopSwtpms(agent(), [web, other]);
  await rm(dir, { recursive: true, force: true });
});

describe('secrets in a VM with the agent’s TPM', () => {
  let recipient: string;
  let encrypted: string;

  it(
    'creates the identity in the guest and decrypts what the host encrypted to it',
    async () => {
      const created = await boot(web, { mode: 'recipient' });
      expect(created).toMatchObject({
        exit: 0,
        output: expect.stringMatching(/^age1[0-9a-z]{58}\n$/),
      });
      recipient = created.output.trim();

      encrypted = await encryptTo(tools, recipient, dir);
      const installed = await boot(web, {
        mode: 'install',
        manifest: MANIFEST,
        files: { 'db-password.enc.yaml': readFileSync(encrypted, 'utf8') },
      });
      expect(installed).toEqual({ exit: 0, output: PLAINTEXT });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'decrypts again after the agent and the VM restart: the same identity',
    async () => {
      // A new agent: it finds the TPM by its pidfile, or restarts it from its state
      // (QEMU's shutdown stops swtpm), never a new TPM.
      const again = await boot(web, {
        mode: 'install',
        manifest: MANIFEST,
        files: { 'db-password.enc.yaml': readFileSync(encrypted, 'utf8') },
      });
      expect(again).toEqual({ exit: 0, output: PLAINTEXT });
      expect((await boot(web, { mode: 'recipient' })).output.trim()).toBe(recipient);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "attack: another instance's TPM cannot decrypt it, and the failure names the file for Kubernetes",
    async () => {
      expect((await boot(other, { mode: 'recipient' })).output.trim()).not.toBe(recipient);
      const refused = await boot(other, {
        mode: 'install',
        manifest: MANIFEST,
        files: { 'db-password.enc.yaml': readFileSync(encrypted, 'utf8') },
      });
      expect(refused.exit).toBe(1);
      const message = 'seed-secrets: secret db-password: cannot decrypt /job/db-password.enc.yaml';
      expect(refused.output).toContain(message);
      // What secrets.nix's unit hands to the kubelet as the termination message.
      expect(refused.failure).toContain(message);
      expect(`${refused.output}${refused.failure}`).not.toContain('correct horse');
    },
    TEST_TIMEOUT_MS,
  );
});
