import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManagedProcess, waitFor } from './managed-process';

/** Where scripts/setup installs deploy/nix-daemon.conf. */
export const NIX_DAEMON_CONF = '/etc/seed/nix-daemon.conf';

export interface NixDaemonOptions {
  /** The daemon's settings; `SEED_NIX_DAEMON_CONF`, else NIX_DAEMON_CONF. */
  confFile?: string;
  /** Host paths every sandboxed build also sees (`extra-sandbox-paths`), for tests' probes. */
  extraSandboxPaths?: readonly string[];
  /** The folder its store, socket and log go under; a new temporary one by default. */
  dir?: string;
}

export interface LocalNixDaemon {
  /**
   * What clients pass as `--store`: the daemon's socket, with `root` naming the chroot
   * store, so a client (which evaluates itself) reads store paths where they really are.
   */
  storeUrl: string;
  /** The chroot store: paths `/nix/store/…` live under `<storeRoot>/nix/store/…`. */
  storeRoot: string;
  socketPath: string;
  /** The daemon's pid; its builds run in processes it forks. */
  pid: number | undefined;
  logTail(): Promise<string>;
  /** Stops the daemon and removes its store (when it made the folder). */
  dispose(): Promise<void>;
}

/**
 * A real `nix-daemon` (Debian's nix-bin) owning a chroot store of its own, listening on a
 * socket of its own, with Seed's daemon settings: sandboxed builds as nixbld users. The
 * node's `/nix` and any other daemon are untouched.
 */
export async function startNixDaemon(options: NixDaemonOptions = {}): Promise<LocalNixDaemon> {
  const confFile = options.confFile ?? process.env.SEED_NIX_DAEMON_CONF ?? NIX_DAEMON_CONF;
  if (!existsSync(confFile)) {
    throw new Error(`no ${confFile}: run scripts/setup (it installs deploy/nix-daemon.conf)`);
  }
  const owned = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(path.join(tmpdir(), 'seed-nix-daemon-')));
  // Sandboxed builds run as nixbld users: they must reach the store through the folder.
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const storeRoot = path.join(dir, 'store');
  const socketPath = path.join(dir, 'daemon.socket');
  const confDir = path.join(dir, 'conf');
  await mkdir(confDir, { recursive: true });
  const extra = options.extraSandboxPaths ?? [];
  await writeFile(
    path.join(confDir, 'nix.conf'),
    `include ${confFile}\n${extra.length === 0 ? '' : `extra-sandbox-paths = ${extra.join(' ')}\n`}`,
  );
  const daemon = ManagedProcess.spawn('nix-daemon', ['--store', storeRoot], dir, 'nix-daemon', {
    PATH: process.env.PATH,
    // Only its own nix.conf: neither the system's nor any user's.
    NIX_CONF_DIR: confDir,
    NIX_USER_CONF_FILES: '',
    NIX_DAEMON_SOCKET_PATH: socketPath,
  });
  try {
    await waitFor('nix-daemon', daemon, Date.now() + 10_000, async () =>
      (await stat(socketPath)).isSocket(),
    );
  } catch (error) {
    await daemon.kill();
    if (owned) await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    storeUrl: `unix://${socketPath}?root=${storeRoot}`,
    storeRoot,
    socketPath,
    pid: daemon.pid,
    logTail: () => daemon.logTail(),
    dispose: async () => {
      await daemon.stop(5_000);
      // Store paths are read-only (0444/0555): make them removable first.
      if (owned) await removeStore(dir);
    },
  };
}

async function removeStore(dir: string): Promise<void> {
  await new Promise<void>((resolve) => {
    execFile('chmod', ['-R', 'u+w', dir], () => resolve());
  });
  await rm(dir, { recursive: true, force: true });
}
