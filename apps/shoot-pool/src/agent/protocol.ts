// The agent protocol's framing and message shapes, mirrored from guest/agent (see
// guest/agent/PROTOCOL.md). Pure: no sockets here, so it is unit-tested byte by byte.
//
//   frame = "SEED" | u32 BE header length | u32 BE blob count | header (UTF-8 JSON) | blob*
//   blob  = u32 BE length | bytes
//
// Byte payloads (stdin, stdout, stderr) travel as blobs beside the JSON header: binary
// output round-trips exactly and is never base64-inflated on the wire.
import { SHOOT_LIMITS } from '@seed/contracts';
import { z } from 'zod';

export const FRAME_MAGIC = Buffer.from('SEED', 'latin1');
export const PROTOCOL_VERSION = 1;
/** The format's outer limits; each direction narrows them (FrameLimits). */
export const MAX_HEADER_BYTES = 8 << 20;
export const MAX_BLOBS = 8;
export const MAX_BLOB_BYTES = 64 << 20;

/** The most a decoder accepts in one frame: it refuses a length before reading its bytes. */
export interface FrameLimits {
  maxHeaderBytes: number;
  maxBlobs: number;
  maxBlobBytes: number;
}

/**
 * What the agent reads in a request (guest/agent/frame.c, the same numbers): an exec
 * header holds argv and env (1 MiB of UTF-8, up to 6 bytes each once JSON-escaped) and its
 * binds; the only blob is stdin.
 */
export const REQUEST_LIMITS: FrameLimits = {
  maxHeaderBytes: MAX_HEADER_BYTES,
  maxBlobs: 1,
  maxBlobBytes: SHOOT_LIMITS.maxStdinBytesCeiling,
};

/** The agent's output cap when an exec names none (guest/agent/exec.c). */
export const DEFAULT_MAX_OUTPUT_BYTES = 1 << 20;
/** An answer's header is a few hundred bytes; an error message a few more. */
const MAX_ANSWER_HEADER_BYTES = 64 << 10;

/**
 * What the host reads in the answer to `request`: only an exec's answer has blobs, stdout
 * and stderr, each within the cap that exec asked for. A guest that sends more is cut off
 * at the length field, before a byte of it is buffered.
 */
export function answerLimits(request: RequestHeader): FrameLimits {
  if (request.op !== 'exec') {
    return { maxHeaderBytes: MAX_ANSWER_HEADER_BYTES, maxBlobs: 0, maxBlobBytes: 0 };
  }
  return {
    maxHeaderBytes: MAX_ANSWER_HEADER_BYTES,
    maxBlobs: 2,
    maxBlobBytes: request.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
  };
}

export interface Frame {
  header: unknown;
  blobs: Buffer[];
}

/** The byte stream is not a sequence of frames: the connection cannot be trusted anymore. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
}

export function encodeFrame(header: object, blobs: readonly Buffer[] = []): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > MAX_HEADER_BYTES) throw new FrameError(`header of ${json.length} bytes`);
  if (blobs.length > MAX_BLOBS) throw new FrameError(`${blobs.length} blobs, at most ${MAX_BLOBS}`);
  const head = Buffer.alloc(12);
  FRAME_MAGIC.copy(head, 0);
  head.writeUInt32BE(json.length, 4);
  head.writeUInt32BE(blobs.length, 8);
  const parts: Buffer[] = [head, json];
  for (const blob of blobs) {
    if (blob.length > MAX_BLOB_BYTES) throw new FrameError(`blob of ${blob.length} bytes`);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(blob.length, 0);
    parts.push(size, blob);
  }
  return Buffer.concat(parts);
}

type Step =
  | { at: 'head' }
  | { at: 'header'; headerLength: number; blobCount: number }
  | { at: 'blob-length'; header: unknown; blobCount: number; blobs: Buffer[] }
  | { at: 'blob'; header: unknown; blobCount: number; blobs: Buffer[]; length: number };

/**
 * Turns a byte stream into frames, however it is chunked. Each step waits for exactly the
 * bytes it needs and copies them once, so a large output does not cost quadratic time.
 * A stream that breaks the format throws FrameError; the decoder is useless afterwards.
 */
export class FrameDecoder {
  /** Applies from the next frame header or blob length read on. */
  limits: FrameLimits;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #step: Step = { at: 'head' };

  constructor(
    limits: FrameLimits = {
      maxHeaderBytes: MAX_HEADER_BYTES,
      maxBlobs: MAX_BLOBS,
      maxBlobBytes: MAX_BLOB_BYTES,
    },
  ) {
    this.limits = limits;
  }

  /** Bytes received that are not part of a complete frame yet. */
  get pendingBytes(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const frames: Frame[] = [];
    for (let frame = this.#advance(); frame !== undefined; frame = this.#advance()) {
      frames.push(frame);
    }
    return frames;
  }

