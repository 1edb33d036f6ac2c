// The Seed flake and its files, as far as they run without nixpkgs: every .nix file
// parses; the root flake's lib.seedMeta, lib.seedMetaOf, nixosModules and templates
// evaluate offline with the inputs locked but not fetched; the template's module under
// the real options module; seed-shoot's script against a local HTTP server;
// instance-base.nix under the real module system (vendored nixpkgs lib) and its
// /run/seed/env writer. What needs nixpkgs (mkSeed, NixOS itself, packages, the image)
// is scripts/nixos-eval.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LIB, NIX_DIR, OFFLINE_NIX, ROOT, evalJson, nixString, run } from './nix';

const TEMPLATE_DIR = path.join(NIX_DIR, 'templates', 'instance');

/** Every .nix file under nix/ (not node_modules) and the root flake.nix. */
function nixFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.nix')) found.push(full);
    }
  };
  walk(NIX_DIR);
  return [path.join(ROOT, 'flake.nix'), ...found.sort()];
}

/**
 * Copies flake.nix, flake.lock and nix/ (without node_modules, tests and the vendored lib) to a temporary
 * directory: a `path:` flake of the repository root would copy node_modules to the store.
 */
function copySeedFlake(into: string): string {
  const dir = path.join(into, 'seed');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'flake.nix'), path.join(dir, 'flake.nix'));
  fs.copyFileSync(path.join(ROOT, 'flake.lock'), path.join(dir, 'flake.lock'));
  fs.cpSync(NIX_DIR, path.join(dir, 'nix'), {
    recursive: true,
    filter: (source) => {
      const relative = path.relative(NIX_DIR, source).split(path.sep);
      return !relative.includes('node_modules') && !['test', 'vendor'].includes(relative[0] ?? '');
    },
  });
  return dir;
}

describe('every Nix file parses', () => {
  it.each(nixFiles().map((file) => ({ file, name: path.relative(ROOT, file) })))(
    '$name',
    async ({ file }) => {
      await expect(run('nix-instantiate', ['--parse', file])).resolves.toBeDefined();
    },
  );
});

