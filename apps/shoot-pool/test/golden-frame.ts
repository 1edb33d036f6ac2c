// The golden frame of guest/agent/PROTOCOL.md, `{"id":1,"op":"ping"}` with one blob 00 ff:
// the host's framing writes and reads exactly these bytes (protocol.test.ts), and the
// agent answers them (guest-agent.test.ts).
export const GOLDEN_FRAME = Buffer.from(
  '5345454400000014000000017b226964223a312c226f70223a2270696e67227d0000000200ff',
  'hex',
);
