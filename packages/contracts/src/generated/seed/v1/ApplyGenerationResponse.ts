// Original file: proto/seed/v1/reconciler.proto


export interface ApplyGenerationResponse {
  'changed'?: (boolean);
  'generation'?: (string);
}

export interface ApplyGenerationResponse__Output {
  'changed': (boolean);
  'generation': (string);
}
