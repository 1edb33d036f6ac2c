// Original file: proto/seed/v1/reconciler.proto

import type { FlakeStatus as _seed_v1_FlakeStatus, FlakeStatus__Output as _seed_v1_FlakeStatus__Output } from '../../seed/v1/FlakeStatus';

export interface ListStatusResponse {
  'flakes'?: (_seed_v1_FlakeStatus)[];
}

export interface ListStatusResponse__Output {
  'flakes': (_seed_v1_FlakeStatus__Output)[];
}
