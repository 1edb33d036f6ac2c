// examples/hello's images, for real: built by nix/offline-image.nix with no nixpkgs,
// loaded through nix-snapshotter into containerd 2 (what its image service does for a
// `nix:0/nix/store/…` pull) and run by runc. Checks that web answers over HTTP with what
// it got from api by name, that dns answers over UDP and TCP, and that each stops at once
// with exit status 0 on SIGTERM (a shell as PID 1 would ignore it and wait for SIGKILL).
//
// Needs root, runc, static busybox, and containerd, ctr, containerd-shim-runc-v2,
// nix-snapshotter, nix2container and coredns from scripts/node-binaries (or
// $SEED_NODE_BIN_DIR); without them it is skipped with the reason printed. Everything it
// starts is private (sockets, root and state under one temp dir; the three containers
// share one network namespace, like a pod's) and removed afterwards, with the GC roots
// nix-snapshotter adds under /nix/var/nix/gcroots/auto.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { acquireNodeLock, exampleFlakeFiles, type NodeLock } from '@seed/local-parts';

const execFileAsync = promisify(execFile);

const ROOT = path.resolve(__dirname, '../..');
const GC_ROOTS_AUTO = '/nix/var/nix/gcroots/auto';
const NODE_BINARIES = [
  'containerd',
  'ctr',
  'containerd-shim-runc-v2',
  'nix-snapshotter',
  'nix2container',
];

interface Node {
  dir: string;
  binDir: string;
  env: NodeJS.ProcessEnv;
  daemons: ChildProcess[];
}

async function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeout?: number } = {},
): Promise<string> {
  const { stdout } = await execFileAsync(command, args, {
    env: options.env ?? { ...process.env, NIX_USER_CONF_FILES: '/etc/seed/nix.conf' },
    maxBuffer: 64 * 1024 * 1024,
    timeout: options.timeout ?? 120_000,
  });
  return stdout;
}

const lastLine = (text: string): string => text.trim().split('\n').pop() ?? '';

/** What the test needs from the machine, or why it cannot run here. */
async function prerequisites(): Promise<
  { binDir: string; tools: string; coredns: string } | { reason: string }
> {
  if (process.getuid?.() !== 0) return { reason: 'not root' };
  try {
    await run('runc', ['--version']);
  } catch {
    return { reason: 'no runc on PATH (apt-get install runc)' };
  }
  try {
    const binDir =
      process.env.SEED_NODE_BIN_DIR ||
      lastLine(await run(path.join(ROOT, 'scripts/node-binaries'), []));
    const missing = NODE_BINARIES.filter((name) => !fs.existsSync(path.join(binDir, name)));
    if (missing.length > 0) return { reason: `${missing.join(', ')} missing in ${binDir}` };
    const env = {
      ...process.env,
      SEED_NIX2CONTAINER: path.join(binDir, 'nix2container'),
      SEED_COREDNS: path.join(binDir, 'coredns'),
    };
    const script = path.join(ROOT, 'scripts/flake-tools');
    const tools = process.env.SEED_FLAKE_TOOLS_DIR || lastLine(await run(script, [], { env }));
    const coredns =
      process.env.SEED_FLAKE_COREDNS_DIR || lastLine(await run(script, ['coredns'], { env }));
    return { binDir, tools, coredns };
  } catch (error) {
    return { reason: (error as { message?: string }).message ?? String(error) };
  }
}

/** examples/hello as `seed up` writes it, built: the three image store paths. */
async function buildExample(dir: string): Promise<Record<string, string>> {
  for (const [name, content] of Object.entries(await exampleFlakeFiles())) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  const names = ['web', 'api', 'dns'];
  const stdout = await run('nix', [
    'build',
    '--no-link',
    '--json',
    '--no-write-lock-file',
    ...names.map((name) => `path:${dir}#seeds.${name}.image`),
  ]);
  const paths = (JSON.parse(stdout) as { outputs: { out: string } }[]).map((r) => r.outputs.out);
  return Object.fromEntries(
    names.map((name) => [name, paths.find((p) => p.endsWith(`-nix-image-seed-${name}.tar`))!]),
  );
}

