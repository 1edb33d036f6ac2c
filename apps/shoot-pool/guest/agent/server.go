package main

// One agent serves every transport (the virtio-serial port under QEMU, vsock under Cloud
// Hypervisor) and handles one request at a time: a shoot VM runs one command, and
// serialising keeps exec, mount and clock changes from interleaving.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"
)

type agent struct {
	mu      sync.Mutex
	reaper  *reaper
	started time.Time
	// reseeds counts the host's reseeds since boot: a clone counts its template's too.
	reseeds int
	logf    func(format string, args ...any)
}

// serve answers requests on one connection until it ends. io.EOF means the peer went
// away cleanly between frames; any partial frame is dropped with the session.
func (a *agent) serve(conn io.ReadWriter) error {
	r := bufio.NewReaderSize(conn, 256*1024)
	for {
		f, err := readFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return io.EOF
			}
			var errno syscall.Errno
			if errors.As(err, &errno) {
				return err
			}
			// Garbage or a bad length: skip to the next frame. The host's pending request,
			// if any, times out on its side.
			a.logf("dropping unreadable input: %v", err)
			if err := skipToMagic(r); err != nil {
				return io.EOF
			}
			continue
		}
		out := a.handle(f)
		if _, err := conn.Write(out); err != nil {
			return fmt.Errorf("write answer: %w", err)
		}
	}
}

// handle runs one request and renders its answer frame.
func (a *agent) handle(f frame) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()

	var head requestHead
	if err := json.Unmarshal(f.header, &head); err != nil {
		return a.render(errorFrame(0, badRequest("header is not a JSON object: "+err.Error())))
	}
	answer, blobs, err := a.dispatch(head, f)
	if err != nil {
		return a.render(errorFrame(head.ID, err))
	}
	return a.render(answer, blobs...)
}

func (a *agent) dispatch(head requestHead, f frame) (any, [][]byte, error) {
	ok := okResponse{ID: head.ID, OK: true}
	switch head.Op {
	case "ping":
		var req pingRequest
		if err := decodeStrict(f.header, &req); err != nil {
			return nil, nil, badRequest(err.Error())
		}
		return pingResponse{
			okResponse: ok,
			Version:    protocolVersion,
			UptimeMs:   time.Since(a.started).Milliseconds(),
			EpochMs:    time.Now().UnixMilli(),
			Reseeds:    a.reseeds,
		}, nil, nil

	case "reseed":
		var req reseedRequest
		if err := decodeStrict(f.header, &req); err != nil {
			return nil, nil, badRequest(err.Error())
		}
		if len(f.blobs) != 1 {
			return nil, nil, badRequest("reseed takes one blob: the entropy")
		}
		if err := reseedKernel(f.blobs[0]); err != nil {
			return nil, nil, err
		}
		a.reseeds++
		return reseedResponse{okResponse: ok, EntropyBytes: len(f.blobs[0]), Reseeds: a.reseeds}, nil, nil

	case "setClock":
		var req setClockRequest
		if err := decodeStrict(f.header, &req); err != nil {
			return nil, nil, badRequest(err.Error())
		}
		if req.EpochMs <= 0 {
			return nil, nil, badRequest("epochMs must be positive")
		}
		previous := time.Now().UnixMilli()
		tv := syscall.NsecToTimeval(req.EpochMs * int64(time.Millisecond))
		if err := syscall.Settimeofday(&tv); err != nil {
			return nil, nil, failed("settimeofday", err)
		}
		return setClockResponse{okResponse: ok, PreviousEpochMs: previous}, nil, nil

	case "mount":
		var req mountRequest
		if err := decodeStrict(f.header, &req); err != nil {
			return nil, nil, badRequest(err.Error())
		}
		return ok, nil, mountShare(req)

	case "bind":
		var req bindRequest
		if err := decodeStrict(f.header, &req); err != nil {
			return nil, nil, badRequest(err.Error())
		}
		return ok, nil, bindMount(req.bindSpec)

	case "remount":
		var req remountRequest
		if err := decodeStrict(f.header, &req); err != nil {
			return nil, nil, badRequest(err.Error())
		}
		return ok, nil, remount(req)

	case "unmount":
		var req unmountRequest
		if err := decodeStrict(f.header, &req); err != nil {
			return nil, nil, badRequest(err.Error())
		}
		return ok, nil, unmount(req)

	case "exec":
		var req execRequest
		if err := decodeStrict(f.header, &req); err != nil {
			return nil, nil, badRequest(err.Error())
		}
		if len(f.blobs) > 1 {
			return nil, nil, badRequest("exec takes at most one blob (stdin)")
		}
		if err := validateExec(req); err != nil {
			return nil, nil, err
		}
		var stdin []byte
		if len(f.blobs) == 1 {
			stdin = f.blobs[0]
		}
		for _, target := range req.Unbinds {
			if err := unmount(unmountRequest{Target: target, Remove: true}); err != nil {
				return nil, nil, inStep("unbind", err)
			}
		}
		for _, b := range req.Binds {
			if err := bindMount(b); err != nil {
				return nil, nil, inStep("bind", err)
			}
		}
		res, err := runCommand(a.reaper, req, stdin)
		if err != nil {
			return nil, nil, err
		}
		return execResponse{
			okResponse:      ok,
			ExitCode:        res.exitCode,
			Signal:          res.signal,
			TimedOut:        res.timedOut,
			DurationMs:      res.duration.Milliseconds(),
			StdoutTruncated: res.stdoutTruncated,
			StderrTruncated: res.stderrTruncated,
		}, [][]byte{res.stdout, res.stderr}, nil

	default:
		return nil, nil, badRequest(fmt.Sprintf("unknown op %q", head.Op))
	}
}

func errorFrame(id uint32, err error) errorResponse {
	return errorResponse{ID: id, OK: false, Error: toErrorBody(err)}
}

func (a *agent) render(header any, blobs ...[]byte) []byte {
	out, err := encodeFrame(header, blobs...)
	if err != nil {
		// Only a header that cannot be marshalled gets here, which is a bug in the agent.
		a.logf("cannot encode answer: %v", err)
		out, _ = encodeFrame(errorResponse{Error: errorBody{Kind: kindInternal, Message: err.Error()}})
	}
	return out
}
