// Original file: proto/seed/v1/shoot.proto


export interface ShootRequest {
  'command'?: (string)[];
  'timeoutMs'?: (number);
  'env'?: ({[key: string]: string});
  'stdin'?: (Buffer | Uint8Array | string);
}

export interface ShootRequest__Output {
  'command': (string)[];
  'timeoutMs': (number);
  'env': ({[key: string]: string});
  'stdin': (Buffer);
}
