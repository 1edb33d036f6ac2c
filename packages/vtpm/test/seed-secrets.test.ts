import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SEED_SECRETS_PROGRAM, secretsToolsDir } from '@seed/testing';
import { VtpmStore, type InstanceKey } from '../src';
import { PLAINTEXT, encryptTo, stopSwtpms } from './secrets-kit';

// The activation program against the agent's real swtpm, on the host (tpm2-tools over
// the TPM's host data socket): the flow of test/secrets-vm.test.ts without the VM.
const web: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'web' };
const other: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'other' };

let dir: string;
let tools: string;
const agent = (): VtpmStore =>
  new VtpmStore({
    root: path.join(dir, 'tpms'),
    swtpm: 'swtpm',
    graceMs: 60_000,
    now: () => 0,
    hostChannel: true,
  });

function seedSecrets(instance: InstanceKey, args: string[]) {
  const result = spawnSync('sh', [SEED_SECRETS_PROGRAM, ...args], {
    encoding: 'utf8',
    env: {
      PATH: `${tools}:${process.env.PATH ?? ''}`,
      HOME: dir,
      TPM2TOOLS_TCTI: `swtpm:path=${agent().paths(instance).data}`,
      SEED_SECRETS_DIR: path.join(dir, `secrets-${instance.name}`),
      SEED_SECRETS_FAILURE: failureFile(instance),
    },
  });
  return { code: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}

/** Where the activation leaves a failure's message for Kubernetes (secrets.nix). */
const failureFile = (instance: InstanceKey): string =>
  path.join(dir, 'run-seed', `${instance.name}-secrets-failed`);
const failure = (instance: InstanceKey): string | undefined =>
  existsSync(failureFile(instance)) ? readFileSync(failureFile(instance), 'utf8') : undefined;

function manifest(file: string, mode = '0440'): string {
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  const manifestFile = path.join(dir, 'manifest');
  writeFileSync(manifestFile, `db-password ${file} ${userInfo().username} ${group} ${mode}\n`);
  return manifestFile;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'seed-secrets-'));
  // Cached after the first run, which builds sops (~10 minutes).
  tools = await secretsToolsDir();
  await agent().ensure(web);
  await agent().ensure(other);
}, 1_200_000);

afterAll(async () => {
  await stopSwtpms(agent(), [web, other]);
  await rm(dir, { recursive: true, force: true });
});

describe('seed-secrets on an swtpm', () => {
  let recipient: string;
  let encrypted: string;

  it('creates the identity in the TPM once and prints its recipient', async () => {
    const first = seedSecrets(web, ['recipient']);
    expect(first).toMatchObject({ code: 0, stdout: expect.stringMatching(/^age1[0-9a-z]{58}$/) });
    recipient = first.stdout;
    expect(seedSecrets(web, ['recipient']).stdout).toBe(recipient);
    encrypted = await encryptTo(tools, recipient, dir);
    expect(readFileSync(encrypted, 'utf8')).not.toContain('correct horse');
  });

  it('decrypts to the secrets directory with the owner and mode asked', () => {
    const result = seedSecrets(web, ['install', manifest(encrypted)]);
    expect(result).toMatchObject({ code: 0, stdout: '' });
    const target = path.join(dir, 'secrets-web', 'db-password');
    expect(readFileSync(target, 'utf8')).toBe(PLAINTEXT);
    expect(statSync(target).mode & 0o777).toBe(0o440);
    expect(result.stderr).not.toContain('correct horse');
  });

  it('keeps the identity when the agent restarts', async () => {
    const adopted = await agent().ensure(web);
    expect(adopted.how).toBe('adopted');
    expect(seedSecrets(web, ['recipient']).stdout).toBe(recipient);
  });

  it("attack: another instance's TPM cannot decrypt a secret, and says which file", () => {
    expect(seedSecrets(other, ['recipient']).stdout).not.toBe(recipient);
    const result = seedSecrets(other, ['install', manifest(encrypted)]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `seed-secrets: secret db-password: cannot decrypt ${encrypted}`,
    );
    // Nothing half-written is left behind.
    expect(readdirSync(path.join(dir, 'secrets-other'))).toEqual([]);
    // The same message for Kubernetes, and no plaintext in it.
    expect(failure(other)).toBe(result.stderr);
    expect(failure(other)).not.toContain('correct horse');
  });

  it('a missing secret fails, naming the file; an install that succeeds clears the failure', () => {
    const missing = path.join(dir, 'nowhere.yaml');
    const result = seedSecrets(web, ['install', manifest(missing)]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`seed-secrets: secret db-password: ${missing} does not exist\n`);
    expect(failure(web)).toBe(result.stderr);
    expect(seedSecrets(web, ['install', manifest(encrypted)]).code).toBe(0);
    expect(failure(web)).toBeUndefined();
  });

  it('a TPM without an identity refuses to install rather than make a new one', async () => {
    const fresh: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'fresh' };
    await agent().ensure(fresh);
    try {
      const result = seedSecrets(fresh, ['install', manifest(encrypted)]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('holds no identity');
      expect(existsSync(path.join(dir, 'secrets-fresh', 'db-password'))).toBe(false);
    } finally {
      await stopSwtpms(agent(), [fresh]);
    }
  });
});
