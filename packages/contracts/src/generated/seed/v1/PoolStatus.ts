// Original file: proto/seed/v1/shoot.proto


export interface PoolStatus {
  'idle'?: (number);
  'busy'?: (number);
  'queued'?: (number);
  'capacity'?: (number);
}

export interface PoolStatus__Output {
  'idle': (number);
  'busy': (number);
  'queued': (number);
  'capacity': (number);
}
