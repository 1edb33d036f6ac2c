// nix-snapshotter images made outside nix builds: the sandbox image of a node, and the
// images tests run. An image is an OCI archive whose one layer names the store paths of
// its closure (nix-snapshotter bind-mounts them from the node's store), made by
// nix-snapshotter's own nix2container.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NixImageSpec {
  /** Every store path the container needs (a closure: nothing else is mounted). */
  closure: string[];
  /** OCI image config (`Entrypoint`, `Cmd`, `Env`, `WorkingDir`...). */
  config: Record<string, unknown>;
  /** Name inside the archive; default `nix:0<archive path>:latest`, as nix2container does. */
  reference?: string;
}

/** Writes the OCI archive of an image to `out`. */
export async function writeNixImage(
  nix2container: string,
  spec: NixImageSpec,
  out: string,
): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'seed-nix-image-'));
  try {
    const file = (name: string): string => path.join(work, name);
    await Promise.all([
      writeFile(file('config.json'), JSON.stringify(spec.config)),
      writeFile(file('closure'), spec.closure.map((storePath) => `${storePath}\n`).join('')),
      writeFile(file('copy-to-root.json'), '[]'),
    ]);
    await run(nix2container, [
      'build',
      '--config',
      file('config.json'),
      '--closure',
      file('closure'),
      '--copy-to-root',
      file('copy-to-root.json'),
      ...(spec.reference ? ['--ref', spec.reference] : []),
      out,
    ]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Builds an image the way a flake's image derivation does: nix2container writes the
 * archive to the derivation's `$out`, so the name inside it is `nix:0$out:latest`, the
 * very reference a pod runs (nix-snapshotter loads the archive under that name). The
 * closure's paths must already be in the store (`addToStore`). Returns the image reference.
 */
export async function buildNixImage(
  nix2container: string,
  name: string,
  spec: Omit<NixImageSpec, 'reference'>,
): Promise<string> {
  const script = [
    `printf %s '${JSON.stringify(spec.config)}' > config.json`,
    `printf '%s\\n' ${spec.closure.join(' ')} > closure`,
    "echo '[]' > copy-to-root.json",
    `${nix2container} build --config config.json --closure closure --copy-to-root copy-to-root.json "$out"`,
  ].join(' && ');
  // builtins.storePath gives the derivation the closure's paths as its inputs.
  const expression = `derivation {
    name = ${JSON.stringify(name)};
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" ${JSON.stringify(script)} ];
    closure = map builtins.storePath (builtins.fromJSON ${JSON.stringify(JSON.stringify(spec.closure))});
  }`;
  const { stdout } = await run(
    'nix',
    ['build', '--impure', '--no-link', '--json', '--expr', expression],
    {
      env: {
        ...process.env,
        NIX_USER_CONF_FILES: process.env.NIX_USER_CONF_FILES ?? '/etc/seed/nix.conf',
      },
    },
  );
  const out = (JSON.parse(stdout) as { outputs: { out: string } }[])[0]!.outputs.out;
  return `nix:0${out}`;
}

/** Adds a file or folder to the nix store as is; returns its store path. */
export async function addToStore(source: string): Promise<string> {
  const { stdout } = await run('nix-store', ['--add', source]);
  return stdout.trim();
}

/** Loads an archive into containerd's CRI namespace, under the name it carries. */
export async function loadNixImage(
  nix2container: string,
  containerdSocket: string,
  archive: string,
): Promise<void> {
  await run(nix2container, [
    '--address',
    containerdSocket,
    '--namespace',
    'k8s.io',
    'load',
    archive,
  ]);
}
