// Stand-ins for the processes the Cloud Hypervisor driver starts, on a machine that has
// neither Cloud Hypervisor nor virtiofsd nor KVM:
// - executables that only stay alive (so the driver's spawn, kill and reapOrphans act on
//   real processes whose argv names the run directory); the stand-in virtiofsd also
//   listens on the socket it is given;
// - CH's API, served by the test on the VM's `api.sock`: it refuses any request whose path,
//   method or body the OpenAPI document does not allow (closed schemas), keeps the VM's
//   state, writes and reads snapshots, and after boot or resume opens the VM's hybrid vsock
//   socket where CH would: the config's (relative) path, resolved against the VMM's
//   working directory, the run directory. A `CONNECT <port>` there reaches a FakeAgent.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { clhRequestSchemaName, clhSchemaProblems, clhSpecOperation } from '@seed/testing';
import type { FakeAgent } from './fake-agent';

/** Writes the two stand-in executables into `dir`; returns their paths. */
export async function writeStandInBinaries(
  dir: string,
): Promise<{ cloudHypervisor: string; virtiofsd: string }> {
  await mkdir(dir, { recursive: true });
  const node = `#!${process.execPath}\n`;
  const cloudHypervisor = path.join(dir, 'cloud-hypervisor');
  await writeFile(cloudHypervisor, `${node}setInterval(() => undefined, 1 << 30);\n`);
  const virtiofsd = path.join(dir, 'virtiofsd');
  await writeFile(
    virtiofsd,
    `${node}const socket = process.argv.find((arg) => arg.startsWith('--socket-path='));\n` +
      `require('node:net').createServer().listen(socket.slice('--socket-path='.length));\n`,
  );
  await chmod(cloudHypervisor, 0o755);
  await chmod(virtiofsd, 0o755);
  return { cloudHypervisor, virtiofsd };
}

export interface ApiRequest {
  endpoint: string;
  method: string;
  body: unknown;
}

type VmState = 'Created' | 'Running' | 'Paused';

interface VmConfigSeen {
  vsock?: { socket: string };
}

export class FakeClhApi {
  readonly requests: ApiRequest[] = [];
  /** Bodies the spec refused, with why: the driver sent something CH would not take. */
  readonly refused: string[] = [];
  state: VmState | undefined;
  #config: VmConfigSeen | undefined;
  #vsock: net.Server | undefined;
  /** Guest streams still open: a test that failed half-way leaves its agent connected. */
  readonly #vsockConnections = new Set<net.Socket>();

  private constructor(
    readonly runDir: string,
    private readonly server: http.Server,
    private readonly agent: FakeAgent,
  ) {}

  /** Serves `<runDir>/api.sock`; the agent answers what comes through the vsock. */
  static async serve(runDir: string, agent: FakeAgent): Promise<FakeClhApi> {
    const server = http.createServer();
    const api = new FakeClhApi(runDir, server, agent);
    server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        void api.#answer(request, Buffer.concat(chunks)).then(([status, body]) => {
          const text = body === undefined ? '' : JSON.stringify(body);
          response.writeHead(status, { 'content-type': 'application/json' });
          response.end(text);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(path.join(runDir, 'api.sock'), resolve));
    return api;
  }

  endpoints(): string[] {
    return this.requests.map((request) => request.endpoint);
  }

  async close(): Promise<void> {
    const vsock = this.#vsock;
    for (const connection of this.#vsockConnections) connection.destroy();
    if (vsock !== undefined) await new Promise((resolve) => vsock.close(resolve));
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  async #answer(request: http.IncomingMessage, raw: Buffer): Promise<[number, unknown?]> {
    const specPath = (request.url ?? '').replace(/^\/api\/v1/, '');
    const method = request.method ?? '';
    const operation = clhSpecOperation(specPath, method);
    const body: unknown = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
    const endpoint = specPath.slice(1);
    this.requests.push({ endpoint, method, body });
    if (operation === undefined)
      return this.#refuse(404, `${method} ${specPath} is not in the spec`);
    const schema = clhRequestSchemaName(operation);
    const problems = schema === undefined ? undefined : clhSchemaProblems(schema, body);
    if (problems !== undefined) return this.#refuse(400, `${endpoint}: ${problems}`);

    switch (endpoint) {
      case 'vmm.ping':
        return [200, { version: 'v53.0', pid: process.pid, features: ['kvm'] }];
      case 'vm.create':
        this.#config = body as VmConfigSeen;
        this.state = 'Created';
        return [204];
      case 'vm.boot':
      case 'vm.resume':
        this.state = 'Running';
        await this.#openVsock();
        return [204];
      case 'vm.pause':
        this.state = 'Paused';
        return [204];
      case 'vm.snapshot': {
        const dir = new URL((body as { destination_url: string }).destination_url).pathname;
        await writeFile(path.join(dir, 'config.json'), JSON.stringify(this.#config));
        return [204];
      }
      case 'vm.restore': {
        const dir = new URL((body as { source_url: string }).source_url).pathname;
        this.#config = JSON.parse(
          await readFile(path.join(dir, 'config.json'), 'utf8'),
        ) as VmConfigSeen;
        this.state = 'Paused';
        return [204];
      }
      case 'vm.add-fs':
        return [200, { id: (body as { id?: string }).id ?? '_fs0', bdf: '0000:00:06.0' }];
      case 'vmm.shutdown':
        return [204];
      default:
        return this.#refuse(500, `${endpoint}: the stand-in does not answer it`);
    }
  }

  #refuse(status: number, why: string): [number, unknown] {
    this.refused.push(why);
    return [status, ['Error from API', why]];
  }

  /** CH's hybrid vsock: `CONNECT <port>\n` → `OK <host port>\n`, then the guest's stream. */
  async #openVsock(): Promise<void> {
    const socket = this.#config?.vsock?.socket;
    if (socket === undefined || this.#vsock !== undefined) return;
    const server = net.createServer((connection) => {
      connection.on('error', () => undefined);
      this.#vsockConnections.add(connection);
      connection.once('close', () => this.#vsockConnections.delete(connection));
      let line = '';
      const onData = (chunk: Buffer) => {
        line += chunk.toString('latin1');
        const end = line.indexOf('\n');
        if (end === -1) return;
        connection.off('data', onData);
        if (!/^CONNECT \d+$/.test(line.slice(0, end))) {
          connection.destroy();
          return;
        }
        connection.write('OK 1073741824\n');
        this.agent.accept(connection);
      };
      connection.on('data', onData);
    });
    this.#vsock = server;
    await new Promise<void>((resolve) => server.listen(path.resolve(this.runDir, socket), resolve));
  }
}
