// Original file: proto/seed/v1/shoot.proto


export interface ShootResult {
  'exitCode'?: (number);
  'stdout'?: (Buffer | Uint8Array | string);
  'stderr'?: (Buffer | Uint8Array | string);
  'durationMs'?: (number);
  'timedOut'?: (boolean);
  'stdoutTruncated'?: (boolean);
  'stderrTruncated'?: (boolean);
}

export interface ShootResult__Output {
  'exitCode': (number);
  'stdout': (Buffer);
  'stderr': (Buffer);
  'durationMs': (number);
  'timedOut': (boolean);
  'stdoutTruncated': (boolean);
  'stderrTruncated': (boolean);
}
