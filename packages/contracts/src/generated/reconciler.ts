import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { ReconcilerClient as _seed_v1_ReconcilerClient, ReconcilerDefinition as _seed_v1_ReconcilerDefinition } from './seed/v1/Reconciler';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  seed: {
    v1: {
      ApplyGenerationRequest: MessageTypeDefinition
      ApplyGenerationResponse: MessageTypeDefinition
      FlakeQuota: MessageTypeDefinition
      FlakeStatus: MessageTypeDefinition
      GetStatusRequest: MessageTypeDefinition
      Instance: MessageTypeDefinition
      InstanceStatus: MessageTypeDefinition
      KeptGeneration: MessageTypeDefinition
      ListStatusRequest: MessageTypeDefinition
      ListStatusResponse: MessageTypeDefinition
      Reconciler: SubtypeConstructor<typeof grpc.Client, _seed_v1_ReconcilerClient> & { service: _seed_v1_ReconcilerDefinition }
      RollbackRequest: MessageTypeDefinition
    }
  }
}

