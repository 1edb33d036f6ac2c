// Attacks on the reconciler's gRPC server, against the real process and a real API
// server: who may steer Seed (docs/security.md, "Internal APIs").
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { createReconcilerClient, type ReconcilerClient } from '@seed/contracts';
import {
  createPlatformCertificates,
  freeLoopbackPorts,
  startKubeApiServer,
  startServiceProcess,
  type KubeApiServer,
  type PlatformCertificates,
  type ServiceProcess,
} from '@seed/testing';
import { Cluster, generation, reconcilerClient } from './cluster';

const MAIN = path.resolve(__dirname, '../dist/main.js');
const VICTIM = 'github:victim/app';
const VICTIM_NAMESPACE = generation(VICTIM, []).namespace!;

/** The call's answer: the reply, or the error's code name and details. */
function applyEmpty(client: ReconcilerClient): Promise<{ code: string; details: string }> {
  return new Promise((resolve) =>
    client.applyGeneration(generation(VICTIM, []), { deadline: Date.now() + 10_000 }, (error) =>
      resolve(
        error
          ? { code: grpc.status[error.code], details: error.details }
          : { code: 'OK', details: '' },
      ),
    ),
  );
}

function listStatus(client: ReconcilerClient): Promise<{ code: string; details: string }> {
  return new Promise((resolve) =>
    client.listStatus({}, { deadline: Date.now() + 10_000 }, (error) =>
      resolve(
        error
          ? { code: grpc.status[error.code], details: error.details }
          : { code: 'OK', details: '' },
      ),
    ),
  );
}

describe('attacks on the reconciler', () => {
  let api: KubeApiServer;
  let cluster: Cluster;
  let work: string;
  let certs: PlatformCertificates;
  let stranger: PlatformCertificates;
  /** The reconciler's certificate folder, which the rotation test replaces. */
  let serverDir: string;
  let reconciler: ServiceProcess;
  let address: string;
  const clients: ReconcilerClient[] = [];

  const client = (tlsDir: string): ReconcilerClient => {
    const made = reconcilerClient(address, tlsDir);
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    api = await startKubeApiServer();
    cluster = new Cluster(api.kubeconfigPath);
    work = await mkdtemp(path.join(tmpdir(), 'seed-reconciler-attacks-'));
    certs = await createPlatformCertificates(path.join(work, 'platform'));
    // Another CA, with certificates of the very same names.
    stranger = await createPlatformCertificates(path.join(work, 'stranger'));
    serverDir = path.join(work, 'server');
    await cp(certs.reconciler, serverDir, { recursive: true });
    const [port] = await freeLoopbackPorts(1);
    address = `127.0.0.1:${port}`;
    reconciler = startServiceProcess(MAIN, {
      SEED_KUBECONFIG: api.kubeconfigPath,
      SEED_TLS_DIR: serverDir,
      SEED_TLS_RELOAD_SECONDS: '1',
      SEED_RECONCILER_GRPC_PORT: String(port),
      SEED_RECONCILER_HTTP_PORT: '0',
    });
    await reconciler.waitForLog((line) => line.msg === 'reconciler listening');
  }, 20 * 60_000);

  afterAll(async () => {
    for (const made of clients) made.close();
    reconciler?.kill('SIGKILL');
    await api?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('attack: a plaintext gRPC call to the reconciler is refused', async () => {
    const plaintext = createReconcilerClient(address);
    clients.push(plaintext);
    // Before: OK (changed: true), the victim's namespace emptied by anyone on the network.
    expect((await applyEmpty(plaintext)).code).toBe('UNAVAILABLE');
    expect(await cluster.names(VICTIM_NAMESPACE)).toEqual([]);
  });

  it('attack: a TLS call without a client certificate is refused', async () => {
    const anonymous = createReconcilerClient(
      address,
      grpc.credentials.createSsl(Buffer.from(certs.ca.certPem)),
    );
    clients.push(anonymous);
    expect(await applyEmpty(anonymous)).toEqual({
      code: 'UNAUTHENTICATED',
      details: expect.stringContaining('needs a client certificate issued by the platform CA'),
    });
  });

  it('attack: a client certificate from another CA is refused', async () => {
    // It trusts the real server, and presents a `builder` certificate of its own CA.
    const forged = createReconcilerClient(
      address,
      grpc.credentials.createSsl(
        Buffer.from(certs.ca.certPem),
        await readFile(path.join(stranger.builder, 'tls.key')),
        await readFile(path.join(stranger.builder, 'tls.crt')),
      ),
    );
    clients.push(forged);
    expect((await applyEmpty(forged)).code).toBe('UNAUTHENTICATED');
  });

  it('attack: a client with the reader identity cannot ApplyGeneration', async () => {
    const reader = client(certs.reader);
    expect(await applyEmpty(reader)).toEqual({
      code: 'PERMISSION_DENIED',
      details:
        'identity "reader" may not call /seed.v1.Reconciler/ApplyGeneration (allowed: builder)',
    });
    // What it may do, it can.
    expect((await listStatus(reader)).code).toBe('OK');
    expect(await cluster.names(VICTIM_NAMESPACE)).toEqual([]);
    // And the builder may apply, but not read.
    const builder = client(certs.builder);
    expect((await applyEmpty(builder)).code).toBe('OK');
    expect((await listStatus(builder)).code).toBe('PERMISSION_DENIED');
  });

  it('attack: a certificate rotated on disk is picked up without restart', async () => {
    // A new CA replaces the old one (a compromised CA, or a planned rotation): the
    // server's files are swapped under the running process.
    const rotated = await createPlatformCertificates(path.join(work, 'rotated'));
    expect((await listStatus(client(rotated.operator))).code).not.toBe('OK');
    await cp(rotated.reconciler, serverDir, { recursive: true });
    await cluster.until(
      async () => (await listStatus(client(rotated.operator))).code === 'OK',
      'the reconciler to take the rotated certificates',
      15_000,
    );
    // New connections with the old CA's certificates are now refused.
    expect((await listStatus(client(certs.operator))).code).not.toBe('OK');
    expect(reconciler.hasExited()).toBe(false);
  });
});
