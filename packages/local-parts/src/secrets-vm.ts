// The instance side of Seed's secrets in a real VM: the activation program that
// nix/modules/secrets.nix installs (nix/secrets/seed-secrets.sh), run in a QEMU guest
// with an instance's swtpm attached, and the developer's `sops --encrypt` on the host.
// Shared by the end-to-end test (packages/vtpm) and `seed up`.
import { execFile, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The activation program nix/modules/secrets.nix installs; same path from src/ and dist/. */
export const SEED_SECRETS_PROGRAM = path.resolve(__dirname, '../../../nix/secrets/seed-secrets.sh');
const SCRIPTS = path.resolve(__dirname, '../../../scripts');

/** Where a failed install leaves its message in the guest, as secrets.nix sets it. */
const GUEST_FAILURE_FILE = '/run/seed/secrets-failed';

/** The directory a project script caches its output in: its last line of stdout. */
async function scriptOutput(script: string): Promise<string> {
  const { stdout } = await run(path.join(SCRIPTS, script), [], {
    maxBuffer: 16 * 1024 * 1024,
    // The first run builds (sops: about 10 minutes); later runs only check the cache.
    timeout: 60 * 60 * 1000,
  });
  const dir = stdout.trim().split('\n').pop();
  if (!dir) throw new Error(`scripts/${script} printed no directory`);
  return dir;
}

/** age, age-keygen and sops, static (scripts/secrets-tools). */
export const secretsToolsDir = (): Promise<string> => scriptOutput('secrets-tools');

/**
 * What the developer does on their machine: `sops --encrypt --age <recipient>` of
 * `plaintext`, the file they commit. sops picks the format from the name (`.yaml`).
 */
export async function sopsEncrypt(
  tools: string,
  recipient: string,
  plainFile: string,
): Promise<string> {
  const { stdout } = await run(
    path.join(tools, 'sops'),
    ['--encrypt', '--age', recipient, plainFile],
    { env: { PATH: process.env.PATH, HOME: path.dirname(plainFile) }, timeout: 60_000 },
  );
  return stdout;
}

/** What the guest does: create the identity and print its recipient, or install secrets. */
export type GuestJob =
  | { mode: 'recipient' }
  | {
      mode: 'install';
      /** `<name> <file> <owner> <group> <mode>` lines; files under /job. */
      manifest: string;
      /** Files to put under /job (the encrypted secrets), by name. */
      files?: Record<string, string>;
      /** Print each installed secret's sha256 rather than its content. */
      digests?: boolean;
    };

export interface GuestResult {
  /** seed-secrets' exit code in the guest. */
  exit: number;
  /** What it printed (stdout and stderr), then the installed secrets or their digests. */
  output: string;
  /** What it left in SEED_SECRETS_FAILURE for Kubernetes, when it failed. */
  failure?: string;
}

/** Under TCG on a busy 2-core machine a boot took ~25 s; a hang, not slowness, passes this. */
const BOOT_LIMIT_MS = 180_000;

/**
 * A guest root with static busybox, age-keygen and sops, Debian's tpm2 with the libraries
 * it loads (the device TCTI is dlopen'ed) and seed-secrets, booted on the shoot guest's
 * kernel (scripts/guest-image) with an swtpm's control socket as its TPM.
 */
export class SecretsVm {
  private constructor(
    private readonly dir: string,
    private readonly kernel: string,
  ) {}

  /** Builds the guest's root under `dir` (which must exist and be empty). */
  static async prepare(dir: string): Promise<SecretsVm> {
    const [tools, guest] = await Promise.all([secretsToolsDir(), scriptOutput('guest-image')]);
    await buildRoot(path.join(dir, 'root'), tools);
    return new SecretsVm(dir, path.join(guest, 'vmlinux'));
  }

  /** Boots the VM with the TPM behind `ctrlSocket` and runs `job`; resolves once it is off. */
  async run(ctrlSocket: string, job: GuestJob): Promise<GuestResult> {
    const root = path.join(this.dir, 'root');
    const jobDir = path.join(root, 'job');
    await rm(jobDir, { recursive: true, force: true });
    await mkdir(jobDir);
    const files: Record<string, string> =
      job.mode === 'recipient'
        ? { mode: 'recipient' }
        : {
            ...job.files,
            mode: job.digests ? 'install-digests' : 'install',
            manifest: job.manifest,
          };
    for (const [name, content] of Object.entries(files))
      await writeFile(path.join(jobDir, name), content);
    const initrd = path.join(this.dir, 'initrd.cpio');
    await run('sh', [
      '-c',
      'cd "$1" && find . | /bin/busybox cpio -o -H newc > "$2" 2>/dev/null',
      'sh',
      root,
      initrd,
    ]);
    const console = await bootQemu(this.kernel, initrd, ctrlSocket);
    const match = /@@begin\n([\s\S]*)@@exit (\d+)\n(?:@@failure\n([\s\S]*)@@end)?/.exec(console);
    if (match === null) throw new Error(`the guest printed no result:\n${console.slice(-2000)}`);
    return {
      output: match[1] ?? '',
      exit: Number(match[2]),
      ...(match[3] !== undefined && { failure: match[3] }),
    };
  }
}

async function bootQemu(kernel: string, initrd: string, ctrlSocket: string): Promise<string> {
  const qemu = spawn(
    'qemu-system-x86_64',
    [
      // TCG: this machine's /dev/kvm (nested) hangs a guest this size while loading it.
      ...['-machine', 'q35,accel=tcg', '-m', '1024', '-nographic', '-no-reboot', '-nodefaults'],
      ...['-serial', 'stdio', '-kernel', kernel, '-initrd', initrd],
      // The PVH-booted vmlinux finds QEMU's ACPI tables overwritten by the initrd, so the
      // TPM is probed at its fixed TIS address instead of through ACPI.
      ...[
        '-append',
        'console=ttyS0 quiet loglevel=0 panic=-1 acpi=off tpm_tis.force=1 tpm_tis.interrupts=0',
      ],
      ...['-chardev', `socket,id=chrtpm,path=${ctrlSocket}`],
      ...['-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', 'tpm-tis,tpmdev=tpm0'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let console = '';
  qemu.stdout.on('data', (chunk: Buffer) => (console += chunk.toString('utf8')));
  qemu.stderr.on('data', (chunk: Buffer) => (console += chunk.toString('utf8')));
  // A guest that never reaches its `reboot -f` must not hold the caller: no result then.
  const guard = setTimeout(() => qemu.kill('SIGKILL'), BOOT_LIMIT_MS);
  await new Promise((resolve) => qemu.once('exit', resolve));
  clearTimeout(guard);
  return console.replace(/\r/g, '');
}

const TPM2_TOOLS = [
  'createprimary',
  'create',
  'load',
  'evictcontrol',
  'flushcontext',
  'getcap',
  'unseal',
];
const DEVICE_TCTI = '/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0';

async function buildRoot(root: string, tools: string): Promise<void> {
  for (const sub of ['bin', 'dev', 'proc', 'sys', 'run', 'tmp', 'etc', 'root', 'job', 'lib64'])
    await mkdir(path.join(root, sub), { recursive: true });
  const bin = path.join(root, 'bin');
  await copyFile('/bin/busybox', path.join(bin, 'busybox'));
  const { stdout: applets } = await run('/bin/busybox', ['--list']);
  for (const applet of applets.split('\n')) {
    if (applet !== '' && applet !== 'busybox') await symlink('busybox', path.join(bin, applet));
  }
  for (const tool of ['age-keygen', 'sops'])
    await copyFile(path.join(tools, tool), path.join(bin, tool));
  await copyFile(SEED_SECRETS_PROGRAM, path.join(bin, 'seed-secrets'));
  const { stdout: found } = await run('sh', ['-c', 'command -v tpm2']);
  const tpm2 = await realpath(found.trim());
  await copyFile(tpm2, path.join(bin, 'tpm2'));
  for (const tool of TPM2_TOOLS) await symlink('tpm2', path.join(bin, `tpm2_${tool}`));
  for (const binary of [tpm2, DEVICE_TCTI]) {
    const { stdout: ldd } = await run('ldd', [binary]);
    const libraries = [binary === DEVICE_TCTI ? DEVICE_TCTI : '', ...(ldd.match(/\/[^ ]+/g) ?? [])];
    for (const library of libraries) {
      if (library === '' || library === tpm2) continue;
      const target = path.join(root, library);
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(await realpath(library), target);
    }
  }
  await writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\n');
  // SEED_SECRETS_FAILURE as secrets.nix sets it; a failure's record is printed after the
  // exit code, so the caller sees what Kubernetes would be told.
  await writeFile(
    path.join(root, 'init'),
    `#!/bin/sh
export PATH=/bin HOME=/root TPM2TOOLS_TCTI=device:/dev/tpmrm0
export SEED_SECRETS_FAILURE=${GUEST_FAILURE_FILE}
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
echo "@@begin"
case $(cat /job/mode) in
  recipient) seed-secrets recipient ;;
  install) seed-secrets install /job/manifest && cat /run/secrets/* ;;
  install-digests) seed-secrets install /job/manifest && cd /run/secrets && sha256sum * ;;
esac
echo "@@exit $?"
if [ -e $SEED_SECRETS_FAILURE ]; then echo "@@failure"; cat $SEED_SECRETS_FAILURE; echo "@@end"; fi
reboot -f
`,
  );
  await chmod(path.join(root, 'init'), 0o755);
}
