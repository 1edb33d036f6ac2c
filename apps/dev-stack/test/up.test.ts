// End to end: `seed up` (the dev stack, run in-process) against the real parts (Redis, kube-apiserver + etcd and a node,
// the four service processes, nix, QEMU microVMs), with the objects checked in the API
// server and the everyday commands run against the stack while it is up.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { SHOOT_TOKEN_AUDIENCE } from '@seed/contracts';
import type { RunningStack } from '../src/up';
import { seed, seedUp } from './commands';

/** Processes whose command line mentions `text`: what a stopped stack must not leave. */
function processesMentioning(text: string): string[] {
  const listing = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return listing.split('\n').filter((line) => line.includes(text) && !line.includes(' ps '));
}

/** A stopped run leaves no file in its TMPDIR and no process that names it. */
function expectNothingLeftIn(dir: string): void {
  expect(readdirSync(dir)).toEqual([]);
  expect(processesMentioning(dir)).toEqual([]);
}

const never = new AbortController().signal;

/** Every file under `dir` whose name ends with `suffix`. */
function filesEndingWith(dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return filesEndingWith(file, suffix);
    return entry.name.endsWith(suffix) ? [file] : [];
  });
}

/**
 * The base64 lines of a PEM private key's body, each a secret of its own: a log that
 * shows any of them leaks (part of) the key, whether it printed the PEM whole or
 * JSON-escaped. Short last lines could match by chance and are left out.
 */
function keyBodyLines(pem: string): string[] {
  return pem
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => !line.startsWith('-----') && line.length >= 32);
}

/**
 * Every secret a running stack set, by name: the webhook secret, the binary cache's
 * signing key, the Redis users' passwords, the builder's and the shoot pool's API tokens,
 * the projected token of each pod with shoots enabled (read where the kubelet wrote it),
 * and the platform's TLS private keys (the CA's and every part's).
 */
async function stackSecrets(running: RunningStack, core: CoreV1Api): Promise<[string, string][]> {
  const read = async (file: string) => (await readFile(file, 'utf8')).trim();
  const signingKey = await read(path.join(path.dirname(running.logDir), 'cache-signing.key'));
  const secrets: [string, string][] = [
    ['webhook secret', running.delivery.secret],
    ['cache signing key', signingKey],
    ['cache signing key (its key part)', signingKey.split(':')[1]!],
    ['builder API token', await read(running.builderTokenFile)],
    ['shoot pool status token', await read(running.shootStatusTokenFile)],
  ];
  const passwords = path.dirname(running.redisAdmin.passwordFile);
  for (const user of readdirSync(passwords))
    secrets.push([`Redis password of ${user}`, await read(path.join(passwords, user))]);
  const pods = await core.listNamespacedPod({ namespace: running.namespace });
  for (const pod of pods.items) {
    const volume = pod.spec?.volumes?.find((v) =>
      v.projected?.sources?.some((s) => s.serviceAccountToken?.audience === SHOOT_TOKEN_AUDIENCE),
    );
    if (!volume) continue;
    const token = path.join(
      running.nodeDir,
      'kubelet',
      'pods',
      pod.metadata!.uid!,
      'volumes',
      'kubernetes.io~projected',
      volume.name,
      'token',
    );
    secrets.push([`shoot token of pod ${pod.metadata!.name}`, await read(token)]);
  }
  // The platform's certificate folder: the CA and every part's tls.key beside it.
  for (const key of filesEndingWith(path.dirname(running.operatorTlsDir), '.key')) {
    for (const line of keyBodyLines(await readFile(key, 'utf8')))
      secrets.push([`private key ${path.basename(path.dirname(key))}/${path.basename(key)}`, line]);
  }
  return secrets;
}

