// What `seed up` asks of the example's instances on the local node: that each rolls out,
// and what each serves over its Service, asked the way another program would.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { FlakeStatus__Output } from '@seed/contracts';
import { httpGetOnce } from '@seed/local-parts';
import { waitFor } from './progress';

export interface RolloutWait {
  timeoutMs: number;
  signal: AbortSignal;
  note: (text: string) => void;
}

const FAILURE_GRACE_MS = 45_000;

/**
 * Waits until the reconciler reports every instance `available`; an instance `failed`
 * for longer than the kubelet's first retries ends the wait with its reason.
 */
export async function waitUntilAvailable(
  status: () => Promise<FlakeStatus__Output>,
  options: RolloutWait,
): Promise<FlakeStatus__Output> {
  let last = '';
  const failingSince = new Map<string, number>();
  return waitFor(
    'for every instance to become available',
    async () => {
      const current = await status();
      const summary = current.instances
        .map((i) => `${i.name} ${i.rollout}${i.reason ? ` (${i.reason})` : ''}`)
        .join(', ');
      if (summary !== last) {
        last = summary;
        options.note(summary);
      }
      // The kubelet retries a failed pull or start (after 10 s, then 20 s, ...): on a busy
      // machine a first try can fail where the second succeeds. A failure that outlasts
      // those retries is the instance's.
      const now = Date.now();
      for (const instance of current.instances) {
        if (instance.rollout !== 'failed') failingSince.delete(instance.name);
        else if (!failingSince.has(instance.name)) failingSince.set(instance.name, now);
      }
      const failed = current.instances.find(
        (i) => now - (failingSince.get(i.name) ?? now) >= FAILURE_GRACE_MS,
      );
      if (failed) throw new Error(`instance ${failed.name} failed: ${failed.message}`);
      return current.instances.length > 0 &&
        current.instances.every((i) => i.rollout === 'available')
        ? current
        : undefined;
    },
    { timeoutMs: options.timeoutMs, signal: options.signal, intervalMs: 250 },
  );
}

/**
 * Retries `ask` until it answers: a Service reaches a pod a moment after the pod is Ready
 * (kube-proxy and CoreDNS learn its address from the API). On timeout the error says
 * what the last try got.
 */
export async function answerOnceReachable<T>(
  what: string,
  ask: () => Promise<T>,
  options: { timeoutMs: number; signal: AbortSignal },
): Promise<T> {
  let lastError = '';
  return waitFor(
    what,
    () =>
      ask().catch((error: Error) => {
        lastError = error.message;
        return undefined;
      }),
    { ...options, intervalMs: 200 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last try: ${lastError}`);
  });
}

/** The body of a GET answered 2xx, on a connection of its own (httpGetOnce). */
export async function httpGet(url: string, timeoutMs = 5_000): Promise<string> {
  const { status, body } = await httpGetOnce(url, { timeoutMs });
  if (status < 200 || status >= 300) throw new Error(`GET ${url}: ${status} ${body.trim()}`);
  return body;
}

/**
 * Asks `server` for the A record of `name` over UDP or TCP (RFC 1035: TCP prefixes the
 * message with its length) and answers "<rcode> <address>...".
 */
export async function dnsQuery(
  server: string,
  name: string,
  transport: 'udp' | 'tcp',
  timeoutMs = 3_000,
): Promise<string> {
  const query = dnsQuestion(name);
  const answer =
    transport === 'udp'
      ? await new Promise<Buffer>((resolve, reject) => {
          const socket = createSocket('udp4');
          const timer = setTimeout(() => {
            socket.close();
            reject(new Error(`no UDP answer from ${server} in ${timeoutMs} ms`));
          }, timeoutMs);
          socket.once('message', (message) => {
            clearTimeout(timer);
            socket.close();
            resolve(message);
          });
          socket.send(query, 53, server);
        })
      : await new Promise<Buffer>((resolve, reject) => {
          const chunks: Buffer[] = [];
          const socket = connect({ host: server, port: 53, timeout: timeoutMs });
          socket.on('connect', () => {
            const length = Buffer.alloc(2);
            length.writeUInt16BE(query.length);
            socket.write(Buffer.concat([length, query]));
          });
          socket.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            const received = Buffer.concat(chunks);
            if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
              socket.destroy();
              resolve(received.subarray(2));
            }
          });
          socket.on('timeout', () => socket.destroy(new Error(`no TCP answer from ${server}`)));
          socket.on('error', reject);
        });
  return describeAnswer(answer);
}

function dnsQuestion(name: string): Buffer {
  const labels = name.split('.').filter((label) => label !== '');
  const question = Buffer.concat([
    ...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])),
    Buffer.from([0, 0, 1, 0, 1]), // root, type A, class IN
  ]);
  // id 0x5eed, recursion desired, one question
  return Buffer.concat([Buffer.from([0x5e, 0xed, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), question]);
}

function describeAnswer(message: Buffer): string {
  const rcode = message[3]! & 0x0f;
  const answers = message.readUInt16BE(6);
  // Skip the question: its name's labels, then type and class.
  let offset = 12;
  while (message[offset]! !== 0) offset += message[offset]! + 1;
  offset += 5;
  const addresses: string[] = [];
  for (let i = 0; i < answers; i++) {
    // A name that is a compression pointer takes two bytes; our server answers that way.
    offset += (message[offset]! & 0xc0) === 0xc0 ? 2 : skipName(message, offset);
    const type = message.readUInt16BE(offset);
    const length = message.readUInt16BE(offset + 8);
    if (type === 1 && length === 4) {
      addresses.push([...message.subarray(offset + 10, offset + 14)].join('.'));
    }
    offset += 10 + length;
  }
  return [`rcode ${rcode}`, ...addresses].join(' ');
}

function skipName(message: Buffer, start: number): number {
  let offset = start;
  while (message[offset]! !== 0 && (message[offset]! & 0xc0) !== 0xc0) {
    offset += message[offset]! + 1;
  }
  return offset - start + ((message[offset]! & 0xc0) === 0xc0 ? 2 : 1);
}