describe('the root flake offline (inputs locked, not fetched)', () => {
  let tmp = '';
  let flake = '';

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-nix-library-'));
    flake = `path:${copySeedFlake(tmp)}`;
  });

  afterAll(() => {
    if (tmp !== '') fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('evaluates lib.seedMeta without a lock-file warning and without touching the lock', async () => {
    const lockBefore = fs.readFileSync(path.join(tmp, 'seed', 'flake.lock'), 'utf8');
    const { stdout, stderr } = await run('nix', [
      'eval',
      '--json',
      `${flake}#lib.seedMeta`,
      '--apply',
      'f: f { name = "web"; seed = { expose.http = 8080; storage.data = "1Gi"; }; }',
    ]);
    expect(JSON.parse(stdout)).toEqual({
      name: 'web',
      system: 'x86_64-linux',
      size: 's',
      resources: { vcpus: 1, memory: 1024 },
      expose: { http: { port: 8080, protocol: 'http' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
      connect: {},
      rollout: 'recreate',
      shoot: { enable: false },
      tpm: false,
    });
    expect(stderr).not.toMatch(/warning|lock/i);
    expect(fs.readFileSync(path.join(tmp, 'seed', 'flake.lock'), 'utf8')).toBe(lockBefore);
  });

  it('gives lib.seedMeta { name = "web"; } the defaults', async () => {
    const { stdout } = await run('nix', [
      'eval',
      '--json',
      `${flake}#lib.seedMeta`,
      '--apply',
      'f: f { name = "web"; }',
    ]);
    expect(JSON.parse(stdout)).toMatchObject({
      name: 'web',
      size: 's',
      expose: {},
      storage: {},
      connect: {},
    });
  });

  it('evaluates an instance module through lib.seedMetaOf with the vendored lib', async () => {
    // --impure: the lib comes from a tarball by path, as the tests import it.
    const { stdout } = await run('nix', [
      'eval',
      '--json',
      '--impure',
      `${flake}#lib.seedMetaOf`,
      '--apply',
      `f: f { lib = ${LIB}; name = "web"; module = { seed.expose.http = 8080; seed.connect.db = "postgres"; }; }`,
    ]);
    expect(JSON.parse(stdout)).toMatchObject({
      name: 'web',
      expose: { http: { port: 8080, protocol: 'http' } },
      connect: { db: { service: 'postgres', port: null } },
    });
  });

  it('lists lib, nixosModules and templates without fetching nixpkgs', async () => {
    const names = async (attribute: string): Promise<unknown> =>
      JSON.parse(
        (
          await run('nix', [
            'eval',
            '--json',
            `${flake}#${attribute}`,
            '--apply',
            'builtins.attrNames',
          ])
        ).stdout,
      );
    expect(await names('lib')).toEqual(['mkSeed', 'offlineImage', 'seedMeta', 'seedMetaOf']);
    expect(await names('nixosModules')).toEqual(['instance', 'instance-base']);
    expect(await names('templates')).toEqual(['default', 'instance']);
    const { stdout } = await run('nix', [
      'eval',
      '--raw',
      `${flake}#templates.default.description`,
    ]);
    expect(stdout).toContain('Seed instance');
  });

  it('locks exactly nixpkgs and nix-snapshotter (with its inputs)', async () => {
    const { stdout } = await run('nix', ['flake', 'metadata', '--json', flake]);
    const metadata = JSON.parse(stdout) as {
      locks: {
        version: number;
        nodes: Record<string, { inputs?: Record<string, unknown>; locked?: { rev?: string } }>;
      };
    };
    expect(metadata.locks.version).toBe(7);
    expect(metadata.locks.nodes.root?.inputs).toEqual({
      'nix-snapshotter': 'nix-snapshotter',
      nixpkgs: 'nixpkgs',
    });
    expect(metadata.locks.nodes['nix-snapshotter']?.inputs).toEqual({
      'flake-compat': 'flake-compat',
      'flake-parts': 'flake-parts',
      globset: 'globset',
      nixpkgs: ['nixpkgs'],
    });
    expect(metadata.locks.nodes.nixpkgs?.locked?.rev).toBe(
      '6c5e707c6b5339359a9a9e215c5e66d6d802fd7a',
    );
  });
});

describe('the instance template', () => {
  let tmp = '';
  let target = '';

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-nix-template-'));
    target = path.join(tmp, 'instance');
    fs.mkdirSync(target);
    await run('nix', ['flake', 'init', '-t', `path:${copySeedFlake(tmp)}#instance`], {
      cwd: target,
    });
  });

  afterAll(() => {
    if (tmp !== '') fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('is what nix flake init writes', () => {
    expect(fs.readdirSync(target).sort()).toEqual(['flake.nix', 'web.nix']);
    for (const file of ['flake.nix', 'web.nix']) {
      expect(fs.readFileSync(path.join(target, file), 'utf8')).toBe(
        fs.readFileSync(path.join(TEMPLATE_DIR, file), 'utf8'),
      );
    }
  });

  it("evaluates web.nix's seed.* settings under the real options module", async () => {
    // services.nginx is NixOS's option and its root a package (pkgs.writeTextDir):
    // without nixpkgs neither exists, so nginx is declared untyped here and never read.
    // That nginx evaluates and builds is scripts/nixos-eval's to check.
    const meta = await evalJson(`
      let lib = ${LIB}; in
      (import ${nixString(OFFLINE_NIX)}).seedMetaOf {
        inherit lib;
        name = "web";
        module = /. + ${nixString(path.join(target, 'web.nix'))};
        extraModules = [ { options.services.nginx = lib.mkOption { type = lib.types.raw; }; } ];
      }`);
    expect(meta).toEqual({
      name: 'web',
      system: 'x86_64-linux',
      size: 's',
      resources: { vcpus: 1, memory: 1024 },
      expose: { http: { port: 8080, protocol: 'http' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
      connect: {},
      rollout: 'recreate',
      shoot: { enable: false },
      tpm: false,
    });
  });

  it('takes seed from github:loomtex/seed and exports seeds.web through mkSeed', async () => {
    const flake = await evalJson(`
      let
        flake = import ${nixString(path.join(TEMPLATE_DIR, 'flake.nix'))};
        outputs = flake.outputs { seed.lib.mkSeed = args: args; };
      in {
        url = flake.inputs.seed.url;
        seeds = builtins.attrNames outputs.seeds;
        name = outputs.seeds.web.name;
        module = baseNameOf (toString outputs.seeds.web.module);
      }`);
    expect(flake).toEqual({
      url: 'github:loomtex/seed',
      seeds: ['web'],
      name: 'web',
      module: 'web.nix',
    });
  });
});

/** Returns the failure reason if `commands` are missing, so a test can skip saying why. */
async function missing(commands: string[]): Promise<string | null> {
  for (const command of commands) {
    try {
      await run('sh', ['-c', `command -v ${command}`]);
    } catch {
      return `${command} is not installed`;
    }
  }
  return null;
}

/**
 * The two builds of seed-shoot.sh: writeShellApplication's (stubbed: its text behind the
 * lines it puts in front, run by bash with the host's curl and jq) and
 * offline-seed-shoot.nix's (built for real by nix: busybox sh with the curl and jq of
 * `scripts/flake-tools shoot-client`, nothing of the host on PATH).
 */
const SEED_SHOOT_BUILDS: {
  name: string;
  /** Commands it takes from the host's PATH (the offline build is given none). */
  needs: string[];
  build: (tmp: string) => Promise<string>;
}[] = [
  {
    name: 'seed-shoot.nix (bash, curl and jq from nixpkgs)',
    needs: ['curl', 'jq'],
    build: async (tmp) => {
      const text = (await evalJson(`
        (import ${nixString(path.join(NIX_DIR, 'seed-shoot.nix'))} {
          writeShellApplication = args: args; curl = null; jq = null; coreutils = null;
        }).text`)) as string;
      const script = path.join(tmp, 'seed-shoot');
      fs.writeFileSync(
        script,
        `#!/usr/bin/env bash\nset -o errexit\nset -o nounset\nset -o pipefail\n\n${text}`,
        { mode: 0o755 },
      );
      return script;
    },
  },
  {
    name: 'offline-seed-shoot.nix (busybox sh, bundled curl and jq)',
    needs: [],
    build: async (tmp) => {
      const tools = path.join(tmp, 'tools');
      fs.mkdirSync(path.join(tools, 'bin'), { recursive: true });
      fs.copyFileSync('/bin/busybox', path.join(tools, 'bin/busybox'));
      const client = (await run(path.join(ROOT, 'scripts/flake-tools'), ['shoot-client'])).stdout
        .trim()
        .split('\n')
        .pop()!;
      const storeDir = (dir: string, name: string): string =>
        `builtins.path { path = ${nixString(dir)}; name = ${nixString(name)}; }`;
      const { stdout } = await run('nix-build', [
        '--no-out-link',
        '--expr',
        `import ${nixString(path.join(NIX_DIR, 'offline-seed-shoot.nix'))} {
          tools = ${storeDir(tools, 'tools')};
          client = ${storeDir(client, 'shoot-client')};
        }`,
      ]);
      return path.join(stdout.trim(), 'bin/seed-shoot');
    },
  },
];

describe.each(SEED_SHOOT_BUILDS)('seed-shoot: $name', ({ needs, build }) => {
  let tmp = '';
  let script = '';
  let server: http.Server | undefined;
  let url = '';
  const requests: unknown[] = [];

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-shoot-'));
    script = await build(tmp);

    server = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        const parsed = JSON.parse(body) as { command: string[]; timeout: number; stdin?: string };
        requests.push({
          path: request.url,
          ...parsed,
          ...(request.headers.authorization !== undefined && {
            authorization: request.headers.authorization,
          }),
        });
        response.setHeader('content-type', 'application/json');
        const [command] = parsed.command;
        if (command === 'forbidden') {
          response.statusCode = 403;
          response.end(JSON.stringify({ error: 'caller has no shoots enabled' }));
        } else if (command === 'binary') {
          response.end(
            JSON.stringify({
              exitCode: 0,
              stdout: Buffer.from([0xff, 0x00, 0x41]).toString('base64'),
              stderr: Buffer.from('warn\n').toString('base64'),
              encoding: 'base64',
              durationMs: 1,
            }),
          );
        } else {
          response.end(
            JSON.stringify({
              exitCode: 3,
              stdout: `ran ${parsed.command.join('|')}${parsed.stdin === undefined ? '' : ` stdin=${parsed.stdin}`}\n`,
              stderr: 'to stderr\n',
              durationMs: 1,
            }),
          );
        }
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server?.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (tmp !== '') fs.rmSync(tmp, { recursive: true, force: true });
  });

  const shoot = async (
    args: string[],
    input?: string,
    extraEnv: Record<string, string> = {},
  ): Promise<{ code: number; stdout: Buffer; stderr: string }> => {
    const environment = {
      PATH: needs.length > 0 ? process.env.PATH : '/nonexistent',
      SEED_SHOOT_URL: url,
      SEED_SHOOT_TOKEN_FILE: path.join(tmp, 'no-token'),
      ...extraEnv,
    };
    return new Promise((resolve) => {
      const child = execFile(
        script,
        args,
        { env: environment, encoding: 'buffer' },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
          resolve({ code, stdout, stderr: stderr.toString('utf8') });
        },
      );
      // The script may exit before reading its stdin (usage errors): ignore EPIPE.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input ?? '');
    });
  };

  it('passes shellcheck', async () => {
    const why = await missing(['shellcheck']);
    if (why !== null) {
      console.warn(`skipped: ${why}`);
      return;
    }
    await expect(run('shellcheck', [script])).resolves.toBeDefined();
  });

  it('posts the command and timeout, prints stdout and stderr, exits with the exit code', async () => {
    const why = await missing(needs);
    if (why !== null) {
      console.warn(`skipped: ${why}`);
      return;
    }
    const result = await shoot(['--timeout', '1500', 'ls', '-la', 'two words', '"quoted"']);
    expect(result.code).toBe(3);
    expect(result.stdout.toString('utf8')).toBe('ran ls|-la|two words|"quoted"\n');
    expect(result.stderr).toBe('to stderr\n');
    expect(requests.at(-1)).toEqual({
      path: '/shoot',
      command: ['ls', '-la', 'two words', '"quoted"'],
      timeout: 1500,
    });

    const piped = await shoot(['--stdin', '--', 'cat'], 'hello\n');
    expect(piped.stdout.toString('utf8')).toBe('ran cat stdin=hello\n\n');
    expect(requests.at(-1)).toEqual({
      path: '/shoot',
      command: ['cat'],
      timeout: 60000,
      stdin: 'hello\n',
    });
  });

  it("sends the instance's token as a bearer token", async () => {
    const why = await missing(needs);
    if (why !== null) {
      console.warn(`skipped: ${why}`);
      return;
    }
    const tokenFile = path.join(tmp, 'token');
    fs.writeFileSync(tokenFile, 'eyJhbGciOi.token.sig');
    const result = await shoot(['true'], undefined, { SEED_SHOOT_TOKEN_FILE: tokenFile });
    expect(result.code).toBe(3);
    expect(requests.at(-1)).toMatchObject({ authorization: 'Bearer eyJhbGciOi.token.sig' });
  });

  it('decodes base64 output byte for byte', async () => {
    const why = await missing([...needs, 'base64']);
    if (why !== null) {
      console.warn(`skipped: ${why}`);
      return;
    }
    const result = await shoot(['binary']);
    expect(result.code).toBe(0);
    expect([...result.stdout]).toEqual([0xff, 0x00, 0x41]);
    expect(result.stderr.toString()).toBe('warn\n');
  });

  it('prints the JSON error of a refusal and exits 1', async () => {
    const why = await missing(needs);
    if (why !== null) {
      console.warn(`skipped: ${why}`);
      return;
    }
    const result = await shoot(['forbidden']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('HTTP 403');
    expect(result.stderr).toContain('caller has no shoots enabled');
  });

  it('explains its usage without a command, and rejects a bad timeout', async () => {
    const bare = await shoot([]);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toContain('usage: seed-shoot [--timeout MS]');
    expect(bare.stderr).toContain('no command given');
    const help = await shoot(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.toString('utf8')).toContain('usage: seed-shoot');
    const timeout = await shoot(['--timeout', 'soon', 'ls']);
    expect(timeout.code).toBe(1);
    expect(timeout.stderr).toContain('--timeout must be a positive number of milliseconds');
  });
});

/**
 * The NixOS options instance-base.nix sets, declared as plain typed options. NixOS itself
 * (and its module list) comes with nixpkgs, which is not here; declaring just these paths
 * lets the real module system check, merge and prioritise what instance-base.nix defines
 * (mkDefault, mkIf, lists from several modules) exactly as in NixOS. What NixOS then
 * does with them (a firewall, /etc, activation) and the packages are scripts/nixos-eval's
 * to check.
 */
const NIXOS_OPTIONS = `{ lib, ... }:
  let
    inherit (lib) mkOption types;
    option = type: default: mkOption { inherit type default; };
    textFile = types.submodule { options.text = mkOption { type = types.lines; }; };
    script = types.submodule {
      options.deps = option (types.listOf types.str) [ ];
      options.text = mkOption { type = types.lines; };
    };
  in {
    options = {
      boot.isContainer = option types.bool false;
      networking.useDHCP = option types.bool true;
      networking.firewall.allowedTCPPorts = option (types.listOf types.port) [ ];
      networking.firewall.allowedUDPPorts = option (types.listOf types.port) [ ];
      system.stateVersion = mkOption { type = types.str; };
      services.journald.console = option types.str "";
      system.activationScripts = option (types.attrsOf script) { };
      environment.variables = option (types.attrsOf types.str) { };
      environment.etc = option (types.attrsOf textFile) { };
      environment.systemPackages = option (types.listOf types.raw) [ ];
      systemd.services = option (types.attrsOf types.anything) { };
    };
    # The one package instance-base.nix adds (seed-shoot) comes from nixpkgs' callPackage:
    # in its place, the name of the file it would be built from.
    config._module.args.pkgs = lib.mkForce {
      stdenv.hostPlatform.system = "x86_64-linux";
      callPackage = file: _: "callPackage \${baseNameOf file}";
    };
  }`;

/** The config of instance `web` with instance-base.nix and `module` (Nix source). */
function instanceBase(module: string): string {
  return `
    let lib = ${LIB}; in
    (import ${nixString(OFFLINE_NIX)}).evalInstance {
      inherit lib;
      name = "web";
      module = ${module};
      extraModules = [ ${nixString(path.join(NIX_DIR, 'modules', 'instance-base.nix'))} (${NIXOS_OPTIONS}) ];
    }`;
}

describe('instance-base.nix under the real module system', () => {
  it('opens the declared ports and wires connect variables, files and seed-shoot', async () => {
    const settings = await evalJson(`
      let inherit (${instanceBase(`{
        seed.expose = { http = 8080; dns = { port = 53; protocol = "dns"; }; syslog = { port = 514; protocol = "udp"; }; api = { port = 9000; protocol = "grpc"; }; };
        seed.connect = { db = { service = "postgres"; port = 5432; }; my-cache = "redis"; };
        seed.shoot.enable = true;
      }`)}) config; in {
        isContainer = config.boot.isContainer;
        useDHCP = config.networking.useDHCP;
        stateVersion = config.system.stateVersion;
        journalConsole = config.services.journald.console;
        tcp = config.networking.firewall.allowedTCPPorts;
        udp = config.networking.firewall.allowedUDPPorts;
        variables = config.environment.variables;
        etc = builtins.mapAttrs (_: file: file.text) config.environment.etc;
        packages = config.environment.systemPackages;
      }`);
    expect(settings).toEqual({
      isContainer: true,
      useDHCP: false,
      stateVersion: '25.11',
      journalConsole: '/dev/console',
      tcp: [9000, 53, 8080],
      udp: [53, 514],
      variables: { SEED_DB_HOST: 'postgres', SEED_MY_CACHE_HOST: 'redis' },
      etc: { 'seed/connect/db': 'postgres:5432', 'seed/connect/my-cache': 'redis' },
      packages: ['callPackage seed-shoot.nix'],
    });
  });

  it('adds nothing for an instance that declares nothing', async () => {
    const settings = await evalJson(`
      let inherit (${instanceBase('{ }')}) config; in {
        tcp = config.networking.firewall.allowedTCPPorts;
        udp = config.networking.firewall.allowedUDPPorts;
        variables = config.environment.variables;
        etc = config.environment.etc;
        packages = config.environment.systemPackages;
        activation = builtins.attrNames config.system.activationScripts;
        units = builtins.attrNames config.systemd.services;
      }`);
    expect(settings).toEqual({
      tcp: [],
      udp: [],
      variables: {},
      etc: {},
      packages: [],
      activation: ['seed-env'],
      units: [],
    });
  });

  it('decrypts seed.secrets at activation from a manifest that holds no plaintext', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-secrets-nix-'));
    try {
      fs.writeFileSync(path.join(dir, 'db.yaml'), 'password: ENC[AES256_GCM,data:x]\n');
      fs.writeFileSync(path.join(dir, 'tls.json'), '{"sops": {}}\n');
      // Path literals, as a flake writes them (./secrets/db.yaml): copied to the store.
      const db = path.join(dir, 'db.yaml');
      const tls = path.join(dir, 'tls.json');
      // Read-write: the manifest (builtins.toFile) is written to the store to be read back.
      const { stdout } = await run('nix-instantiate', [
        '--eval',
        '--strict',
        '--json',
        '--read-write-mode',
        '--expr',
        `let inherit (${instanceBase(`{
          seed.secrets = { db-password = ${db}; tls = { file = ${tls}; owner = "nginx"; mode = "0440"; }; };
        }`)}) config; in config.system.activationScripts.seed-secrets`,
      ]);
      const script = JSON.parse(stdout) as { deps: string[]; text: string };
      expect(script.deps).toEqual(['users', 'groups']);
      const [, manifest] = script.text.split(' install ');
      expect(script.text).toMatch(
        /^SEED_SECRETS_FAILURE=\/run\/seed\/secrets-failed callPackage seed-secrets\.nix\/bin\/seed-secrets install \/nix\/store\//,
      );
      // The manifest and the (encrypted) files are in the store; the lines name them.
      const lines = fs
        .readFileSync(manifest ?? '', 'utf8')
        .trim()
        .split('\n');
      expect(lines.map((line) => line.replace(/\/nix\/store\/[a-z0-9]{32}-/, '<store>/'))).toEqual([
        'db-password <store>/db.yaml root root 0400',
        'tls <store>/tls.json nginx root 0440',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops the instance before any service when a secret was not installed, telling Kubernetes why', async () => {
    const unit = await evalJson(
      `(${instanceBase('{ seed.secrets.db = builtins.toFile "db.yaml" "x"; }')}).config.systemd.services.seed-secrets-failed`,
    );
    expect(unit).toEqual({
      description: 'Stop the instance: a secret was not installed',
      wantedBy: ['sysinit.target'],
      before: ['sysinit.target'],
      unitConfig: {
        DefaultDependencies: false,
        // The file seed-secrets writes its message to (SEED_SECRETS_FAILURE above).
        ConditionPathExists: '/run/seed/secrets-failed',
        FailureAction: 'exit',
      },
      serviceConfig: { Type: 'oneshot' },
      script: 'cat /run/seed/secrets-failed > /dev/termination-log || true\nexit 1\n',
    });
  });

  it('asks for a TPM in the meta exactly when seed.secrets is not empty', async () => {
    const tpm = await evalJson(`{
      secrets = (${instanceBase('{ seed.secrets.db = builtins.toFile "db.yaml" "x"; }')}).config.seed.meta.tpm;
      none = (${instanceBase('{ }')}).config.seed.meta.tpm;
    }`);
    expect(tpm).toEqual({ secrets: true, none: false });
  });

  it('attack: a secret named to write outside /run/secrets is refused at evaluation', async () => {
    await expect(
      evalJson(
        `(${instanceBase('{ seed.secrets."../etc/shadow" = builtins.toFile "x" "x"; }')}).config.system.activationScripts.seed-secrets.text`,
      ),
    ).rejects.toMatchObject({
      stderr: expect.stringContaining('seed.secrets: "../etc/shadow" is not a file name'),
    });
  });

  it("yields its defaults to the tenant's module and merges the tenant's ports", async () => {
    const settings = await evalJson(`
      let inherit (${instanceBase(`{
        seed.expose.http = 8080;
        networking.useDHCP = true;
        system.stateVersion = "24.05";
        networking.firewall.allowedTCPPorts = [ 22 ];
      }`)}) config; in {
        useDHCP = config.networking.useDHCP;
        stateVersion = config.system.stateVersion;
        tcp = builtins.sort builtins.lessThan config.networking.firewall.allowedTCPPorts;
      }`);
    expect(settings).toEqual({ useDHCP: true, stateVersion: '24.05', tcp: [22, 8080] });
  });

  it("fails with meta.nix's message on an invalid seed, wherever it is read", async () => {
    await expect(
      evalJson(
        `(${instanceBase('{ seed.expose.http = 0; }')}).config.networking.firewall.allowedUDPPorts`,
      ),
    ).rejects.toMatchObject({
      stderr: expect.stringContaining('error: seed.expose.http.port: 0 is not a port number'),
    });
  });

  it('writes the SEED_* and KUBERNETES_* variables of PID 1 to /run/seed/env, mode 0600', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-env-'));
    try {
      const text = (await evalJson(
        `(${instanceBase('{ }')}).config.system.activationScripts.seed-env.text`,
      )) as string;
      // The same script with its two fixed paths moved into the temporary directory.
      const script = text
        .replaceAll('/proc/1/environ', path.join(tmp, 'environ'))
        .replaceAll('/run/seed', path.join(tmp, 'run'));
      const environ = [
        'PATH=/bin',
        'SEED_NAMESPACE=s-gaydazldmnsg',
        'SEED_DB_HOST=postgres',
        'KUBERNETES_SERVICE_HOST=10.43.0.1',
        'HOME=/root',
        'SEED_ODD=a"b\\c$d`e\nsecond line',
        'SEED_LAST=no trailing NUL',
      ];
      fs.writeFileSync(path.join(tmp, 'environ'), environ.join('\0'));
      await run('bash', ['-c', script], { env: process.env });

      const file = path.join(tmp, 'run', 'env');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const { stdout } = await run(
        'bash',
        [
          '-c',
          `set -a; . ${JSON.stringify(file)}; printf '%s\\0' "$SEED_NAMESPACE" "$SEED_DB_HOST" "$KUBERNETES_SERVICE_HOST" "$SEED_ODD" "$SEED_LAST"`,
        ],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
      );
      expect(stdout.split('\0').slice(0, 5)).toEqual([
        's-gaydazldmnsg',
        'postgres',
        '10.43.0.1',
        'a"b\\c$d`e\nsecond line',
        'no trailing NUL',
      ]);
      expect(fs.readFileSync(file, 'utf8')).not.toContain('PATH=');

      // A later activation whose PID 1 lacks the variables keeps the file.
      fs.writeFileSync(path.join(tmp, 'environ'), 'PATH=/bin\0');
      await run('bash', ['-c', script], { env: process.env });
      expect(fs.readFileSync(file, 'utf8')).toContain('SEED_NAMESPACE="s-gaydazldmnsg"');
      expect(fs.readdirSync(path.join(tmp, 'run'))).toEqual(['env']);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