/** containerd 2 with nix-snapshotter as its `nix` snapshotter, all under `dir`. */
async function startNode(dir: string, binDir: string): Promise<Node> {
  const sock = (name: string): string => path.join(dir, name);
  const snapshotterRoot = path.join(dir, 'root/io.containerd.snapshotter.v1.nix');
  fs.writeFileSync(
    path.join(dir, 'nix-snapshotter.toml'),
    [
      `address = "${sock('nix-snapshotter.sock')}"`,
      `root = "${snapshotterRoot}"`,
      '[image_service]',
      'enable = true',
      `containerd_address = "${sock('containerd.sock')}"`,
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'containerd.toml'),
    [
      'version = 3',
      `root = "${path.join(dir, 'root')}"`,
      `state = "${path.join(dir, 'state')}"`,
      '[grpc]',
      `  address = "${sock('containerd.sock')}"`,
      '[ttrpc]',
      `  address = "${sock('containerd.sock.ttrpc')}"`,
      '[proxy_plugins.nix]',
      '  type = "snapshot"',
      `  address = "${sock('nix-snapshotter.sock')}"`,
      "[plugins.'io.containerd.cri.v1.images']",
      '  snapshotter = "nix"',
      "[plugins.'io.containerd.cri.v1.runtime']",
      '  restrict_oom_score_adj = true',
      "[[plugins.'io.containerd.transfer.v1.local'.unpack_config]]",
      '  platform = "linux/amd64"',
      '  snapshotter = "nix"',
      "[plugins.'io.containerd.internal.v1.opt']",
      `  path = "${path.join(dir, 'opt')}"`,
      "[plugins.'io.containerd.nri.v1.nri']",
      '  disable = true',
      '',
    ].join('\n'),
  );
  // containerd finds its own shim first (Debian's 1.6 shim cannot serve 2.x).
  const env = {
    ...process.env,
    PATH: `${binDir}:${process.env.PATH ?? ''}`,
    NIX_USER_CONF_FILES: '/etc/seed/nix.conf',
  };
  const node: Node = { dir, binDir, env, daemons: [] };
  const daemon = (name: string, args: string[]): void => {
    const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
    node.daemons.push(spawn(path.join(binDir, name), args, { env, stdio: ['ignore', log, log] }));
    fs.closeSync(log);
  };
  daemon('nix-snapshotter', ['--config', path.join(dir, 'nix-snapshotter.toml')]);
  daemon('containerd', ['--config', path.join(dir, 'containerd.toml')]);
  for (let i = 0; i < 300; i += 1) {
    if (fs.existsSync(sock('containerd.sock')) && fs.existsSync(sock('nix-snapshotter.sock'))) {
      return node;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`containerd or nix-snapshotter did not start; see ${dir}/*.log`);
}

function ctr(node: Node, ...args: string[]): Promise<string> {
  return run(
    path.join(node.binDir, 'ctr'),
    ['-a', path.join(node.dir, 'containerd.sock'), ...args],
    {
      env: node.env,
    },
  );
}

/** `ctr run` with the private runc root and fifo dir; returns the task's PID. */
async function runContainer(
  node: Node,
  id: string,
  image: string,
  args: string[],
): Promise<number> {
  await ctr(
    node,
    'run',
    '--detach',
    '--snapshotter',
    'nix',
    '--runc-root',
    path.join(node.dir, 'runc'),
    '--fifo-dir',
    path.join(node.dir, 'fifo'),
    ...args,
    `nix:0${image}:latest`,
    id,
  );
  const line = (await ctr(node, 'task', 'ls')).split('\n').find((l) => l.startsWith(`${id} `));
  const pid = Number(line?.trim().split(/\s+/)[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no PID for task ${id}`);
  return pid;
}

/** Sends SIGTERM and waits (up to 10 s) for the task to stop; returns its exit status. */
async function stopWithSigterm(node: Node, id: string): Promise<number> {
  await ctr(node, 'task', 'kill', '--signal', 'SIGTERM', id);
  for (let i = 0; i < 100; i += 1) {
    const line = (await ctr(node, 'task', 'ls')).split('\n').find((l) => l.startsWith(`${id} `));
    if (line?.includes('STOPPED')) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  try {
    await ctr(node, 'task', 'delete', id); // exits with the task's status
    return 0;
  } catch (error) {
    const code = (error as { code?: number }).code;
    return typeof code === 'number' ? code : -1;
  }
}

/** Runs the probe script with node inside the containers' network namespace. */
async function probeInNamespace(pid: number): Promise<Record<string, string>> {
  const script = `
    const http = require('node:http'), dgram = require('node:dgram'), net = require('node:net');
    const get = (port, p) => new Promise((ok, ko) => http.get({ host: '127.0.0.1', port, path: p },
      (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => ok(res.statusCode + ' ' + b)); }).on('error', ko));
    const query = (name) => { const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
      return Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]); };
    // The first answer's address: skip the header, the question and the answer's name.
    const skipName = (r, i) => { while (r[i] !== 0) { if ((r[i] & 0xc0) === 0xc0) return i + 2; i += r[i] + 1; } return i + 1; };
    const answer = (r) => { const rcode = r[3] & 15, count = r.readUInt16BE(6);
      if (count === 0) return 'rcode ' + rcode; const at = skipName(r, skipName(r, 12) + 4) + 10;
      return 'rcode ' + rcode + ' ' + [...r.subarray(at, at + 4)].join('.'); };
    const udp = (name) => new Promise((ok, ko) => { const s = dgram.createSocket('udp4');
      s.on('message', (m) => { s.close(); ok(answer(m)); }); s.send(query(name), 53, '127.0.0.1', (e) => e && ko(e)); setTimeout(() => ko(new Error('udp timeout')), 3000).unref(); });
    const tcp = (name) => new Promise((ok, ko) => { const q = query(name), len = Buffer.alloc(2); len.writeUInt16BE(q.length);
      let b = Buffer.alloc(0); const c = net.connect(53, '127.0.0.1', () => c.write(Buffer.concat([len, q])));
      c.on('data', (d) => { b = Buffer.concat([b, d]); if (b.length >= 2 && b.length >= 2 + b.readUInt16BE(0)) { c.end(); ok(answer(b.subarray(2))); } }); c.on('error', ko); });
    (async () => console.log(JSON.stringify({
      web: await get(8080, '/'), apiReady: await get(9000, '/readyz'),
      udp: await udp('web.hello.seed'), tcp: await tcp('api.hello.seed'), missing: await udp('nope.hello.seed'),
    })))().catch((e) => { console.error(e); process.exit(1); });`;
  const stdout = await run('nsenter', [
    `--net=/proc/${pid}/ns/net`,
    process.execPath,
    '-e',
    script,
  ]);
  return JSON.parse(stdout) as Record<string, string>;
}

async function stopNode(node: Node): Promise<void> {
  for (const child of node.daemons.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  // Mounts a crash could leave under the node's directory, deepest first.
  const mountPoints = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint.startsWith(`${node.dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mountPoints) await run('umount', ['-l', mountPoint]).catch(() => {});
  // nix-store --add-root links each of nix-snapshotter's roots here.
  if (fs.existsSync(GC_ROOTS_AUTO)) {
    for (const link of fs.readdirSync(GC_ROOTS_AUTO)) {
      const target = fs.readlinkSync(path.join(GC_ROOTS_AUTO, link));
      if (target.startsWith(`${node.dir}/`)) fs.rmSync(path.join(GC_ROOTS_AUTO, link));
    }
  }
}

