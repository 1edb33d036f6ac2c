// nix-snapshotter images made outside nix builds: the sandbox image of a node, and the
// images tests run. An image is an OCI archive whose one layer names the store paths of
// its closure (nix-snapshotter bind-mounts them from the node's store), made by
// nix-snapshotter's own nix2container.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Installed by scripts/setup (deploy/nix.conf). */
export const SEED_NIX_CONF = '/etc/seed/nix.conf';

export interface NixImageSpec {
  /** Every store path the container needs (a closure: nothing else is mounted). */
  closure: string[];
  /** OCI image config (`Entrypoint`, `Cmd`, `Env`, `WorkingDir`...). */
  config: Record<string, unknown>;
  /** Name inside the archive; default `nix:0$out:latest`, the reference a pod runs. */
  reference?: string;
}

/**
 * Builds an image the way a flake's image derivation does (nixpkgs' closureInfo, then
 * nix2container writing the archive to `$out`), with builtins only. The closure's paths
 * must already be in the store (`addToStore`). nix-snapshotter reads the closure list
 * from the store path that holds it, so it must be a derivation's output too. Returns the
 * archive's store path: the image is `nix:0<path>`.
 */
export async function buildNixImage(
  nix2container: string,
  name: string,
  spec: NixImageSpec,
): Promise<string> {
  const nixString = (value: string): string => JSON.stringify(value).replace(/\$\{/g, '\\${');
  const closureScript = `mkdir $out && printf '%s\\n' ${spec.closure.join(' ')} > $out/store-paths`;
  const imageScript = [
    // From the derivation's environment: a config may hold any character (a quote in an
    // entrypoint's script), which no shell quoting here should have to survive.
    'printf %s "$imageConfig" > config.json',
    "echo '[]' > copy-to-root.json",
    [
      nix2container,
      'build --config config.json --closure "$closureInfo/store-paths" --copy-to-root copy-to-root.json',
      ...(spec.reference ? [`--ref ${spec.reference}`] : []),
      '"$out"',
    ].join(' '),
  ].join(' && ');
  // The host's coreutils: these images are made for a local node, whose nix builds run
  // without the sandbox (deploy/nix.conf).
  const expression = `let
    PATH = "/usr/bin:/bin";
    closure = map builtins.storePath (builtins.fromJSON ${nixString(JSON.stringify(spec.closure))});
    closureInfo = derivation {
      name = ${nixString(`${name}-closure`)};
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" ${nixString(closureScript)} ];
      inherit closure PATH;
    };
  in derivation {
    name = ${nixString(name)};
    imageConfig = ${nixString(JSON.stringify(spec.config))};
    inherit closureInfo PATH;
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" ${nixString(imageScript)} ];
  }`;
  const { stdout } = await run(
    'nix',
    ['build', '--impure', '--no-link', '--json', '--expr', expression],
    {
      env: {
        ...process.env,
        NIX_USER_CONF_FILES: process.env.NIX_USER_CONF_FILES ?? SEED_NIX_CONF,
      },
    },
  );
  return (JSON.parse(stdout) as { outputs: { out: string } }[])[0]!.outputs.out;
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
