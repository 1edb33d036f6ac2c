import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import type { ProtoGrpcType as ReconcilerProto } from './generated/reconciler';
import type { ReconcilerClient, ReconcilerDefinition } from './generated/seed/v1/Reconciler';
import type { ProtoGrpcType as ShootProto } from './generated/shoot';
import type { ShootClient, ShootDefinition } from './generated/seed/v1/Shoot';

/** Where the `.proto` files ship: the contract is the files, the TypeScript types are generated. */
export const PROTO_DIR = path.resolve(__dirname, '../proto');

// The same options the types were generated with (see the `generate` script).
const LOADER_OPTIONS: Options = {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

function load<T>(file: string): T {
  return grpc.loadPackageDefinition(loadSync(file, LOADER_OPTIONS)) as unknown as T;
}

let reconcilerProto: ReconcilerProto | undefined;
let shootProto: ShootProto | undefined;

function reconciler(): ReconcilerProto {
  reconcilerProto ??= load<ReconcilerProto>('seed/v1/reconciler.proto');
  return reconcilerProto;
}

function shoot(): ShootProto {
  shootProto ??= load<ShootProto>('seed/v1/shoot.proto');
  return shootProto;
}

/** The `seed.v1.Reconciler` service definition, for `server.addService`. */
export function reconcilerService(): ReconcilerDefinition {
  return reconciler().seed.v1.Reconciler.service;
}

export function createReconcilerClient(
  address: string,
  credentials = grpc.credentials.createInsecure(),
  options?: grpc.ClientOptions,
): ReconcilerClient {
  return new (reconciler().seed.v1.Reconciler)(address, credentials, options);
}

/** The `seed.v1.Shoot` service definition, for `server.addService`. */
export function shootService(): ShootDefinition {
  return shoot().seed.v1.Shoot.service;
}

export function createShootClient(
  address: string,
  credentials = grpc.credentials.createInsecure(),
  options?: grpc.ClientOptions,
): ShootClient {
  return new (shoot().seed.v1.Shoot)(address, credentials, options);
}
