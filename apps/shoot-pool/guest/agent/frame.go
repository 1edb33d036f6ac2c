package main

// Framing of the agent protocol (PROTOCOL.md): every message, in both directions, is
//
//	magic "SEED" | u32 BE header length | u32 BE blob count | header (JSON) | blobs
//	blob = u32 BE length | bytes
//
// The header is a small JSON object; byte payloads (stdin, stdout, stderr) travel as raw
// blobs next to it, so output is binary-safe and never base64-inflated.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

var frameMagic = [4]byte{'S', 'E', 'E', 'D'}

// What the agent reads in one request (the host's REQUEST_LIMITS in src/agent/protocol.ts):
// lengths beyond these are refused before anything is allocated for them.
const (
	// An exec header holds argv and env (at most 1 MiB of UTF-8 by the shoot API, up to
	// 6 bytes each once JSON-escaped) and its binds.
	maxHeaderBytes = 8 << 20
	// A request carries at most one blob: an exec's stdin.
	maxBlobs = 1
	// The shoot API's ceiling for stdin (SHOOT_LIMITS.maxStdinBytesCeiling).
	maxBlobBytes = 32 << 20
)

// frame is one decoded message.
type frame struct {
	header json.RawMessage
	blobs  [][]byte
}

// errBadMagic means the stream is not at a frame boundary: the reader resynchronises.
var errBadMagic = errors.New("frame does not start with SEED")

// readFrame reads one frame. A stream that ends between frames returns io.EOF; one that
// ends inside a frame returns io.ErrUnexpectedEOF; one that is not at a frame boundary
// returns errBadMagic without consuming anything (see skipToMagic).
func readFrame(r *bufio.Reader) (frame, error) {
	magic, err := r.Peek(len(frameMagic))
	if err != nil {
		if len(magic) > 0 {
			return frame{}, unexpected(err)
		}
		return frame{}, err
	}
	if [4]byte(magic) != frameMagic {
		return frame{}, errBadMagic
	}
	var fixed [12]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return frame{}, unexpected(err)
	}
	headerLen := binary.BigEndian.Uint32(fixed[4:8])
	blobCount := binary.BigEndian.Uint32(fixed[8:12])
	if headerLen == 0 || headerLen > maxHeaderBytes {
		return frame{}, fmt.Errorf("header length %d out of range", headerLen)
	}
	if blobCount > maxBlobs {
		return frame{}, fmt.Errorf("%d blobs, at most %d", blobCount, maxBlobs)
	}
	header := make([]byte, headerLen)
	if _, err := io.ReadFull(r, header); err != nil {
		return frame{}, unexpected(err)
	}
	blobs := make([][]byte, 0, blobCount)
	for i := uint32(0); i < blobCount; i++ {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return frame{}, unexpected(err)
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > maxBlobBytes {
			return frame{}, fmt.Errorf("blob of %d bytes, at most %d", n, maxBlobBytes)
		}
		blob := make([]byte, n)
		if _, err := io.ReadFull(r, blob); err != nil {
			return frame{}, unexpected(err)
		}
		blobs = append(blobs, blob)
	}
	return frame{header: header, blobs: blobs}, nil
}

// skipToMagic drops bytes up to the next "SEED" so a desynchronised stream (a host that
// vanished mid-frame, a bad length) recovers at the next frame instead of misreading
// every later one. It returns with the magic still unread.
func skipToMagic(r *bufio.Reader) error {
	for {
		magic, err := r.Peek(len(frameMagic))
		if err != nil {
			return err
		}
		if [4]byte(magic) == frameMagic {
			return nil
		}
		if _, err := r.Discard(1); err != nil {
			return err
		}
	}
}

// encodeFrame renders a header and its blobs as one buffer, written with a single Write so
// a frame is never interleaved with another.
func encodeFrame(header any, blobs ...[]byte) ([]byte, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	size := 12 + len(h)
	for _, b := range blobs {
		size += 4 + len(b)
	}
	out := make([]byte, 0, size)
	out = append(out, frameMagic[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(h)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(blobs)))
	out = append(out, h...)
	for _, b := range blobs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
