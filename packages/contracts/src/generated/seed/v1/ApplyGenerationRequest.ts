// Original file: proto/seed/v1/reconciler.proto

import type { Instance as _seed_v1_Instance, Instance__Output as _seed_v1_Instance__Output } from '../../seed/v1/Instance';
import type { FlakeQuota as _seed_v1_FlakeQuota, FlakeQuota__Output as _seed_v1_FlakeQuota__Output } from '../../seed/v1/FlakeQuota';

export interface ApplyGenerationRequest {
  'flakeUri'?: (string);
  'namespace'?: (string);
  'revision'?: (string);
  'generation'?: (string);
  'instances'?: (_seed_v1_Instance)[];
  'quota'?: (_seed_v1_FlakeQuota | null);
}

export interface ApplyGenerationRequest__Output {
  'flakeUri': (string);
  'namespace': (string);
  'revision': (string);
  'generation': (string);
  'instances': (_seed_v1_Instance__Output)[];
  'quota': (_seed_v1_FlakeQuota__Output | null);
}