describe('examples/hello images under containerd 2 + nix-snapshotter', () => {
  let dir: string | undefined;
  let node: Node | undefined;
  let images: Record<string, string> = {};
  let podPid = 0;
  let lock: NodeLock | undefined;

  beforeAll(async () => {
    const found = await prerequisites();
    if ('reason' in found) {
      console.warn(`skipping the example's images under containerd: ${found.reason}`);
      return;
    }
    // Its containerd writes where a local node's does (/run/containerd): take turns.
    lock = await acquireNodeLock(30 * 60_000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-ctr-'));
    fs.mkdirSync(path.join(dir, 'flake'));
    images = await buildExample(path.join(dir, 'flake'));
    node = await startNode(dir, found.binDir);
    for (const image of Object.values(images)) {
      await run(path.join(found.binDir, 'nix2container'), [
        '--address',
        path.join(dir, 'containerd.sock'),
        'load',
        image,
      ]);
    }
    const env = (instance: string): string[] => [
      '--env',
      `SEED_INSTANCE=${instance}`,
      '--env',
      'SEED_NAMESPACE=s-example',
    ];
    // One network namespace for the three, as a pod would have; api is "api" via /etc/hosts
    // in a cluster, here web reaches it over loopback.
    podPid = await runContainer(node, 'api', images.api!, env('api'));
    const join = ['--with-ns', `network:/proc/${podPid}/ns/net`];
    await runContainer(node, 'dns', images.dns!, [...env('dns'), ...join]);
    await runContainer(node, 'web', images.web!, [
      ...env('web'),
      '--env',
      'SEED_API_HOST=127.0.0.1',
      '--env',
      'SEED_API_PORT=9000',
      ...join,
    ]);
  }, 10 * 60_000);

  afterAll(async () => {
    if (node) {
      for (const id of ['web', 'dns', 'api']) {
        await ctr(node, 'task', 'delete', '--force', id).catch(() => {});
        await ctr(node, 'container', 'delete', id).catch(() => {});
      }
      for (const image of Object.values(images)) {
        await ctr(node, 'image', 'delete', '--sync', `nix:0${image}:latest`).catch(() => {});
      }
      await stopNode(node);
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    await lock?.release();
  }, 120_000);

  it('serves web, api and dns from the nix store', async () => {
    if (!node) return;
    // The servers take a moment to bind their ports.
    let probe: Record<string, string> | undefined;
    for (let i = 0; i < 50 && !probe; i += 1) {
      probe = await probeInNamespace(podPid).catch(() => undefined);
      if (!probe) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(probe).toBeDefined();
    expect(probe!.web).toMatch(
      /^200 hello from web \(namespace s-example, pod \S+, release \w{12}\)\n/,
    );
    expect(probe!.web).toMatch(
      /\napi says: \{"instance":"api","pod":"\S+","release":"\w{12}"\}\n$/,
    );
    expect(probe!.apiReady).toBe('200 ready\n');
    expect(probe!.udp).toBe('rcode 0 192.0.2.10');
    expect(probe!.tcp).toBe('rcode 0 192.0.2.20');
    expect(probe!.missing).toBe('rcode 3');
  }, 60_000);

  it('stops each server on SIGTERM with exit status 0', async () => {
    if (!node) return;
    for (const id of ['web', 'dns', 'api']) {
      expect([id, await stopWithSigterm(node, id)]).toEqual([id, 0]);
    }
  }, 60_000);
});
