// What `seed up` shows of Seed's secrets (docs/secrets.md): the example instance's age
// recipient, as `seed keys` prints it, a secret encrypted to it with sops on the host, and
// that secret decrypted in a QEMU VM with the instance's own swtpm attached, by the
// activation program nix/modules/secrets.nix installs.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AGE_RECIPIENT, type TpmReport } from '@seed/contracts';
import { SecretsVm, secretsToolsDir, sopsEncrypt } from '@seed/local-parts';

/** The secret `seed up` makes up; the example's api names it in `seed.secrets`. */
const SECRET = 'greeting';

export interface SecretsReport {
  instance: string;
  /** The node holding the instance's TPM and the swtpm control socket there. */
  node: string;
  ctrlSocket: string;
  /** What `seed keys <flake> <instance>` prints. */
  recipient: string;
  secret: string;
  encryptedBytes: number;
  /** sha256 of the plaintext, computed on the host; the guest printed the same. */
  sha256: string;
  /** Wall time of each part: sops on the host, the guest's root, the VM's boot and run. */
  ms: { encrypt: number; prepare: number; vm: number };
}

/**
 * The instance's TPM, once its node's agent has placed it and recorded its recipient (the
 * checks `seed keys` makes, apps/cli/src/keys/instance-keys.ts); undefined until then.
 */
export function placedTpm(
  report: TpmReport,
): { node: string; ctrlSocket: string; recipient: string } | undefined {
  const { node, ctrlSocket, recipient } = report;
  if (node === undefined || ctrlSocket === undefined || recipient === undefined) return undefined;
  if (!AGE_RECIPIENT.test(recipient))
    throw new Error(`the recorded recipient is not an age recipient: ${JSON.stringify(recipient)}`);
  return { node, ctrlSocket, recipient };
}

/**
 * Encrypts a new secret to `tpm.recipient` with sops, as a developer would, and decrypts it
 * in a VM attached to the instance's swtpm with `seed-secrets install`. The guest prints
 * only the installed file's digest, and the plaintext file on the host is gone before the
 * VM boots: nothing decrypted reaches a log or this report.
 */
export async function decryptInVm(
  instance: string,
  tpm: { node: string; ctrlSocket: string; recipient: string },
  dir: string,
): Promise<SecretsReport> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const plaintext = `${SECRET}: ${randomBytes(16).toString('hex')}\n`;
  const plainFile = path.join(dir, `${SECRET}.yaml`);
  let started = Date.now();
  const tools = await secretsToolsDir();
  await writeFile(plainFile, plaintext, { mode: 0o600 });
  const encrypted = await sopsEncrypt(tools, tpm.recipient, plainFile).finally(() =>
    rm(plainFile, { force: true }),
  );
  const encrypt = Date.now() - started;

  started = Date.now();
  const vmDir = path.join(dir, 'vm');
  await mkdir(vmDir);
  const vm = await SecretsVm.prepare(vmDir);
  const prepare = Date.now() - started;

  started = Date.now();
  const result = await vm.run(tpm.ctrlSocket, {
    mode: 'install',
    manifest: `${SECRET} /job/${SECRET}.enc.yaml root root 0400\n`,
    files: { [`${SECRET}.enc.yaml`]: encrypted },
    digests: true,
  });
  const booted = Date.now() - started;

  const sha256 = createHash('sha256').update(plaintext).digest('hex');
  if (result.exit !== 0 || result.output.trim() !== `${sha256}  ${SECRET}`) {
    throw new Error(
      `seed-secrets in the VM with ${instance}'s TPM exited ${result.exit}: ${result.failure ?? result.output.trim()}`,
    );
  }
  return {
    instance,
    ...tpm,
    secret: SECRET,
    encryptedBytes: Buffer.byteLength(encrypted),
    sha256,
    ms: { encrypt, prepare, vm: booted },
  };
}
