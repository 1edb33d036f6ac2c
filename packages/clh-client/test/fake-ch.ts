// A stand-in for Cloud Hypervisor's API server: an HTTP server on a Unix socket that keeps
// one VM's state and answers each endpoint as the spec says (204 for empty successes, 200
// with JSON for ping, info and hot-plugged devices, 204 for cold-added ones, 4xx/500 with
// CH's error body), checks request bodies against the spec's schemas as CH's JSON parser
// would refuse them, and records every request and connection.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { PciDeviceInfo, VmConfig, VmInfo, VmmPingResponse, VmState } from '../src';
import { API_ROOT } from '../src';
import { clhRequestSchemaName, clhSchemaProblems, clhSpecOperation } from '@seed/testing';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The body as received, byte for byte. */
  body: Buffer;
  /** Which connection carried it: connections are numbered from 1 as they open. */
  connection: number;
}

interface Reply {
  status: number;
  body?: unknown;
  /** Sent as is instead of `body` as JSON. */
  text?: string;
}

export type Override = (request: RecordedRequest) => Reply | 'hang';

export const PING: VmmPingResponse = {
  version: 'v53.0',
  build_version: 'v53.0-0-g1c0de5e',
  pid: 4242,
  features: ['kvm', 'io_uring'],
};

/** CH's error body: the error and its causes, outermost first, as a JSON array. */
function chError(status: number, ...messages: string[]): Reply {
  return { status, body: ['Error from API', ...messages] };
}

const NOT_FOUND: Reply = { status: 404, body: ['Not Found'] };

export class FakeCloudHypervisor {
  readonly requests: RecordedRequest[] = [];
  connectionsOpened = 0;
  connectionsClosed = 0;
  vm: { config: VmConfig; state: VmState } | undefined;
  private readonly snapshots = new Map<string, VmConfig>();
  private readonly overrides: Override[] = [];
  private readonly connectionIds = new WeakMap<Socket, number>();
  private nextPciDevice = 6;

  private constructor(
    readonly socketPath: string,
    private readonly server: http.Server,
  ) {}

  static async start(socketPath: string): Promise<FakeCloudHypervisor> {
    const server = http.createServer();
    const fake = new FakeCloudHypervisor(socketPath, server);
    server.on('connection', (socket: Socket) => {
      fake.connectionsOpened += 1;
      fake.connectionIds.set(socket, fake.connectionsOpened);
      socket.on('close', () => {
        fake.connectionsClosed += 1;
      });
    });
    server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
      fake.handle(request, response);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return fake;
  }

  /** Answers the next request with `override` instead of the spec's behaviour. */
  answerNext(override: Override): void {
    this.overrides.push(override);
  }

