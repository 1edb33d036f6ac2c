// Original file: proto/seed/v1/reconciler.proto


export interface KeptGeneration {
  'generation'?: (string);
  'revision'?: (string);
  'appliedAt'?: (string);
}

export interface KeptGeneration__Output {
  'generation': (string);
  'revision': (string);
  'appliedAt': (string);
}
