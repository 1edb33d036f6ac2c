// Original file: proto/seed/v1/reconciler.proto


export interface FlakeQuota {
  'cpu'?: (string);
  'memory'?: (string);
  'storage'?: (string);
  'pods'?: (number);
  'persistentvolumeclaims'?: (number);
  'services'?: (number);
}

export interface FlakeQuota__Output {
  'cpu': (string);
  'memory': (string);
  'storage': (string);
  'pods': (number);
  'persistentvolumeclaims': (number);
  'services': (number);
}
