// deploy/nixos/seed-node.nix cannot be evaluated here (no nixpkgs offline): check that it
// parses, and that it is the module the manifests assume.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { DEPLOY_DIR, loadManifests } from './manifests';

const run = promisify(execFile);
const MODULE = path.join(DEPLOY_DIR, 'nixos', 'seed-node.nix');
const source = readFileSync(MODULE, 'utf8');

describe('deploy/nixos/seed-node.nix', () => {
  it('parses', async () => {
    const { stdout } = await run('nix-instantiate', ['--parse', MODULE], {
      env: { ...process.env, NIX_USER_CONF_FILES: '/etc/seed/nix.conf' },
      timeout: 60_000,
    });
    // A module is a function of the module arguments.
    expect(stdout).toMatch(/^\(?\{ config, lib, pkgs, \.\.\. \}:/);
  });

  it('declares services.seed-node.enable and sets up k3s', () => {
    expect(source).toContain('options.services.seed-node');
    expect(source).toContain('enable = lib.mkEnableOption');
    expect(source).toContain('services.k3s');
  });

  it('registers the runtime handler the kata RuntimeClass names', () => {
    const runtimeClass = loadManifests().find((m) => m.kind === 'RuntimeClass');
    expect(runtimeClass).toMatchObject({ metadata: { name: 'kata' }, handler: 'kata' });
    expect(source).toMatch(/runtimes\.kata = \{/);
    expect(source).toContain('runtime_type = "io.containerd.kata.v2"');
  });

  it('lets the sizing annotations k8s-model renders through to Kata', () => {
    expect(source).toContain('"default_vcpus"');
    expect(source).toContain('"default_memory"');
    expect(source).toContain(
      'pod_annotations = map (a: "io.katacontainers.config.hypervisor.${a}") vmAnnotations',
    );
    expect(source).toContain('enable_annotations');
  });

  it('lets the TPM socket annotation through only for a Kata build that takes it', () => {
    // The reconciler renders this annotation on instances with secrets (k8s-model, tpm.ts).
    expect(source).toContain('lib.optional cfg.kata.tpm.enable "tpm_socket"');
    expect(source).toContain('kata-containers pull request 12641');
    expect(source).toMatch(
      /assertion = !cfg\.kata\.tpm\.enable \|\| \(cfg\.kata\.hypervisor == "clh" && cfg\.kata\.tpm\.kernel != null\)/,
    );
  });

  it('opens the shoot pool port the DaemonSet listens on to the pod network', () => {
    const daemonSet = loadManifests().find((m) => m.kind === 'DaemonSet');
    const env = (
      daemonSet as unknown as {
        spec: { template: { spec: { containers: { env: { name: string; value: string }[] }[] } } };
      }
    ).spec.template.spec.containers[0]!.env;
    const port = env.find((v) => v.name === 'SEED_SHOOT_PORT')?.value;
    expect(port).toBe('7070');
    expect(source).toMatch(new RegExp(`shootPool\\.ports[\\s\\S]*?default = \\[\\s*${port}\\b`));
  });

  it('lets nix-snapshotter substitute from the builder cache alone, trusting only its key', () => {
    const service = loadManifests().find(
      (m) => m.kind === 'Service' && m.metadata.name === 'builder-cache',
    ) as unknown as { spec: { ports: { nodePort: number }[] } };
    const nodePort = service.spec.ports[0]!.nodePort;
    expect(source).toMatch(new RegExp(`example = "http://[0-9.]+:${nodePort}/nix-cache"`));
    for (const line of [
      '"substituters = ${cfg.binaryCache.url}"',
      '"trusted-public-keys = ${cfg.binaryCache.publicKey}"',
      '"require-sigs = true"',
    ]) {
      expect(source).toContain(line);
    }
    expect(source).toMatch(/systemd\.services\.nix-snapshotter = [\s\S]*?NIX_CONFIG = /);
  });
});
