package main

// Request and response headers (PROTOCOL.md). Every request carries the id the host chose
// and the op; the response echoes the id so the host can drop answers to requests it gave
// up on (a late answer must never be taken for the answer to the next request).

import (
	"bytes"
	"encoding/json"
)

const protocolVersion = 1

type requestHead struct {
	ID uint32 `json:"id"`
	Op string `json:"op"`
}

type pingRequest struct {
	requestHead
}

type setClockRequest struct {
	requestHead
	EpochMs int64 `json:"epochMs"`
}

type mountRequest struct {
	requestHead
	// Fstype is "9p" or "virtiofs" for host shares (Source is the tag), or any other
	// filesystem the guest kernel knows ("tmpfs", ...).
	Fstype   string `json:"fstype"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
	// Options are appended to the filesystem's defaults (comma-separated mount data).
	Options string `json:"options,omitempty"`
}

type bindSpec struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

type bindRequest struct {
	requestHead
	bindSpec
}

type remountRequest struct {
	requestHead
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
	// Bind remounts a bind mount (changes only that mount's flags, not the filesystem's).
	Bind bool `json:"bind"`
}

type unmountRequest struct {
	requestHead
	Target string `json:"target"`
	// Lazy detaches the mount even while it is busy (MNT_DETACH).
	Lazy bool `json:"lazy"`
	// Remove then removes what a bind made for the target (it and its missing parents).
	Remove bool `json:"remove"`
}

type execRequest struct {
	requestHead
	Argv []string          `json:"argv"`
	Env  map[string]string `json:"env,omitempty"`
	Cwd  string            `json:"cwd,omitempty"`
	// TimeoutMs ends the command's whole process group; 0 means the agent's ceiling.
	TimeoutMs int64 `json:"timeoutMs"`
	// MaxOutputBytes caps stdout and stderr each; 0 means the agent's default.
	MaxOutputBytes int `json:"maxOutputBytes,omitempty"`
	// Unbinds are bind targets unmounted, with what their binds made removed, before the
	// binds: a clone prepared for another caller's mount points sheds them in the same
	// round trip.
	Unbinds []string `json:"unbinds,omitempty"`
	// Binds are made in order before the command runs: a shoot hands the caller's folders
	// over and runs its command in one round trip instead of two.
	Binds []bindSpec `json:"binds,omitempty"`
}

type okResponse struct {
	ID uint32 `json:"id"`
	OK bool   `json:"ok"`
}

type pingResponse struct {
	okResponse
	Version  int   `json:"version"`
	UptimeMs int64 `json:"uptimeMs"`
	EpochMs  int64 `json:"epochMs"`
	// Reseeds counts the host's `reseed` requests since boot, its template's priming included.
	Reseeds int `json:"reseeds"`
}

type setClockResponse struct {
	okResponse
	// PreviousEpochMs is the guest clock before it was set: how stale the snapshot was.
	PreviousEpochMs int64 `json:"previousEpochMs"`
}

type execResponse struct {
	okResponse
	ExitCode        int   `json:"exitCode"`
	Signal          int   `json:"signal,omitempty"`
	TimedOut        bool  `json:"timedOut"`
	DurationMs      int64 `json:"durationMs"`
	StdoutTruncated bool  `json:"stdoutTruncated"`
	StderrTruncated bool  `json:"stderrTruncated"`
}

// Error kinds a request can fail with.
const (
	kindBadRequest = "bad-request" // malformed header, unknown op, missing or invalid field
	kindFailed     = "failed"      // the guest tried and the kernel said no (Errno in code)
	kindInternal   = "internal"    // the agent itself failed
)

type errorBody struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// Code is the errno name (ENOENT, EROFS, ...) when a system call failed.
	Code string `json:"code,omitempty"`
	// Step is "unbind" or "bind" when one of an exec's unbinds or binds failed (the command
	// did not run).
	Step string `json:"step,omitempty"`
}

type errorResponse struct {
	ID    uint32    `json:"id"`
	OK    bool      `json:"ok"`
	Error errorBody `json:"error"`
}

// decodeStrict fills v from a header, refusing unknown fields: a host that sends one
// speaks another version of the protocol, and guessing would hide the bug.
func decodeStrict(header json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
