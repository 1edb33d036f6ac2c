// Original file: proto/seed/v1/reconciler.proto


export interface Instance {
  'name'?: (string);
  'metaJson'?: (string);
  'image'?: (string);
}

export interface Instance__Output {
  'name': (string);
  'metaJson': (string);
  'image': (string);
}
