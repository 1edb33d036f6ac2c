import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** Not spawnSync: one test starts the TPM while the program waits for it. */
async function seedSecrets(instance: InstanceKey, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn('sh', [SEED_SECRETS_PROGRAM, ...args], {
    env: {
      PATH: `${tools}:${process.env.PATH ?? ''}`,
      HOME: dir,
      TPM2TOOLS_TCTI: `swtpm:path=${agent().paths(instance).data}`,
      SEED_SECRETS_DIR: path.join(dir, `secrets-${instance.name}`),
      SEED_SECRETS_FAILURE: failureFile(instance),
      ...env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout: stdout.trim(), stderr };
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
    const first = await seedSecrets(web, ['recipient']);
    expect(first).toMatchObject({ code: 0, stdout: expect.stringMatching(/^age1[0-9a-z]{58}$/) });
    recipient = first.stdout;
    expect((await seedSecrets(web, ['recipient'])).stdout).toBe(recipient);
    encrypted = await encryptTo(tools, recipient, dir);
    expect(readFileSync(encrypted, 'utf8')).not.toContain('correct horse');
  });

  it('decrypts to the secrets directory with the owner and mode asked', async () => {
    const result = await seedSecrets(web, ['install', manifest(encrypted)]);
    expect(result).toMatchObject({ code: 0, stdout: '' });
    const target = path.join(dir, 'secrets-web', 'db-password');
    expect(readFileSync(target, 'utf8')).toBe(PLAINTEXT);
    expect(statSync(target).mode & 0o777).toBe(0o440);
    expect(result.stderr).not.toContain('correct horse');
  });

  it('keeps the identity when the agent restarts', async () => {
    const adopted = await agent().ensure(web);
    expect(adopted.how).toBe('adopted');
    expect((await seedSecrets(web, ['recipient'])).stdout).toBe(recipient);
  });

  it("attack: another instance's TPM cannot decrypt a secret, and says which file", async () => {
    expect((await seedSecrets(other, ['recipient'])).stdout).not.toBe(recipient);
    const result = await seedSecrets(other, ['install', manifest(encrypted)]);
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

  it('a missing secret fails, naming the file; an install that succeeds clears the failure', async () => {
    const missing = path.join(dir, 'nowhere.yaml');
    const result = await seedSecrets(web, ['install', manifest(missing)]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`seed-secrets: secret db-password: ${missing} does not exist\n`);
    expect(failure(web)).toBe(result.stderr);
    expect((await seedSecrets(web, ['install', manifest(encrypted)])).code).toBe(0);
    expect(failure(web)).toBeUndefined();
  });

  it('a TPM without an identity refuses to install rather than make a new one', async () => {
    const fresh: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'fresh' };
    await agent().ensure(fresh);
    try {
      const result = await seedSecrets(fresh, ['install', manifest(encrypted)]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('holds no identity');
      expect(existsSync(path.join(dir, 'secrets-fresh', 'db-password'))).toBe(false);
    } finally {
      await stopSwtpms(agent(), [fresh]);
    }
  });

  // A TPM that did not answer once read as one without an identity: `seed up` failed with
  // "holds no identity" while the VMM behind the TPM was merely slow.
  it('names a TPM that does not answer, for both commands, rather than a missing identity', async () => {
    const absent: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'absent' };
    for (const args of [['recipient'], ['install', manifest(encrypted)]]) {
      const result = await seedSecrets(absent, args, { SEED_SECRETS_TPM_WAIT: '1' });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^seed-secrets: the TPM does not answer \(swtpm:path=\S+\): Could not load tcti/,
      );
      expect(result.stderr).not.toContain('identity');
      expect(failure(absent)).toBe(result.stderr);
    }
  });

  it('waits for a TPM that comes up after it starts', async () => {
    const late: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'late' };
    const asked = seedSecrets(late, ['recipient']);
    await sleep(1_500);
    await agent().ensure(late);
    try {
      expect(await asked).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(/^age1[0-9a-z]{58}$/),
      });
    } finally {
      await stopSwtpms(agent(), [late]);
    }
  });
});
