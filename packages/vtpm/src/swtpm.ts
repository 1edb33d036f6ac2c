import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

/**
 * Where one TPM lives. `dir` is 0700 and never shared with a VM: the VMM gets only the
 * control socket, over which it hands swtpm the data channel (QEMU's `-tpmdev emulator`,
 * Kata's `tpm_socket`).
 */
export interface TpmPaths {
  dir: string;
  /** The TPM's NVRAM (seeds, persistent keys, NV indices). */
  state: string;
  /** For the VMM: `-chardev socket,path=<ctrl>` + `-tpmdev emulator`. */
  ctrl: string;
  /**
   * The host's own data channel, for tpm2-tools (`TPM2TOOLS_TCTI=swtpm:path=<data>`,
   * which finds the control socket at `<data>.ctrl`), only with `hostChannel`: swtpm
   * then refuses the VMM's CMD_SET_DATAFD, so a TPM meant for a VM never has one.
   */
  data: string;
  pidfile: string;
  log: string;
}

export function tpmPaths(dir: string): TpmPaths {
  return {
    dir,
    state: path.join(dir, 'state'),
    ctrl: path.join(dir, 'tpm.sock.ctrl'),
    data: path.join(dir, 'tpm.sock'),
    pidfile: path.join(dir, 'swtpm.pid'),
    log: path.join(dir, 'swtpm.log'),
  };
}

export class SwtpmError extends Error {
  override readonly name = 'SwtpmError';
}

/**
 * Starts swtpm (TPM 2.0) on `paths`, detached so that it outlives this process: restarting
 * the agent must never reset a TPM. Resolves with its pid once its control channel answers.
 * `hostChannel` adds the data socket for tpm2-tools on the host (tests, diagnosis).
 */
export async function startSwtpm(
  binary: string,
  paths: TpmPaths,
  hostChannel = false,
): Promise<number> {
  const logFd = openSync(paths.log, 'a', 0o600);
  const child = spawn(
    binary,
    [
      'socket',
      '--tpm2',
      '--tpmstate',
      `dir=${paths.state},mode=0600`,
      '--ctrl',
      `type=unixio,path=${paths.ctrl},mode=0600`,
      ...(hostChannel ? ['--server', `type=unixio,path=${paths.data},mode=0600`] : []),
      '--pid',
      `file=${paths.pidfile}`,
      // The VMM's CMD_INIT and the guest's TPM2_Startup still come; these let the
      // host's own probes work on a TPM no VM has opened yet.
      '--flags',
      'not-need-init,startup-clear',
    ],
    { detached: true, stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(new SwtpmError(`cannot run ${binary}: ${error.message}`)),
    );
    child.once('exit', (code, signal) => {
      void readFile(paths.log, 'utf8').then(
        (log) =>
          reject(
            new SwtpmError(
              `swtpm for ${paths.dir} exited (${signal ?? `code ${code}`}): ${log.trim().split('\n').slice(-3).join(' | ')}`,
            ),
          ),
        () => reject(new SwtpmError(`swtpm for ${paths.dir} exited (${signal ?? `code ${code}`})`)),
      );
    });
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) return exited;
  await Promise.race([waitForControl(paths.ctrl), exited]);
  child.removeAllListeners('exit');
  return pid;
}

async function waitForControl(ctrl: string): Promise<void> {
  // swtpm creates the socket a moment after it starts; the caller's race against its
  // exit ends this loop when it cannot start at all.
  for (;;) {
    try {
      await controlCapabilities(ctrl);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** swtpm's control protocol: a 4-byte big-endian command, answered by a result code. */
const CMD_GET_CAPABILITY = 1;

/**
 * Asks the control channel for swtpm's capabilities: proof that the TPM answers. Only
 * before a VM attaches: the VMM then holds the channel (one client at a time) and a probe
 * would wait behind it.
 */
export function controlCapabilities(ctrl: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(ctrl);
    let answer = Buffer.alloc(0);
    socket.once('connect', () => {
      const request = Buffer.alloc(4);
      request.writeUInt32BE(CMD_GET_CAPABILITY);
      socket.write(request);
    });
    socket.on('data', (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      if (answer.length < 8) return;
      socket.destroy();
      const result = answer.readUInt32BE(0);
      if (result !== 0) reject(new SwtpmError(`swtpm at ${ctrl} answered result ${result}`));
      else resolve(answer.readUInt32BE(4));
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new SwtpmError(`swtpm at ${ctrl} closed without answering`)));
  });
}

/**
 * The pid of the swtpm serving `paths`, if one runs: the pidfile's pid, and only if that
 * process is swtpm on this very state directory (a pid can be reused after a reboot).
 */
export async function runningSwtpm(paths: TpmPaths): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number.parseInt(await readFile(paths.pidfile, 'utf8'), 10);
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const serves = argv.some((arg) => arg.startsWith(`dir=${paths.state},`));
    return path.basename(argv[0] ?? '') === 'swtpm' && serves ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops an swtpm and waits for it to be gone, so its state can be removed. */
export async function stopSwtpm(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  // A detached child of this process stays a zombie (its /proc entry says Z) until Node
  // reaps it; either way it no longer holds the state.
  for (;;) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return;
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
