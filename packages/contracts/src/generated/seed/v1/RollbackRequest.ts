// Original file: proto/seed/v1/reconciler.proto


export interface RollbackRequest {
  'flakeUri'?: (string);
  'to'?: (string);
}

export interface RollbackRequest__Output {
  'flakeUri': (string);
  'to': (string);
}
