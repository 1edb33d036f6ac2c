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
import { median, rowPrinter, type BenchCleanups, type PlatformCertificates } from '@seed/testing';
import { StandInReconciler } from './reconciler';

const CHANNELS = Number(process.env.BENCH_TLS_CHANNELS ?? 50);
const CALLS = Number(process.env.BENCH_TLS_CALLS ?? 500);

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

async function measure(
  address: string,
  credentials: () => grpc.ChannelCredentials,
): Promise<{ firstCall: number; call: number }> {
  const first: number[] = [];
  for (let i = 0; i < CHANNELS; i += 1) {
    // A channel option no other channel has, so grpc-js shares no subchannel (connection).
    const client = createReconcilerClient(address, credentials(), { 'bench.channel': i });
    first.push(await timedApply(client));
    client.close();
  }
  const client = createReconcilerClient(address, credentials());
  await timedApply(client);
  const calls: number[] = [];
  for (let i = 0; i < CALLS; i += 1) calls.push(await timedApply(client));
  client.close();
  return { firstCall: median(first), call: median(calls) };
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
  // mTLS first: the plaintext side then runs warmer, so the difference errs high.
  const mtls = await measure(secure.address, () => platformChannelCredentials(builder, 60_000));
  const plaintext = await measure(plain.address, () => grpc.credentials.createInsecure());
  return {
    firstCall: { mtls: mtls.firstCall, plaintext: plaintext.firstCall },
    call: { mtls: mtls.call, plaintext: plaintext.call },
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
