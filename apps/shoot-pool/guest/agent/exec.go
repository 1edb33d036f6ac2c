package main

// exec: run one command in its own process group with the caller's argv, environment and
// stdin, capture stdout and stderr byte-exact up to a cap, and end the whole group on the
// deadline. When the command's first process exits, whatever it left running in its
// group is killed too: a shoot is one command, and a background child holding the output
// pipes open must not hold the answer back.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

const (
	defaultMaxOutputBytes = 1 << 20
	ceilingMaxOutputBytes = 32 << 20
	// ceilingTimeout bounds a request that names no timeout: nothing runs forever.
	ceilingTimeout = 24 * time.Hour
	// drainGrace is how long output is still read after the group was killed; a process
	// that escaped the group (setsid) may keep the pipes open forever.
	drainGrace = 500 * time.Millisecond
	// exitTimedOut is what timeout(1) answers, which callers already know.
	exitTimedOut = 124
	// pathMax is the kernel's PATH_MAX (with the NUL).
	pathMax = 4096
)

// baseEnv is what every command starts from; the request's env overrides it.
var baseEnv = map[string]string{
	"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
	"HOME": "/root",
}

type execResult struct {
	exitCode        int
	signal          int
	timedOut        bool
	duration        time.Duration
	stdout, stderr  []byte
	stdoutTruncated bool
	stderrTruncated bool
}

// validateExec refuses a malformed exec before anything is done for it, binds included.
func validateExec(req execRequest) error {
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return badRequest("argv must name a command")
	}
	if req.TimeoutMs < 0 {
		return badRequest("timeoutMs must not be negative")
	}
	if req.MaxOutputBytes < 0 || req.MaxOutputBytes > ceilingMaxOutputBytes {
		return badRequest(fmt.Sprintf("maxOutputBytes must be 0 … %d", ceilingMaxOutputBytes))
	}
	if len(req.Cwd) >= pathMax {
		return badRequest(fmt.Sprintf("cwd of %d bytes, at most %d", len(req.Cwd), pathMax-1))
	}
	for _, target := range req.Unbinds {
		if len(target) >= pathMax || !strings.HasPrefix(target, "/") {
			return badRequest(fmt.Sprintf("unbinds must be absolute paths under %d bytes", pathMax))
		}
	}
	for _, b := range req.Binds {
		if len(b.Source) >= pathMax || len(b.Target) >= pathMax {
			return badRequest(fmt.Sprintf("bind paths must be under %d bytes", pathMax))
		}
	}
	return nil
}

