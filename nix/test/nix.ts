// What the tests under nix/test share: running the real nix on expressions, and the
// vendored nixpkgs lib that makes the module system available offline.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const ROOT = path.resolve(__dirname, '../..');
export const NIX_DIR = path.join(ROOT, 'nix');
export const META_NIX = path.join(NIX_DIR, 'meta.nix');
export const OFFLINE_NIX = path.join(NIX_DIR, 'offline.nix');
export const NIXPKGS_LIB_TARBALL = path.join(NIX_DIR, 'vendor', 'nixpkgs-lib-de42d44212d2.tar.gz');

export const NIX_ENV = {
  ...process.env,
  NIX_USER_CONF_FILES: process.env.NIX_USER_CONF_FILES ?? '/etc/seed/nix.conf',
};

/** A Nix string literal (JSON string syntax is valid Nix for these inputs). */
export const nixString = (value: string): string => JSON.stringify(value).replace(/\$\{/g, '\\${');

/**
 * nixpkgs' lib from the vendored tarball, as a Nix expression: the same lib the offline
 * flakes get as their `nixpkgs-lib` input (there it comes through the tarball's flake.nix,
 * which adds only version information to this).
 */
export const LIB = `(import "\${builtins.fetchTarball ${nixString(`file://${NIXPKGS_LIB_TARBALL}`)}}/lib")`;

export interface Output {
  stdout: string;
  stderr: string;
}

export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Output> {
  return execFileAsync(command, args, {
    env: options.env ?? NIX_ENV,
    cwd: options.cwd,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 60_000,
  });
}

/**
 * `nix-instantiate --eval --strict --json` of an expression; with `json`, the expression is
 * a function of `{ json }` and gets it as a string (how test data reaches Nix unescaped).
 */
export async function evalJson(expression: string, json?: string): Promise<unknown> {
  const args = ['--eval', '--strict', '--json', '--expr', expression];
  if (json !== undefined) args.push('--argstr', 'json', json);
  const { stdout } = await run('nix-instantiate', args);
  return JSON.parse(stdout) as unknown;
}

/** Runs nix-instantiate expecting it to fail; returns its stderr (null if it succeeded). */
export async function nixFailure(args: string[]): Promise<string | null> {
  try {
    await run('nix-instantiate', args);
    return null;
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    if (typeof stderr === 'string') return stderr;
    throw error;
  }
}

/** Runs `work` over `items`, at most `limit` at a time, keeping the order of results. */
export async function mapLimited<T, R>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The meta JSON of ARCHITECTURE.md, as meta.nix gives it. */
export interface Meta {
  name: string;
  system: string;
  size: string;
  resources: { vcpus: number; memory: number };
  expose: Record<string, { port: number; protocol: string }>;
  storage: Record<string, { size: string; mountPoint: string }>;
  connect: Record<string, { service: string; port: number | null }>;
  rollout: string;
  shoot: { enable: boolean };
  tpm: boolean;
}

export const TIERS: Record<string, { vcpus: number; memory: number }> = {
  xs: { vcpus: 1, memory: 512 },
  s: { vcpus: 1, memory: 1024 },
  m: { vcpus: 2, memory: 2048 },
  l: { vcpus: 4, memory: 4096 },
  xl: { vcpus: 8, memory: 8192 },
};

/** The meta of an instance called `web` with nothing declared, plus `changes`. */
export function metaOf(changes: Partial<Meta> = {}): Meta {
  const size = changes.size ?? 's';
  return {
    name: 'web',
    system: 'x86_64-linux',
    size,
    resources: TIERS[size] ?? { vcpus: 0, memory: 0 },
    expose: {},
    storage: {},
    connect: {},
    rollout: 'recreate',
    shoot: { enable: false },
    tpm: false,
    ...changes,
  };
}
