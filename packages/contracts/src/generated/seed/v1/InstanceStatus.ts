// Original file: proto/seed/v1/reconciler.proto


export interface InstanceStatus {
  'name'?: (string);
  'rollout'?: (string);
  'readyReplicas'?: (number);
  'message'?: (string);
  'reason'?: (string);
}

export interface InstanceStatus__Output {
  'name': (string);
  'rollout': (string);
  'readyReplicas': (number);
  'message': (string);
  'reason': (string);
}
