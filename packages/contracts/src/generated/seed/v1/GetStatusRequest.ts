// Original file: proto/seed/v1/reconciler.proto


export interface GetStatusRequest {
  'flakeUri'?: (string);
}

export interface GetStatusRequest__Output {
  'flakeUri': (string);
}
