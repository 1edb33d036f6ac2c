import { execFile } from 'node:child_process';
import { AGE_RECIPIENT } from '@seed/contracts';

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

/**
 * `createIdentity` for VtpmStore: runs the instance's own activation program,
 * `seed-secrets recipient` (nix/secrets/seed-secrets.sh), on the node against the TPM's
 * host data channel. It creates the sealed age identity at 0x81005eed exactly as the
 * instance would at its first activation, and prints the recipient; the instance later
 * finds the identity there and prints the same recipient. The private key passes only
 * through the program's pipe into the TPM. `path` must hold tpm2-tools and age-keygen.
 */
export function seedSecretsIdentity(
  program: string,
  path: string,
  timeoutMs = 60_000,
): (dataSocket: string) => Promise<string> {
  return (dataSocket) =>
    new Promise((resolve, reject) => {
      execFile(
        program,
        ['recipient'],
        {
          env: { PATH: path, TPM2TOOLS_TCTI: `swtpm:path=${dataSocket}` },
          timeout: timeoutMs,
          encoding: 'utf8',
        },
        (error, stdout, stderr) => {
          if (error) {
            reject(
              new IdentityError(`${program} recipient failed: ${stderr.trim() || error.message}`),
            );
            return;
          }
          const recipient = stdout.trim().split('\n').at(-1) ?? '';
          if (!AGE_RECIPIENT.test(recipient)) {
            reject(
              new IdentityError(
                `${program} recipient printed no age recipient: ${JSON.stringify(recipient)}`,
              ),
            );
            return;
          }
          resolve(recipient);
        },
      );
    });
}
