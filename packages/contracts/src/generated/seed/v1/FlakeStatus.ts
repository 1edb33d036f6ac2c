// Original file: proto/seed/v1/reconciler.proto

import type { InstanceStatus as _seed_v1_InstanceStatus, InstanceStatus__Output as _seed_v1_InstanceStatus__Output } from '../../seed/v1/InstanceStatus';
import type { KeptGeneration as _seed_v1_KeptGeneration, KeptGeneration__Output as _seed_v1_KeptGeneration__Output } from '../../seed/v1/KeptGeneration';

export interface FlakeStatus {
  'flakeUri'?: (string);
  'namespace'?: (string);
  'generation'?: (string);
  'revision'?: (string);
  'instances'?: (_seed_v1_InstanceStatus)[];
  'lastError'?: (string);
  'appliedAt'?: (string);
  'removedAt'?: (string);
  'keptClaims'?: (string)[];
  'keptGenerations'?: (_seed_v1_KeptGeneration)[];
}

export interface FlakeStatus__Output {
  'flakeUri': (string);
  'namespace': (string);
  'generation': (string);
  'revision': (string);
  'instances': (_seed_v1_InstanceStatus__Output)[];
  'lastError': (string);
  'appliedAt': (string);
  'removedAt': (string);
  'keptClaims': (string)[];
  'keptGenerations': (_seed_v1_KeptGeneration__Output)[];
}
