// Original file: proto/seed/v1/reconciler.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ApplyGenerationRequest as _seed_v1_ApplyGenerationRequest, ApplyGenerationRequest__Output as _seed_v1_ApplyGenerationRequest__Output } from '../../seed/v1/ApplyGenerationRequest';
import type { ApplyGenerationResponse as _seed_v1_ApplyGenerationResponse, ApplyGenerationResponse__Output as _seed_v1_ApplyGenerationResponse__Output } from '../../seed/v1/ApplyGenerationResponse';
import type { FlakeStatus as _seed_v1_FlakeStatus, FlakeStatus__Output as _seed_v1_FlakeStatus__Output } from '../../seed/v1/FlakeStatus';
import type { GetStatusRequest as _seed_v1_GetStatusRequest, GetStatusRequest__Output as _seed_v1_GetStatusRequest__Output } from '../../seed/v1/GetStatusRequest';
import type { ListStatusRequest as _seed_v1_ListStatusRequest, ListStatusRequest__Output as _seed_v1_ListStatusRequest__Output } from '../../seed/v1/ListStatusRequest';
import type { ListStatusResponse as _seed_v1_ListStatusResponse, ListStatusResponse__Output as _seed_v1_ListStatusResponse__Output } from '../../seed/v1/ListStatusResponse';
import type { RollbackRequest as _seed_v1_RollbackRequest, RollbackRequest__Output as _seed_v1_RollbackRequest__Output } from '../../seed/v1/RollbackRequest';

export interface ReconcilerClient extends grpc.Client {
  ApplyGeneration(argument: _seed_v1_ApplyGenerationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  ApplyGeneration(argument: _seed_v1_ApplyGenerationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  ApplyGeneration(argument: _seed_v1_ApplyGenerationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  ApplyGeneration(argument: _seed_v1_ApplyGenerationRequest, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  applyGeneration(argument: _seed_v1_ApplyGenerationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  applyGeneration(argument: _seed_v1_ApplyGenerationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  applyGeneration(argument: _seed_v1_ApplyGenerationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  applyGeneration(argument: _seed_v1_ApplyGenerationRequest, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  
  GetStatus(argument: _seed_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_FlakeStatus__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _seed_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_FlakeStatus__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _seed_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_FlakeStatus__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _seed_v1_GetStatusRequest, callback: grpc.requestCallback<_seed_v1_FlakeStatus__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _seed_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_FlakeStatus__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _seed_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_FlakeStatus__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _seed_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_FlakeStatus__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _seed_v1_GetStatusRequest, callback: grpc.requestCallback<_seed_v1_FlakeStatus__Output>): grpc.ClientUnaryCall;
  
  ListStatus(argument: _seed_v1_ListStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ListStatusResponse__Output>): grpc.ClientUnaryCall;
  ListStatus(argument: _seed_v1_ListStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_ListStatusResponse__Output>): grpc.ClientUnaryCall;
  ListStatus(argument: _seed_v1_ListStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ListStatusResponse__Output>): grpc.ClientUnaryCall;
  ListStatus(argument: _seed_v1_ListStatusRequest, callback: grpc.requestCallback<_seed_v1_ListStatusResponse__Output>): grpc.ClientUnaryCall;
  listStatus(argument: _seed_v1_ListStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ListStatusResponse__Output>): grpc.ClientUnaryCall;
  listStatus(argument: _seed_v1_ListStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_ListStatusResponse__Output>): grpc.ClientUnaryCall;
  listStatus(argument: _seed_v1_ListStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ListStatusResponse__Output>): grpc.ClientUnaryCall;
  listStatus(argument: _seed_v1_ListStatusRequest, callback: grpc.requestCallback<_seed_v1_ListStatusResponse__Output>): grpc.ClientUnaryCall;
  
  Rollback(argument: _seed_v1_RollbackRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  Rollback(argument: _seed_v1_RollbackRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  Rollback(argument: _seed_v1_RollbackRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  Rollback(argument: _seed_v1_RollbackRequest, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  rollback(argument: _seed_v1_RollbackRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  rollback(argument: _seed_v1_RollbackRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  rollback(argument: _seed_v1_RollbackRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  rollback(argument: _seed_v1_RollbackRequest, callback: grpc.requestCallback<_seed_v1_ApplyGenerationResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface ReconcilerHandlers extends grpc.UntypedServiceImplementation {
  ApplyGeneration: grpc.handleUnaryCall<_seed_v1_ApplyGenerationRequest__Output, _seed_v1_ApplyGenerationResponse>;
  
  GetStatus: grpc.handleUnaryCall<_seed_v1_GetStatusRequest__Output, _seed_v1_FlakeStatus>;
  
  ListStatus: grpc.handleUnaryCall<_seed_v1_ListStatusRequest__Output, _seed_v1_ListStatusResponse>;
  
  Rollback: grpc.handleUnaryCall<_seed_v1_RollbackRequest__Output, _seed_v1_ApplyGenerationResponse>;
  
}

export interface ReconcilerDefinition extends grpc.ServiceDefinition {
  ApplyGeneration: MethodDefinition<_seed_v1_ApplyGenerationRequest, _seed_v1_ApplyGenerationResponse, _seed_v1_ApplyGenerationRequest__Output, _seed_v1_ApplyGenerationResponse__Output>
  GetStatus: MethodDefinition<_seed_v1_GetStatusRequest, _seed_v1_FlakeStatus, _seed_v1_GetStatusRequest__Output, _seed_v1_FlakeStatus__Output>
  ListStatus: MethodDefinition<_seed_v1_ListStatusRequest, _seed_v1_ListStatusResponse, _seed_v1_ListStatusRequest__Output, _seed_v1_ListStatusResponse__Output>
  Rollback: MethodDefinition<_seed_v1_RollbackRequest, _seed_v1_ApplyGenerationResponse, _seed_v1_RollbackRequest__Output, _seed_v1_ApplyGenerationResponse__Output>
}
