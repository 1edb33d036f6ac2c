// nix/offline-image.nix on the real nix: a flake with no nixpkgs builds an image in
// nix-snapshotter's format (what `buildImage { resolvedByNix = true; }` makes) from the
// static busybox and nix2container scripts/flake-tools prepares. Skipped, with the reason
// printed, when those tools cannot be prepared (scripts/setup builds them).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

const execFileAsync = promisify(execFile);

const ROOT = path.resolve(__dirname, '../..');
const NIX_ENV = {
  ...process.env,
  NIX_USER_CONF_FILES: process.env.NIX_USER_CONF_FILES ?? '/etc/seed/nix.conf',
};

async function run(command: string, args: string[], timeout = 120_000): Promise<string> {
  const { stdout } = await execFileAsync(command, args, {
    env: NIX_ENV,
    maxBuffer: 64 * 1024 * 1024,
    timeout,
  });
  return stdout;
}

/** A member of the OCI archive, as text. */
const member = (archive: string, name: string): Promise<string> =>
  run('tar', ['-xOf', archive, name]);

/** The flake tools directory, or why there is none (errors of node's own modules are not `instanceof Error` under jest). */
async function toolsDir(): Promise<{ dir: string } | { reason: string }> {
  const override = process.env.SEED_FLAKE_TOOLS_DIR;
  if (override) return { dir: override };
  try {
    const stdout = await run(path.join(ROOT, 'scripts/flake-tools'), [], 30 * 60_000);
    const dir = stdout.trim().split('\n').pop();
    return dir ? { dir } : { reason: 'scripts/flake-tools printed nothing' };
  } catch (error) {
    return { reason: (error as { message?: string }).message ?? String(error) };
  }
}

const FLAKE = (tools: string): string => `{
  inputs.seed-tools = { url = ${JSON.stringify(`path:${tools}`)}; flake = false; };
  outputs = { self, seed-tools }:
    let
      offlineImage = import ./offline-image.nix { tools = seed-tools; };
      busybox = "\${seed-tools}/bin/busybox";
      run = name: script: derivation {
        inherit name; system = "x86_64-linux"; builder = busybox; args = [ "sh" "-c" script ];
      };
      data = run "demo-data" "echo data > $out";
      site = run "demo-site" "mkdir -p $out/www; echo \${data} > $out/www/index.html";
    in {
      image = offlineImage {
        name = "seed-demo";
        config.entrypoint = [ busybox "sh" "-c" "httpd -f -p 8080 -h /www" ];
        config.env = [ "MODE=demo" ];
        copyToRoot = site;
      };
      inherit data site;
    };
}
`;

interface OciIndex {
  manifests: { digest: string; annotations: Record<string, string> }[];
}
interface OciManifest {
  config: { digest: string };
  layers: { mediaType: string; digest: string; annotations: Record<string, string> }[];
}

describe('offlineImage', () => {
  let flakeDir: string;
  let built: { image: string; data: string; site: string } | undefined;

  beforeAll(async () => {
    const tools = await toolsDir();
    if ('reason' in tools) {
      console.warn(`skipping offlineImage tests: no flake tools (${tools.reason})`);
      return;
    }
    flakeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-offline-image-'));
    fs.writeFileSync(path.join(flakeDir, 'flake.nix'), FLAKE(tools.dir));
    fs.copyFileSync(
      path.join(ROOT, 'nix/offline-image.nix'),
      path.join(flakeDir, 'offline-image.nix'),
    );
    const outputs = ['image', 'data', 'site'].map((name) => `path:${flakeDir}#${name}`);
    const stdout = await run('nix', [
      'build',
      '--no-link',
      '--json',
      '--no-write-lock-file',
      ...outputs,
    ]);
    // nix prints the outputs in no particular order: tell them by name.
    const paths = (JSON.parse(stdout) as { outputs: { out: string } }[]).map((r) => r.outputs.out);
    const named = (suffix: string): string => paths.find((p) => p.endsWith(suffix))!;
    const [image, data, site] = [
      named('-nix-image-seed-demo.tar'),
      named('-demo-data'),
      named('-demo-site'),
    ];
    built = { image, data, site };
  }, 30 * 60_000);

  afterAll(() => {
    if (flakeDir) fs.rmSync(flakeDir, { recursive: true, force: true });
  });

  it('is an OCI archive whose reference is nix:0 and its own store path', async () => {
    if (!built) return;
    expect(path.basename(built.image)).toMatch(/^[a-z0-9]{32}-nix-image-seed-demo\.tar$/);
    const index = JSON.parse(await member(built.image, 'index.json')) as OciIndex;
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]!.annotations['io.containerd.image.name']).toBe(
      `nix:0${built.image}:latest`,
    );
  });

  it('has one layer annotated with a closure whose store-paths hold every path it needs', async () => {
    if (!built) return;
    const index = JSON.parse(await member(built.image, 'index.json')) as OciIndex;
    const blob = (digest: string): Promise<string> =>
      member(built!.image, `blobs/sha256/${digest.replace(/^sha256:/, '')}`);
    const manifest = JSON.parse(await blob(index.manifests[0]!.digest)) as OciManifest;
    expect(manifest.layers).toHaveLength(1);
    const layer = manifest.layers[0]!;
    expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const closureDir = layer.annotations['containerd.io/snapshot/nix-closure']!;
    expect(closureDir).toMatch(/^\/nix\/store\/[a-z0-9]{32}-closure-info-seed-demo$/);

    const storePaths = fs
      .readFileSync(path.join(closureDir, 'store-paths'), 'utf8')
      .trim()
      .split('\n');
    // Sorted, but for an empty directory at the end: containerd 2.4 views a container's
    // /etc through the last mount only, which must not be a file.
    const last = storePaths[storePaths.length - 1]!;
    expect(last).toMatch(/-seed-image-last-mount$/);
    expect(fs.readdirSync(last)).toEqual([]);
    expect(storePaths.slice(0, -1)).toEqual([...storePaths.slice(0, -1)].sort());
    expect(storePaths).toEqual(expect.arrayContaining([built.data, built.site]));
    expect(storePaths.some((p) => p.endsWith('-config-seed-demo.json'))).toBe(true);
    // The tools directory, whose busybox the entrypoint runs.
    expect(storePaths.filter((p) => fs.existsSync(path.join(p, 'bin/busybox')))).toHaveLength(1);
    // What the layer holds: a mount point per store path, and copyToRoot's files as links.
    await run('tar', ['-xf', built.image, '-C', flakeDir, `blobs/sha256/${layer.digest.slice(7)}`]);
    const listing = await run('tar', [
      '-tzf',
      path.join(flakeDir, 'blobs/sha256', layer.digest.slice(7)),
    ]);
    const entries = listing
      .trim()
      .split('\n')
      .map((entry) => entry.replace(/\/$/, ''));
    for (const storePath of storePaths) expect(entries).toContain(storePath.slice(1));
    expect(entries).toContain('www/index.html');

    const config = JSON.parse(await blob(manifest.config.digest)) as {
      architecture: string;
      os: string;
      config: { Entrypoint: string[]; Env: string[] };
    };
    expect(config.architecture).toBe('amd64');
    expect(config.os).toBe('linux');
    expect(config.config.Env).toEqual(['MODE=demo']);
    expect(config.config.Entrypoint.slice(1)).toEqual(['sh', '-c', 'httpd -f -p 8080 -h /www']);
    expect(storePaths).toContain(path.dirname(path.dirname(config.config.Entrypoint[0]!)));
  });
});
