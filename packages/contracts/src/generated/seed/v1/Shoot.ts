// Original file: proto/seed/v1/shoot.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { PoolStatus as _seed_v1_PoolStatus, PoolStatus__Output as _seed_v1_PoolStatus__Output } from '../../seed/v1/PoolStatus';
import type { ShootRequest as _seed_v1_ShootRequest, ShootRequest__Output as _seed_v1_ShootRequest__Output } from '../../seed/v1/ShootRequest';
import type { ShootResult as _seed_v1_ShootResult, ShootResult__Output as _seed_v1_ShootResult__Output } from '../../seed/v1/ShootResult';
import type { ShootStatusRequest as _seed_v1_ShootStatusRequest, ShootStatusRequest__Output as _seed_v1_ShootStatusRequest__Output } from '../../seed/v1/ShootStatusRequest';

export interface ShootClient extends grpc.Client {
  Run(argument: _seed_v1_ShootRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ShootResult__Output>): grpc.ClientUnaryCall;
  Run(argument: _seed_v1_ShootRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_ShootResult__Output>): grpc.ClientUnaryCall;
  Run(argument: _seed_v1_ShootRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ShootResult__Output>): grpc.ClientUnaryCall;
  Run(argument: _seed_v1_ShootRequest, callback: grpc.requestCallback<_seed_v1_ShootResult__Output>): grpc.ClientUnaryCall;
  run(argument: _seed_v1_ShootRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ShootResult__Output>): grpc.ClientUnaryCall;
  run(argument: _seed_v1_ShootRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_ShootResult__Output>): grpc.ClientUnaryCall;
  run(argument: _seed_v1_ShootRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ShootResult__Output>): grpc.ClientUnaryCall;
  run(argument: _seed_v1_ShootRequest, callback: grpc.requestCallback<_seed_v1_ShootResult__Output>): grpc.ClientUnaryCall;
  
  Status(argument: _seed_v1_ShootStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_PoolStatus__Output>): grpc.ClientUnaryCall;
  Status(argument: _seed_v1_ShootStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_PoolStatus__Output>): grpc.ClientUnaryCall;
  Status(argument: _seed_v1_ShootStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_PoolStatus__Output>): grpc.ClientUnaryCall;
  Status(argument: _seed_v1_ShootStatusRequest, callback: grpc.requestCallback<_seed_v1_PoolStatus__Output>): grpc.ClientUnaryCall;
  status(argument: _seed_v1_ShootStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_PoolStatus__Output>): grpc.ClientUnaryCall;
  status(argument: _seed_v1_ShootStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_PoolStatus__Output>): grpc.ClientUnaryCall;
  status(argument: _seed_v1_ShootStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_PoolStatus__Output>): grpc.ClientUnaryCall;
  status(argument: _seed_v1_ShootStatusRequest, callback: grpc.requestCallback<_seed_v1_PoolStatus__Output>): grpc.ClientUnaryCall;
  
}

export interface ShootHandlers extends grpc.UntypedServiceImplementation {
  Run: grpc.handleUnaryCall<_seed_v1_ShootRequest__Output, _seed_v1_ShootResult>;
  
  Status: grpc.handleUnaryCall<_seed_v1_ShootStatusRequest__Output, _seed_v1_PoolStatus>;
  
}

export interface ShootDefinition extends grpc.ServiceDefinition {
  Run: MethodDefinition<_seed_v1_ShootRequest, _seed_v1_ShootResult, _seed_v1_ShootRequest__Output, _seed_v1_ShootResult__Output>
  Status: MethodDefinition<_seed_v1_ShootStatusRequest, _seed_v1_PoolStatus, _seed_v1_ShootStatusRequest__Output, _seed_v1_PoolStatus__Output>
}
