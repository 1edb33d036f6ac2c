import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { ShootClient as _seed_v1_ShootClient, ShootDefinition as _seed_v1_ShootDefinition } from './seed/v1/Shoot';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  seed: {
    v1: {
      PoolStatus: MessageTypeDefinition
      Shoot: SubtypeConstructor<typeof grpc.Client, _seed_v1_ShootClient> & { service: _seed_v1_ShootDefinition }
      ShootRequest: MessageTypeDefinition
      ShootResult: MessageTypeDefinition
      ShootStatusRequest: MessageTypeDefinition
    }
  }
}