func runCommand(rp *reaper, req execRequest, stdin []byte) (execResult, error) {
	if err := validateExec(req); err != nil {
		return execResult{}, err
	}
	capBytes := req.MaxOutputBytes
	if capBytes <= 0 {
		capBytes = defaultMaxOutputBytes
	}
	timeout := ceilingTimeout
	if req.TimeoutMs > 0 && time.Duration(req.TimeoutMs)*time.Millisecond < ceilingTimeout {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}

	if req.Cwd != "" {
		// Checked here so a missing directory is not mistaken for a missing command.
		if info, err := os.Stat(req.Cwd); err != nil {
			return execResult{}, failed("cwd", err)
		} else if !info.IsDir() {
			return execResult{}, badRequest("cwd " + req.Cwd + " is not a directory")
		}
	}
	env := mergeEnv(req.Env)
	path, notRunnable := lookPath(req.Argv[0], env["PATH"])
	if notRunnable != nil {
		return *notRunnable, nil
	}

	var pipes pipeSet
	defer pipes.closeAll()
	stdinR, stdinW, err := pipes.pipe()
	if err != nil {
		return execResult{}, err
	}
	stdoutR, stdoutW, err := pipes.pipe()
	if err != nil {
		return execResult{}, err
	}
	stderrR, stderrW, err := pipes.pipe()
	if err != nil {
		return execResult{}, err
	}

	started := time.Now()
	pid, exited, err := rp.spawn(func() (int, error) {
		return syscall.ForkExec(path, req.Argv, &syscall.ProcAttr{
			Dir:   req.Cwd,
			Env:   envList(env),
			Files: []uintptr{stdinR.Fd(), stdoutW.Fd(), stderrW.Fd()},
			// A group of its own, so the deadline ends every process it started.
			Sys: &syscall.SysProcAttr{Setpgid: true},
		})
	})
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			// The shell's answers for a command that cannot run.
			code := 126
			if errno == syscall.ENOENT || errno == syscall.ENOTDIR {
				code = 127
			}
			return execResult{exitCode: code, stderr: []byte("shoot-agent: " + req.Argv[0] + ": " + errno.Error() + "\n")}, nil
		}
		return execResult{}, err
	}
	// The child holds its own copies now; ours would keep the pipes open forever.
	pipes.close(stdinR, stdoutW, stderrW)

	go func() {
		// A command that does not read its stdin gets EPIPE here, which is fine.
		_, _ = stdinW.Write(stdin)
		pipes.close(stdinW)
	}()
	stdout := startCapture(stdoutR, capBytes)
	stderr := startCapture(stderrR, capBytes)

	result := execResult{}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var status syscall.WaitStatus
	select {
	case status = <-exited:
	case <-timer.C:
		result.timedOut = true
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		status = <-exited
	}
	result.duration = time.Since(started)
	// Leftovers of the group: see the top of this file.
	_ = syscall.Kill(-pid, syscall.SIGKILL)

	drainBy := time.After(drainGrace)
	result.stdout, result.stdoutTruncated = stdout.wait(drainBy, func() { pipes.close(stdoutR) })
	result.stderr, result.stderrTruncated = stderr.wait(drainBy, func() { pipes.close(stderrR) })

	switch {
	case result.timedOut:
		result.exitCode = exitTimedOut
	case status.Exited():
		result.exitCode = status.ExitStatus()
	case status.Signaled():
		result.signal = int(status.Signal())
		result.exitCode = 128 + result.signal
	default:
		result.exitCode = 128
	}
	return result, nil
}

// capture reads a stream to its end, keeping the first capBytes bytes and discarding the
// rest (still reading, so the writer never blocks on a full pipe).
type capture struct {
	done      chan struct{}
	data      []byte
	truncated bool
}

func startCapture(r io.Reader, capBytes int) *capture {
	c := &capture{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 64*1024)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				room := capBytes - len(c.data)
				if n > room {
					c.truncated = true
					n = max(room, 0)
				}
				c.data = append(c.data, buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

// wait returns the captured bytes once the stream ended, or at the deadline after
// closing the stream (abort), which ends the read.
func (c *capture) wait(deadline <-chan time.Time, abort func()) ([]byte, bool) {
	select {
	case <-c.done:
	case <-deadline:
		abort()
		<-c.done
	}
	return c.data, c.truncated
}

// pipeSet closes every pipe end it made exactly once, on every path out of runCommand.
type pipeSet struct {
	open []*os.File
}

func (p *pipeSet) pipe() (*os.File, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	p.open = append(p.open, r, w)
	return r, w, nil
}

func (p *pipeSet) close(files ...*os.File) {
	for _, f := range files {
		_ = f.Close() // a second Close returns os.ErrClosed, harmless
	}
}

func (p *pipeSet) closeAll() {
	p.close(p.open...)
}

func mergeEnv(overrides map[string]string) map[string]string {
	env := make(map[string]string, len(baseEnv)+len(overrides))
	for k, v := range baseEnv {
		env[k] = v
	}
	for k, v := range overrides {
		env[k] = v
	}
	return env
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// lookPath resolves argv[0] the way a shell does, against the command's own PATH. A
// command that cannot run answers like a shell (127 not found, 126 not executable)
// rather than failing the request: for the caller it is their command's outcome.
func lookPath(name, pathVar string) (string, *execResult) {
	notFound := func(code int, why string) *execResult {
		return &execResult{exitCode: code, stderr: []byte("shoot-agent: " + name + ": " + why + "\n")}
	}
	if strings.Contains(name, "/") {
		return name, nil // ForkExec reports ENOENT/EACCES itself
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		candidate := filepath.Join(dir, name)
		info, err := os.Stat(candidate)
		if err != nil || info.IsDir() {
			continue
		}
		if info.Mode()&0o111 == 0 {
			return "", notFound(126, "permission denied")
		}
		return candidate, nil
	}
	return "", notFound(127, "command not found")
}