  /** Resolves once every connection a client opened has been closed. */
  async allConnectionsClosed(): Promise<void> {
    while (this.connectionsClosed < this.connectionsOpened) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const recorded: RecordedRequest = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
        connection: this.connectionIds.get(request.socket) ?? 0,
      };
      this.requests.push(recorded);
      const override = this.overrides.shift();
      const reply = override ? override(recorded) : this.answer(recorded);
      if (reply === 'hang') return;
      const payload =
        reply.text !== undefined
          ? Buffer.from(reply.text, 'utf8')
          : reply.body === undefined
            ? undefined
            : Buffer.from(JSON.stringify(reply.body), 'utf8');
      // CH's server labels every reply JSON and frames it by Content-Length; 204 has neither.
      const headers: http.OutgoingHttpHeaders = { Server: 'Cloud Hypervisor API' };
      if (reply.status !== 204) {
        headers['Content-Type'] = reply.text === undefined ? 'application/json' : 'text/plain';
        headers['Content-Length'] = payload?.length ?? 0;
      }
      response.writeHead(reply.status, headers);
      response.end(reply.status === 204 ? undefined : payload);
    });
  }

  private answer(request: RecordedRequest): Reply {
    if (!request.url.startsWith(`${API_ROOT}/`)) return NOT_FOUND;
    const specPath = request.url.slice(API_ROOT.length);
    const operation = clhSpecOperation(specPath, request.method);
    if (operation === undefined) {
      // micro_http routes by path alone; a known path with the wrong method is 400.
      return spec404OrBadRequest(specPath);
    }
    let body: unknown;
    const schema = clhRequestSchemaName(operation);
    if (schema !== undefined) {
      try {
        body = JSON.parse(request.body.toString('utf8'));
      } catch (error) {
        return { status: 400, body: ['Failed to deserialize JSON', String(error)] };
      }
      const problems = clhSchemaProblems(schema, body, 'published');
      if (problems !== undefined) {
        return { status: 400, body: ['Failed to deserialize JSON', problems] };
      }
    }
    return this.act(specPath.slice(1), body);
  }

  private act(endpoint: string, body: unknown): Reply {
    const vm = this.vm;
    switch (endpoint) {
      case 'vmm.ping':
        return { status: 200, body: PING };
      case 'vmm.shutdown':
        this.vm = undefined;
        return { status: 204 };
      case 'vm.create':
        if (vm) return chError(500, 'The VM could not be created', 'VM is already created');
        this.vm = { config: body as VmConfig, state: 'Created' };
        return { status: 204 };
      case 'vm.delete':
        this.vm = undefined;
        return { status: 204 };
      case 'vm.info': {
        if (!vm) return chError(404, 'The VM info is not available', 'VM is not created');
        const info: VmInfo = { config: vm.config, state: vm.state, memory_actual_size: 1 << 30 };
        return { status: 200, body: info };
      }
      case 'vm.boot':
        return this.transition(['Created', 'Shutdown'], 'Running', 'boot');
      case 'vm.pause':
        return this.transition(['Running'], 'Paused', 'pause');
      case 'vm.resume':
        return this.transition(['Paused'], 'Running', 'resume');
      case 'vm.shutdown':
        return this.transition(['Running', 'Paused'], 'Shutdown', 'shut down');
      case 'vm.resize':
        return this.transition(['Running'], 'Running', 'be resized');
      case 'vm.snapshot': {
        const reply = this.transition(['Paused'], 'Paused', 'be snapshotted');
        const url = (body as { destination_url?: string }).destination_url;
        if (reply.status === 204 && vm && url) this.snapshots.set(url, vm.config);
        return reply;
      }
      case 'vm.restore': {
        const { source_url, resume } = body as { source_url: string; resume?: boolean };
        if (vm) return chError(404, 'The VM could not be restored', 'VM is already created');
        const config = this.snapshots.get(source_url);
        if (!config) {
          return chError(500, 'The VM could not be restored', `No snapshot at ${source_url}`);
        }
        this.vm = { config, state: resume === true ? 'Running' : 'Paused' };
        return { status: 204 };
      }
      case 'vm.add-fs':
      case 'vm.add-vsock':
        return this.addDevice(endpoint, body);
      default:
        return chError(500, `the fake does not implement ${endpoint}`);
    }
  }

  private transition(from: VmState[], to: VmState, verb: string): Reply {
    const vm = this.vm;
    if (!vm) return chError(404, `The VM could not ${verb}`, 'VM is not created');
    if (!from.includes(vm.state)) {
      return chError(
        500,
        `The VM could not ${verb}`,
        `Invalid VM state transition: ${vm.state} to ${to}`,
      );
    }
    vm.state = to;
    return { status: 204 };
  }

  /** Hot-plugged into a booted VM: 200 and where; cold-added to a created one: 204. */
  private addDevice(endpoint: string, body: unknown): Reply {
    const vm = this.vm;
    if (!vm) return chError(404, 'The device could not be added', 'VM is not created');
    const device = body as { id?: string };
    const id = device.id ?? `_${endpoint === 'vm.add-fs' ? 'fs' : 'vsock'}${this.nextPciDevice}`;
    if (vm.state === 'Created' || vm.state === 'Shutdown') return { status: 204 };
    const info: PciDeviceInfo = { id, bdf: `0000:00:${hex(this.nextPciDevice++)}.0` };
    return { status: 200, body: info };
  }
}

function spec404OrBadRequest(specPath: string): Reply {
  return clhSpecOperation(specPath, 'get') || clhSpecOperation(specPath, 'put')
    ? { status: 400 }
    : NOT_FOUND;
}

function hex(value: number): string {
  return value.toString(16).padStart(2, '0');
}