/** Whether something accepts TCP connections on the URL's port. */
function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// Each run gets a TMPDIR of its own (the stack's temp folders are made under it), so
// "nothing left behind" is checked without seeing other packages' tests.
let scratch: string;
const originalTmpdir = process.env.TMPDIR;
beforeEach(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'seed-up-test-'));
  process.env.TMPDIR = scratch;
});
afterEach(() => {
  if (originalTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = originalTmpdir;
  rmSync(scratch, { recursive: true, force: true });
});

describe('seed up', () => {
  it('pushes, builds, applies, changes one instance and shoots, then stops everything', async () => {
    let stack: RunningStack | undefined;
    const seen: Record<string, unknown> = {};

    const run = await seedUp([], {
      signal: never,
      whileUp: async (running) => {
        stack = running;
        const env = {
          ...process.env,
          SEED_RECONCILER_ADDRESS: running.reconcilerAddress,
          SEED_TLS_DIR: running.operatorTlsDir,
          SEED_BUILDER_URL: running.builderUrl,
          SEED_BUILDER_API_TOKEN_FILE: running.builderTokenFile,
          SEED_SHOOT_URL: running.shootUrl,
        };

        // What the reconciler wrote, read with our own client.
        const config = new KubeConfig();
        config.loadFromFile(running.kubeconfigPath);
        const apps = config.makeApiClient(AppsV1Api);
        const core = config.makeApiClient(CoreV1Api);
        const deployments = await apps.listNamespacedDeployment({ namespace: running.namespace });
        seen.deployments = Object.fromEntries(
          deployments.items.map((d) => [
            d.metadata!.name,
            d.spec!.template.metadata!.annotations![
              'io.katacontainers.config.hypervisor.default_vcpus'
            ],
          ]),
        );
        const claims = await core.listNamespacedPersistentVolumeClaim({
          namespace: running.namespace,
        });
        seen.claims = claims.items.map((c) => c.metadata!.name);
        const state = await core.readNamespacedConfigMap({
          namespace: running.namespace,
          name: 'seed-state',
        });
        seen.stateGeneration = state.metadata!.annotations!['seed.loom.farm/generation'];

        seen.statusAll = await seed(['status'], { env });
        seen.status = await seed(['status', running.flake, '--json'], { env });
        seen.builds = await seed(['builds', '--json'], { env });
        // The shoot pool knows callers by their pod's token and IP: the host has neither.
        seen.shoot = await seed(['shoot', '--timeout', '20000', '--', 'true'], { env });
        seen.logs = await seed(['logs', running.flake, 'web'], {
          env: { ...env, KUBECONFIG: running.kubeconfigPath },
        });
        seen.unknownBuild = await seed(['builds', 'build-nope'], { env });
        seen.keys = await seed(['keys', running.flake, 'api'], {
          env: { ...env, KUBECONFIG: running.kubeconfigPath },
        });

        // The secrets the stack set, and everything its services logged (gone once it stops).
        seen.secrets = await stackSecrets(running, core);
        seen.serviceLogs = await Promise.all(
          readdirSync(running.logDir).map((file) =>
            readFile(path.join(running.logDir, file), 'utf8'),
          ),
        );
      },
    });

    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    expect(run.out).toMatch(
      /==> \[17\/19\] run a shoot from inside the pod of the instance with shoots enabled/,
    );
    // Every instance ran on the node and answered over its Service.
    expect(run.out).toMatch(/^api +available +1 /m);
    expect(run.out).toMatch(/^dns +available +1 /m);
    expect(run.out).toMatch(/^web +available +1 /m);
    expect(run.out).toMatch(/^ {2}\| hello from web \(namespace s-[a-z2-7]{12}, pod web-/m);
    expect(run.out).toMatch(/^ {2}\| api says: \{"instance":"api"/m);
    expect(run.out).toContain(
      'dns, over its Service: UDP rcode 0 192.0.2.10; TCP rcode 0 192.0.2.10\n',
    );
    expect(run.out).toMatch(/^web rolled out: pod web-[a-z0-9-]+ → web-[a-z0-9-]+$/m);
    expect(run.out).toMatch(/^seed-shoot in pod web-[a-z0-9-]+ \(web\): exit 0/m);
    // The flake is a SeedFlake: Ready once its generation runs, a second one added and
    // removed while the services ran on.
    expect(run.out).toMatch(/^example +True +Applied +s-[a-z2-7]{12} +[0-9a-f]{12} +\S+ +false$/m);
    expect(run.out).toMatch(/SeedFlake extra created: its hook answered a ping after \d+ ms/);
    expect(run.out).toMatch(/SeedFlake extra deleted: its hook answered 404 after \d+ ms/);
    expect(run.out).toMatch(
      /the reconciler removed its flake and released the SeedFlake after \d+ ms/,
    );
    expect(run.out).toContain('webhook, builder and reconciler kept their processes');
    // Rolled back to the first generation without a build, then resumed.
    expect(run.out).toMatch(/applied without a build/);
    expect(run.out).toMatch(/seed resume: resumed by \S+; the next push deploys again/);
    // Both pushes' commit statuses reached the forge, in order, with the flake's token.
    expect(run.out).toMatch(/^[0-9a-f]{12} +pending +ok +queued: a builder took the build$/m);
    expect(run.out).toMatch(/^[0-9a-f]{12} +success +ok +generation \S+ applied$/m);
    expect(run.out).not.toMatch(/ WRONG /);
    // api's recipient, what `seed keys` prints, and a secret encrypted to it and
    // decrypted in a VM with api's own swtpm.
    const keys = seen.keys as { code: number; out: string };
    expect(keys.code).toBe(0);
    expect(keys.out).toMatch(/^age1[0-9a-z]{58}\n$/);
    expect(run.out).toContain(`api's age recipient (seed keys): ${keys.out}`);
    expect(run.out).toMatch(
      /^decrypted in a QEMU VM with api's swtpm by seed-secrets install: \/run\/secrets\/greeting, sha256 [0-9a-f]{16}… as encrypted$/m,
    );
    expect(run.out).toContain('Deployments whose spec changed: web\n');
    expect(run.out).toContain('Deployments whose spec is unchanged: api, dns\n');
    expect(run.out).toContain('  | hello from a shoot of web\n');
    expect(run.out).toMatch(/from-a-shoot\.txt: written in a shoot$/m);
    expect(run.out).toMatch(
      /^the Grafana dashboard, asked of Prometheus: \d+ panels, \d+ queries, each with data$/m,
    );
    expect(run.out.trimEnd().endsWith('seed up: every step passed')).toBe(true);

    // web was resized to m (2 vCPUs), then the flake rolled back to its first generation
    // (web at s, 1 vCPU); the others kept their size throughout.
    expect(seen.deployments).toEqual({ api: '2', dns: '1', web: '1' });
    expect(seen.claims).toEqual(['seed-web-data']);

    const status = seen.status as { code: number; out: string };
    expect(status.code).toBe(0);
    const flakeStatus = JSON.parse(status.out) as {
      generation: string;
      instances: { name: string; rollout: string }[];
      lastError: string;
    };
    expect(flakeStatus.generation).toBe(seen.stateGeneration);
    expect(flakeStatus.instances.map((i) => i.name).sort()).toEqual(['api', 'dns', 'web']);
    expect(flakeStatus.lastError).toBe('');
    const [, row] = (seen.statusAll as { out: string }).out.split('\n');
    expect(row!.split(/\s+/)).toEqual([
      stack!.flake,
      stack!.namespace,
      flakeStatus.generation,
      '3/3',
      '-',
      '-',
    ]);

    const builds = JSON.parse((seen.builds as { out: string }).out) as {
      state: string;
      generation: string;
    }[];
    // Newest first: the rebuild of the first commit (after the rollback, which built
    // nothing), the change, the first push.
    expect(builds.map((b) => b.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(builds[0]!.generation).toBe(flakeStatus.generation);
    expect(builds[2]!.generation).toBe(flakeStatus.generation);
    expect(run.out).toContain(`built again: generation ${flakeStatus.generation} (`);

    const shoot = seen.shoot as { code: number; out: string; err: string };
    expect(shoot.code).toBe(1);
    expect(shoot.err).toMatch(/no token/);
    const logs = seen.logs as { code: number; out: string };
    expect(logs.code).toBe(0);
    expect(logs.out).toContain('web: serving HTTP on :8080');
    expect(seen.unknownBuild).toEqual({
      code: 1,
      out: '',
      err: 'seed: the builder answered 404: no build build-nope\n',
    });

    // Nothing logs a secret: not the services, not seed up's own output.
    const logged = [...(seen.serviceLogs as string[]), run.out, run.err].join('\n');
    const secrets = seen.secrets as [string, string][];
    const names = secrets.map(([name]) => name);
    for (const kind of [
      'Redis password of seed-webhook',
      'Redis password of seed-builder',
      'shoot token of pod web-',
      'private key reconciler/tls.key',
      'private key builder/tls.key',
    ])
      expect(names.some((name) => name.startsWith(kind))).toBe(true);
    for (const [, secret] of secrets) expect(secret.length).toBeGreaterThan(8);
    expect(secrets.filter(([, secret]) => logged.includes(secret)).map(([name]) => name)).toEqual(
      [],
    );

    // Everything it started is gone.
    expectNothingLeftIn(scratch);
    const addresses = [
      stack!.redisUrl,
      stack!.webhookUrl,
      stack!.builderUrl,
      `http://${stack!.reconcilerAddress}`,
    ];
    for (const address of addresses) expect(await listening(address)).toBe(false);
    // Not the shoot pool's: it listened on the node's bridge address, which went with the
    // node (probing it now would route off the machine); its VMs' folders are in scratch.
  }, 600_000);

  it('names the failing step, exits 1 and still stops what it started', async () => {
    const run = await seedUp(['--wait-timeout', '1'], { signal: never });
    expect(run.code).toBe(1);
    expect(run.err).toContain(
      'seed: step "start the webhook, the builder and the reconciler" failed: timed out after 1 ms for the reconciler to become ready',
    );
    expect(run.out).toContain('==> stopping the stack');
    expectNothingLeftIn(scratch);
  }, 300_000);

  it('stops everything when interrupted, and exits 130', async () => {
    const interrupt = new AbortController();
    const run = await seedUp([], { signal: interrupt.signal }, (text) => {
      if (text.includes('[9/19]')) interrupt.abort();
    });
    expect(run.code).toBe(130);
    expect(run.err).toBe(
      'seed: interrupted during step "push, deliver a signed webhook, build and apply"; the stack was stopped\n',
    );
    expect(run.out).toContain('    interrupted\n==> stopping the stack\n');
    expectNothingLeftIn(scratch);
  }, 300_000);
});
