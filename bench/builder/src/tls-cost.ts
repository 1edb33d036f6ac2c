// What mutual TLS costs the builder's ApplyGeneration: the first call on a new channel
// (TCP + TLS handshake + HTTP/2 set-up) and a call on an open channel, each against the
// same stand-in served once with the platform's mTLS and once in plaintext.
import * as grpc from '@grpc/grpc-js';
import {
  createReconcilerClient,
  platformChannelCredentials,
  readTlsDirectory,
  type ReconcilerClient,
} from '@seed/contracts';
import {
  benchSettings,
  median,
  rowPrinter,
  type BenchCleanups,
  type PlatformCertificates,
} from '@seed/testing';
import { StandInReconciler } from './reconciler';

const { BENCH_TLS_CHANNELS: CHANNELS, BENCH_TLS_CALLS: CALLS } = benchSettings('bench/builder', {
  BENCH_TLS_CHANNELS: 50,
  BENCH_TLS_CALLS: 500,
});

export interface TlsCost {
  /** Median ms of the first call on a fresh channel. */
  firstCall: { mtls: number; plaintext: number };
  /** Median ms of a call on an open channel. */
  call: { mtls: number; plaintext: number };
}

const REQUEST = {
  flakeUri: 'github:seed-bench/tls',
  namespace: 's-aaaaaaaaaaaa',
  revision: 'a'.repeat(40),
  generation: 'b'.repeat(12),
  instances: [],
};

function timedApply(client: ReconcilerClient): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) =>
    client.applyGeneration(REQUEST, { deadline: Date.now() + 10_000 }, (error) =>
      error ? reject(error) : resolve(performance.now() - started),
    ),
  );
}

export async function measureTlsCost(
  cleanups: BenchCleanups,
  certificates: PlatformCertificates,
): Promise<TlsCost> {
  const builder = readTlsDirectory(certificates.builder);
  const secure = await StandInReconciler.start({
    kind: 'mtls',
    tls: readTlsDirectory(certificates.reconciler),
    reloadMs: 60_000,
  });
  cleanups.add('the mTLS stand-in', () => secure.stop());
  const plain = await StandInReconciler.start({ kind: 'plaintext' });
  cleanups.add('the plaintext stand-in', () => plain.stop());
  const sides = {
    mtls: {
      address: secure.address,
      credentials: () => platformChannelCredentials(builder, 60_000),
    },
    plaintext: { address: plain.address, credentials: () => grpc.credentials.createInsecure() },
  };
  // The two sides alternate call by call, so a busy moment of the machine hits both.
  const first = { mtls: [] as number[], plaintext: [] as number[] };
  for (let i = 0; i < CHANNELS; i += 1) {
    for (const side of ['mtls', 'plaintext'] as const) {
      const { address, credentials } = sides[side];
      // A channel option no other channel has, so grpc-js shares no connection.
      const client = createReconcilerClient(address, credentials(), { 'bench.channel': i });
      first[side].push(await timedApply(client));
      client.close();
    }
  }
  const open = {
    mtls: createReconcilerClient(sides.mtls.address, sides.mtls.credentials()),
    plaintext: createReconcilerClient(sides.plaintext.address, sides.plaintext.credentials()),
  };
  const calls = { mtls: [] as number[], plaintext: [] as number[] };
  await timedApply(open.mtls);
  await timedApply(open.plaintext);
  for (let i = 0; i < CALLS; i += 1) {
    calls.mtls.push(await timedApply(open.mtls));
    calls.plaintext.push(await timedApply(open.plaintext));
  }
  open.mtls.close();
  open.plaintext.close();
  return {
    firstCall: { mtls: median(first.mtls), plaintext: median(first.plaintext) },
    call: { mtls: median(calls.mtls), plaintext: median(calls.plaintext) },
  };
}

export function printTlsCost(cost: TlsCost): void {
  const line = rowPrinter(52);
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  line('gRPC ApplyGeneration to a stand-in', 'mTLS / plaintext, median');
  line(
    `  first call on a new channel (${CHANNELS} channels)`,
    `${ms(cost.firstCall.mtls)} / ${ms(cost.firstCall.plaintext)}`,
  );
  line('  TLS handshake cost, difference', ms(cost.firstCall.mtls - cost.firstCall.plaintext));
  line(
    `  call on an open channel (${CALLS} calls)`,
    `${ms(cost.call.mtls)} / ${ms(cost.call.plaintext)}`,
  );
  line('  per-call cost of TLS, difference', ms(cost.call.mtls - cost.call.plaintext));
}