  /** Runs steps while their bytes are there; returns a frame when one completes. */
  #advance(): Frame | undefined {
    for (;;) {
      const step = this.#step;
      switch (step.at) {
        case 'head': {
          const head = this.#take(12);
          if (head === undefined) return undefined;
          if (!head.subarray(0, 4).equals(FRAME_MAGIC)) {
            throw new FrameError(`expected "SEED", got ${head.subarray(0, 4).toString('hex')}`);
          }
          const headerLength = head.readUInt32BE(4);
          const blobCount = head.readUInt32BE(8);
          if (headerLength === 0 || headerLength > this.limits.maxHeaderBytes) {
            throw new FrameError(
              `header length ${headerLength} out of range (at most ${this.limits.maxHeaderBytes})`,
            );
          }
          if (blobCount > this.limits.maxBlobs) {
            throw new FrameError(`${blobCount} blobs, at most ${this.limits.maxBlobs}`);
          }
          this.#step = { at: 'header', headerLength, blobCount };
          break;
        }
        case 'header': {
          const raw = this.#take(step.headerLength);
          if (raw === undefined) return undefined;
          let header: unknown;
          try {
            header = JSON.parse(raw.toString('utf8'));
          } catch {
            throw new FrameError('header is not JSON');
          }
          this.#step = { at: 'blob-length', header, blobCount: step.blobCount, blobs: [] };
          break;
        }
        case 'blob-length': {
          if (step.blobs.length === step.blobCount) {
            this.#step = { at: 'head' };
            return { header: step.header, blobs: step.blobs };
          }
          const size = this.#take(4);
          if (size === undefined) return undefined;
          const length = size.readUInt32BE(0);
          if (length > this.limits.maxBlobBytes) {
            throw new FrameError(`blob of ${length} bytes, at most ${this.limits.maxBlobBytes}`);
          }
          this.#step = { ...step, at: 'blob', length };
          break;
        }
        case 'blob': {
          const blob = this.#take(step.length);
          if (blob === undefined) return undefined;
          step.blobs.push(blob);
          this.#step = {
            at: 'blob-length',
            header: step.header,
            blobCount: step.blobCount,
            blobs: step.blobs,
          };
          break;
        }
      }
    }
  }

  /** Removes and returns the next n bytes, or undefined while fewer are buffered. */
  #take(n: number): Buffer | undefined {
    if (this.#buffered < n) return undefined;
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}

// --- requests ---------------------------------------------------------------------

export interface MountRequest {
  /** `9p` or `virtiofs` for a VMM share (source = its tag), or any guest filesystem. */
  fstype: string;
  source: string;
  target: string;
  readOnly: boolean;
  /** Extra mount data, appended to the agent's defaults for the filesystem. */
  options?: string;
}

export interface BindRequest {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface RemountRequest {
  target: string;
  readOnly: boolean;
  /** Remount only this bind mount's flags (MS_BIND), not the filesystem's. */
  bind: boolean;
}

export interface UnmountRequest {
  target: string;
  /** Detach even while busy (MNT_DETACH). */
  lazy: boolean;
  /** Then remove what a bind made for the target (it and its missing parents). */
  remove?: boolean;
}

export interface ExecRequest {
  argv: readonly string[];
  /** Overrides the agent's base environment (PATH, HOME). */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Bytes written to the command's stdin, then closed. */
  stdin?: Buffer;
  /** The whole process group is killed at this deadline: exit code 124, timedOut. */
  timeoutMs: number;
  /** Cap of stdout and of stderr, each; the agent's default is 1 MiB, its ceiling 32 MiB. */
  maxOutputBytes?: number;
  /**
   * Bind targets unmounted, with what their binds made removed, before the binds: a
   * failed one answers an error (step `unbind`) and the command does not run.
   */
  unbinds?: readonly string[];
  /**
   * Made in order before the command runs, in the same round trip: a failed one answers
   * an error (step `bind`) and the command does not run.
   */
  binds?: readonly BindRequest[];
}

/** The wire header of each request, without its id (the client numbers them). */
export type RequestHeader =
  | { op: 'ping' }
  | { op: 'setClock'; epochMs: number }
  | { op: 'reseed' }
  | ({ op: 'mount' } & MountRequest)
  | ({ op: 'bind' } & BindRequest)
  | ({ op: 'remount' } & RemountRequest)
  | ({ op: 'unmount' } & UnmountRequest)
  | ({ op: 'exec' } & Omit<ExecRequest, 'stdin'>);

export type AgentOp = RequestHeader['op'];

// --- responses --------------------------------------------------------------------

export const responseHeadSchema = z.object({ id: z.number().int().nonnegative(), ok: z.boolean() });

export const agentFailureSchema = z.object({
  kind: z.string(),
  message: z.string(),
  code: z.string().optional(),
  /** `unbind` or `bind` when one of an exec's unbinds or binds failed. */
  step: z.string().optional(),
});
export type AgentFailure = z.infer<typeof agentFailureSchema>;

export const errorResponseSchema = z.object({ ok: z.literal(false), error: agentFailureSchema });

export const pingResultSchema = z.object({
  version: z.number().int(),
  uptimeMs: z.number(),
  epochMs: z.number(),
  /** The host's reseeds since the guest booted, a primed template's included (it reseeds once). */
  reseeds: z.number().int().nonnegative(),
});
export type PingResult = z.infer<typeof pingResultSchema>;

export const setClockResultSchema = z.object({ previousEpochMs: z.number() });
export type SetClockResult = z.infer<typeof setClockResultSchema>;

export const reseedResultSchema = z.object({
  entropyBytes: z.number().int(),
  reseeds: z.number().int().positive(),
});
export type ReseedResult = z.infer<typeof reseedResultSchema>;

export const execHeaderSchema = z.object({
  exitCode: z.number().int(),
  signal: z.number().int().optional(),
  timedOut: z.boolean(),
  durationMs: z.number(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
});

export interface ExecResult {
  exitCode: number;
  /** The signal that ended the command (exitCode is then 128 + signal). */
  signal?: number;
  timedOut: boolean;
  durationMs: number;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** Builds the ExecResult from an exec answer's header and its two blobs. */
export function execResultOf(header: unknown, blobs: readonly Buffer[]): ExecResult {
  const parsed = execHeaderSchema.parse(header);
  if (blobs.length !== 2) throw new FrameError(`exec answer with ${blobs.length} blobs, not 2`);
  return { ...parsed, stdout: blobs[0]!, stderr: blobs[1]! };
}
