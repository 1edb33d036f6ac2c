import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One commit status as the forge received it. */
export interface ReceivedStatus {
  commit: string;
  state: string;
  description: string;
  targetUrl: string;
  /** The bearer token it came with matched the forge's. */
  authorized: boolean;
}

// GitHub's "create a commit status": POST /repos/{owner}/{repo}/statuses/{sha}.
const STATUS_PATH = /^\/repos\/[^/]+\/[^/]+\/statuses\/([0-9a-f]{40})$/;

/**
 * GitHub's commit-status API on loopback, for `seed up` to show what the builder tells a
 * forge: it records each status and answers 201 as GitHub does (the forge hosts are out
 * of reach here).
 */
export class LoopbackForge {
  readonly received: ReceivedStatus[] = [];

  private constructor(
    private readonly server: Server,
    private readonly token: string,
  ) {}

  static async start(token: string): Promise<LoopbackForge> {
    const server = createServer();
    const forge = new LoopbackForge(server, token);
    server.on('request', (request, response) => {
      void forge.receive(request).then((status) => response.writeHead(status).end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return forge;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async receive(request: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const path = STATUS_PATH.exec(request.url ?? '');
    if (request.method !== 'POST' || !path) return 404;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return 422;
    }
    this.received.push({
      commit: path[1]!,
      state: String(body.state),
      description: String(body.description),
      targetUrl: String(body.target_url),
      authorized: request.headers.authorization === `Bearer ${this.token}`,
    });
    return 201;
  }
}
