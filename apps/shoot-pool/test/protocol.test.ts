import { describe, expect, it } from '@jest/globals';
import {
  FrameDecoder,
  FrameError,
  MAX_BLOB_BYTES,
  MAX_HEADER_BYTES,
  encodeFrame,
  execResultOf,
} from '../src/agent/protocol';
import { GOLDEN_FRAME as GOLDEN } from './golden-frame';

function head(headerLength: number, blobCount: number): Buffer {
  const bytes = Buffer.alloc(12);
  bytes.write('SEED', 0, 'latin1');
  bytes.writeUInt32BE(headerLength, 4);
  bytes.writeUInt32BE(blobCount, 8);
  return bytes;
}

describe('agent framing', () => {
  it('writes and reads the golden frame the agent answers', () => {
    expect(encodeFrame({ id: 1, op: 'ping' }, [Buffer.from([0, 0xff])])).toEqual(GOLDEN);
    expect(new FrameDecoder().push(GOLDEN)).toEqual([
      { header: { id: 1, op: 'ping' }, blobs: [Buffer.from([0, 0xff])] },
    ]);
  });

  it('round-trips every byte value, however the stream is cut', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const frames = Buffer.concat([
      encodeFrame({ id: 7, ok: true }, [all, Buffer.alloc(0)]),
      encodeFrame({ id: 8, ok: true }),
    ]);
    for (const size of [1, 2, 5, 13, 64, frames.length]) {
      const decoder = new FrameDecoder();
      const out = [];
      for (let at = 0; at < frames.length; at += size) {
        out.push(...decoder.push(frames.subarray(at, at + size)));
      }
      expect(out).toEqual([
        { header: { id: 7, ok: true }, blobs: [all, Buffer.alloc(0)] },
        { header: { id: 8, ok: true }, blobs: [] },
      ]);
      expect(decoder.pendingBytes).toBe(0);
    }
  });

  it('keeps an incomplete frame until the rest arrives', () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame({ id: 1 }, [Buffer.from('abc')]);
    expect(decoder.push(frame.subarray(0, frame.length - 1))).toEqual([]);
    expect(decoder.pendingBytes).toBeGreaterThan(0);
    expect(decoder.push(frame.subarray(frame.length - 1))).toHaveLength(1);
  });

  it('rejects streams that are not frames', () => {
    const cases: [string, Buffer][] = [
      ['bad magic', Buffer.from('NOPE00000000', 'latin1')],
      ['empty header', head(0, 0)],
      ['huge header', head(MAX_HEADER_BYTES + 1, 0)],
      ['too many blobs', head(2, 9)],
      ['header not JSON', Buffer.concat([head(2, 0), Buffer.from('{x')])],
      [
        'huge blob',
        Buffer.concat([head(2, 1), Buffer.from('{}'), Buffer.from([0xff, 0xff, 0xff, 0xff])]),
      ],
    ];
    const thrown = cases.map(([name, bytes]) => {
      try {
        new FrameDecoder().push(bytes);
        return [name, 'accepted'];
      } catch (error) {
        return [name, error instanceof FrameError ? 'FrameError' : String(error)];
      }
    });
    expect(thrown).toEqual(cases.map(([name]) => [name, 'FrameError']));
    expect(() => encodeFrame({}, [Buffer.alloc(0)].concat(Array(8).fill(Buffer.alloc(0))))).toThrow(
      FrameError,
    );
    expect(MAX_BLOB_BYTES).toBe(64 << 20);
  });

  it('reads an exec answer into an ExecResult', () => {
    const header = {
      id: 3,
      ok: true,
      exitCode: 124,
      timedOut: true,
      durationMs: 501,
      stdoutTruncated: false,
      stderrTruncated: true,
    };
    const result = execResultOf(header, [Buffer.from('out'), Buffer.from('err')]);
    expect(result).toEqual({
      exitCode: 124,
      timedOut: true,
      durationMs: 501,
      stdoutTruncated: false,
      stderrTruncated: true,
      stdout: Buffer.from('out'),
      stderr: Buffer.from('err'),
    });
    expect(() => execResultOf(header, [Buffer.from('only one')])).toThrow(FrameError);
    expect(() => execResultOf({ exitCode: 'zero' }, [])).toThrow();
  });
});
