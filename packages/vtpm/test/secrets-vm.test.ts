import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { VtpmStore, type InstanceKey } from '../src';
import {
  PLAINTEXT,
  SEED_SECRETS,
  encryptTo,
  scriptOutput,
  secretsTools,
  stopSwtpms,
} from './secrets-kit';

// End to end: the agent's swtpm attached to a real QEMU VM (the shoot guest's kernel,
// q35 with a TIS TPM, under TCG), the activation program run inside it.
const web: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'web' };
const other: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'other' };

let dir: string;
let tools: string;
let kernel: string;
const agent = (): VtpmStore =>
  new VtpmStore({ root: path.join(dir, 'tpms'), swtpm: 'swtpm', graceMs: 60_000, now: () => 0 });

/**
 * The guest's root: static busybox, age-keygen and sops, Debian's tpm2 with the
 * libraries it loads (the device TCTI is dlopen'ed), and seed-secrets.
 */
function buildRoot(root: string): void {
  for (const sub of ['bin', 'dev', 'proc', 'sys', 'run', 'tmp', 'etc', 'root', 'job', 'lib64']) {
    mkdirSync(path.join(root, sub), { recursive: true });
  }
  copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n')) {
    if (applet !== '' && applet !== 'busybox')
      symlinkSync('busybox', path.join(root, 'bin', applet));
  }
  for (const tool of ['age-keygen', 'sops'])
    copyFileSync(path.join(tools, tool), path.join(root, 'bin', tool));
  copyFileSync(SEED_SECRETS, path.join(root, 'bin', 'seed-secrets'));
  const tpm2 = realpathSync(
    execFileSync('sh', ['-c', 'command -v tpm2'], { encoding: 'utf8' }).trim(),
  );
  copyFileSync(tpm2, path.join(root, 'bin', 'tpm2'));
  for (const tool of [
    'createprimary',
    'create',
    'load',
    'evictcontrol',
    'flushcontext',
    'readpublic',
    'unseal',
  ]) {
    symlinkSync('tpm2', path.join(root, 'bin', `tpm2_${tool}`));
  }
  const device = '/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0';
  for (const binary of [tpm2, device]) {
    const ldd = execFileSync('ldd', [binary], { encoding: 'utf8' });
    for (const library of [binary === device ? device : '', ...(ldd.match(/\/[^ ]+/g) ?? [])]) {
      if (library === '' || library === tpm2) continue;
      const target = path.join(root, library);
      mkdirSync(path.dirname(target), { recursive: true });
      copyFileSync(realpathSync(library), target);
    }
  }
  writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\n');
  writeFileSync(
    path.join(root, 'init'),
    `#!/bin/sh
export PATH=/bin HOME=/root TPM2TOOLS_TCTI=device:/dev/tpmrm0
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
echo "@@begin"
case $(cat /job/mode) in
  recipient) seed-secrets recipient ;;
  install) seed-secrets install /job/manifest && cat /run/secrets/db-password ;;
esac
echo "@@exit $?"
reboot -f
`,
  );
  chmodSync(path.join(root, 'init'), 0o755);
}

/** Boots the VM on `instance`'s TPM with a job; resolves with what the guest printed. */
async function boot(
  instance: InstanceKey,
  job: Record<string, string>,
): Promise<{ exit: number; output: string }> {
  const { ctrlSocket } = await agent().ensure(instance);
  const root = path.join(dir, 'root');
  for (const [name, content] of Object.entries(job))
    writeFileSync(path.join(root, 'job', name), content);
  const initrd = path.join(dir, 'initrd.cpio');
  execFileSync('sh', [
    '-c',
    `cd ${root} && find . | /bin/busybox cpio -o -H newc > ${initrd} 2>/dev/null`,
  ]);
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
  // A guest that never reaches its `reboot -f` must not hold the run: it fails below.
  const guard = setTimeout(() => qemu.kill('SIGKILL'), BOOT_LIMIT_MS);
  await new Promise((resolve) => qemu.once('exit', resolve));
  clearTimeout(guard);
  const text = console.replace(/\r/g, '');
  const match = /@@begin\n([\s\S]*)@@exit (\d+)/.exec(text);
  if (match === null) throw new Error(`the guest printed no result:\n${text.slice(-2000)}`);
  return { output: match[1] ?? '', exit: Number(match[2]) };
}

/** Under TCG on a busy 2-core machine a boot took ~25 s; a hang, not slowness, passes this. */
const BOOT_LIMIT_MS = 180_000;
const TEST_TIMEOUT_MS = 2 * BOOT_LIMIT_MS + 60_000;

const MANIFEST = 'db-password /job/db-password.enc.yaml root root 0400\n';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'secrets-vm-'));
  // Cached after the first run; the first builds sops (~10 minutes) and the guest kernel.
  tools = secretsTools();
  kernel = path.join(scriptOutput('guest-image'), 'vmlinux');
  buildRoot(path.join(dir, 'root'));
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

      encrypted = encryptTo(tools, recipient, dir);
      const installed = await boot(web, {
        mode: 'install',
        manifest: MANIFEST,
        'db-password.enc.yaml': readFileSync(encrypted, 'utf8'),
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
      const again = await boot(web, { mode: 'install', manifest: MANIFEST });
      expect(again).toEqual({ exit: 0, output: PLAINTEXT });
      expect((await boot(web, { mode: 'recipient' })).output.trim()).toBe(recipient);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "attack: another instance's TPM cannot decrypt it",
    async () => {
      expect((await boot(other, { mode: 'recipient' })).output.trim()).not.toBe(recipient);
      const refused = await boot(other, { mode: 'install', manifest: MANIFEST });
      expect(refused.exit).toBe(1);
      expect(refused.output).toContain(
        'seed-secrets: secret db-password: cannot decrypt /job/db-password.enc.yaml',
      );
      expect(refused.output).not.toContain('correct horse');
    },
    TEST_TIMEOUT_MS,
  );
});
