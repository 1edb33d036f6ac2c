package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(i)
	}
	out, err := encodeFrame(map[string]any{"id": 7, "op": "exec"}, payload)
	if err != nil {
		t.Fatal(err)
	}
	f, err := readFrame(bufio.NewReader(bytes.NewReader(out)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.blobs[0], payload) || len(f.blobs) != 1 {
		t.Fatalf("blobs changed: %v", f.blobs)
	}
	var head requestHead
	if err := json.Unmarshal(f.header, &head); err != nil || head.ID != 7 || head.Op != "exec" {
		t.Fatalf("header: %s %v", f.header, err)
	}
}

// A request frame is refused at its length fields: nothing is allocated for a header,
// a blob count or a blob length beyond the request limits.
func TestRefusesOversizedRequestFrames(t *testing.T) {
	head := func(headerLen, blobs uint32) []byte {
		out := append([]byte("SEED"), 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(out[4:8], headerLen)
		binary.BigEndian.PutUint32(out[8:12], blobs)
		return out
	}
	cases := map[string][]byte{
		"header":     head(maxHeaderBytes+1, 0),
		"blob count": head(2, 2),
		"blob":       append(append(head(2, 1), "{}"...), 0x02, 0x00, 0x00, 0x01), // 32 MiB + 1
	}
	for name, raw := range cases {
		_, err := readFrame(bufio.NewReader(bytes.NewReader(raw)))
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: got %v, want a refusal", name, err)
		}
	}
}

func TestTruncatedFrameIsUnexpectedEOF(t *testing.T) {
	out, _ := encodeFrame(map[string]any{"id": 1}, []byte("abc"))
	for cut := 1; cut < len(out); cut++ {
		_, err := readFrame(bufio.NewReader(bytes.NewReader(out[:cut])))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(nil))); err != io.EOF {
		t.Fatalf("empty stream: %v", err)
	}
}

func TestResynchronisesAfterGarbage(t *testing.T) {
	good, _ := encodeFrame(map[string]any{"id": 2, "op": "ping"})
	r := bufio.NewReader(bytes.NewReader(append([]byte("xxSEExx"), good...)))
	if _, err := readFrame(r); !errors.Is(err, errBadMagic) {
		t.Fatalf("garbage accepted: %v", err)
	}
	if err := skipToMagic(r); err != nil {
		t.Fatal(err)
	}
	f, err := readFrame(r)
	if err != nil || !strings.Contains(string(f.header), `"ping"`) {
		t.Fatalf("after resync: %s %v", f.header, err)
	}
}

// pipeConn is a request stream in and an answer buffer out.
type pipeConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// serveAndExpect has a fresh agent serve the requests until their end, then checks that
// the header of each answer, in order, contains the matching text.
func serveAndExpect(t *testing.T, requests []map[string]any, answers ...string) {
	t.Helper()
	a := &agent{reaper: startReaper(), started: time.Now(), logf: t.Logf}
	var in bytes.Buffer
	for _, request := range requests {
		frame, err := encodeFrame(request)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(frame)
	}
	conn := &pipeConn{in: &in}
	if err := a.serve(conn); err != io.EOF {
		t.Fatal(err)
	}
	r := bufio.NewReader(&conn.out)
	for i, want := range answers {
		f, err := readFrame(r)
		if err != nil || !strings.Contains(string(f.header), want) {
			t.Fatalf("answer %d: %s %v", i, f.header, err)
		}
	}
}

func TestServeAnswersAndRejects(t *testing.T) {
	serveAndExpect(t, []map[string]any{
		{"id": 1, "op": "ping"},
		{"id": 2, "op": "reboot"},
		{"id": 3, "op": "ping", "surprise": true},
	}, `"ok":true`, `"kind":"bad-request"`, `"kind":"bad-request"`)
}

func TestExec(t *testing.T) {
	rp := startReaper()
	res, err := runCommand(rp, execRequest{Argv: []string{"sh", "-c", "cat; echo err >&2; exit 3"}}, []byte("in\x00put"))
	if err != nil {
		t.Fatal(err)
	}
	if res.exitCode != 3 || string(res.stdout) != "in\x00put" || string(res.stderr) != "err\n" {
		t.Fatalf("%+v", res)
	}

	res, _ = runCommand(rp, execRequest{Argv: []string{"sh", "-c", "sleep 30 & sleep 30"}, TimeoutMs: 200}, nil)
	if !res.timedOut || res.exitCode != 124 || res.duration > 5*time.Second {
		t.Fatalf("timeout: %+v", res)
	}

	res, _ = runCommand(rp, execRequest{Argv: []string{"head", "-c", "5000", "/dev/zero"}, MaxOutputBytes: 1000}, nil)
	if len(res.stdout) != 1000 || !res.stdoutTruncated || res.exitCode != 0 {
		t.Fatalf("cap: %d %+v", len(res.stdout), res.stdoutTruncated)
	}

	if _, err := runCommand(rp, execRequest{Argv: []string{"true"}, MaxOutputBytes: ceilingMaxOutputBytes + 1}, nil); err == nil {
		t.Fatal("an output cap over the ceiling was taken")
	}
	if _, err := runCommand(rp, execRequest{Argv: []string{"true"}, Cwd: "/" + strings.Repeat("d", pathMax)}, nil); err == nil {
		t.Fatal("a cwd longer than PATH_MAX was taken")
	}

	res, _ = runCommand(rp, execRequest{Argv: []string{"no-such-command-here"}}, nil)
	if res.exitCode != 127 {
		t.Fatalf("missing command: %+v", res)
	}

	res, _ = runCommand(rp, execRequest{Argv: []string{"sh", "-c", "echo $FOO"}, Env: map[string]string{"FOO": "bar baz"}}, nil)
	if string(res.stdout) != "bar baz\n" {
		t.Fatalf("env: %q", res.stdout)
	}
}

// goldenFrame is also in the host's test/protocol.test.ts: both sides read and write the
// same bytes.
const goldenFrame = "5345454400000014000000017b226964223a312c226f70223a2270696e67227d0000000200ff"

func TestGoldenFrame(t *testing.T) {
	raw, _ := hex.DecodeString(goldenFrame)
	f, err := readFrame(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if string(f.header) != `{"id":1,"op":"ping"}` || len(f.blobs) != 1 || !bytes.Equal(f.blobs[0], []byte{0, 0xff}) {
		t.Fatalf("golden frame read as %s %v", f.header, f.blobs)
	}
	out, _ := encodeFrame(requestHead{ID: 1, Op: "ping"}, []byte{0, 0xff})
	if hex.EncodeToString(out) != goldenFrame {
		t.Fatalf("golden frame written as %x", out)
	}
}

func TestExecBindsFailBeforeTheCommand(t *testing.T) {
	marker := t.TempDir() + "/ran"
	serveAndExpect(t, []map[string]any{
		{
			"id": 1, "op": "exec", "argv": []string{"touch", marker}, "timeoutMs": 5000,
			"binds": []map[string]any{{"source": "/no/such/dir", "target": t.TempDir() + "/x", "readOnly": false}},
		},
		{
			"id": 2, "op": "exec", "argv": []string{"true"}, "timeoutMs": 5000,
			"binds": []map[string]any{{"source": "/", "target": "/", "readOnly": false, "surprise": 1}},
		},
		{
			"id": 3, "op": "exec", "argv": []string{}, "timeoutMs": 5000,
			"binds": []map[string]any{{"source": t.TempDir(), "target": marker, "readOnly": false}},
		},
	}, `"code":"ENOENT","step":"bind"`, `"kind":"bad-request"`, `"kind":"bad-request"`)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran although its bind failed")
	}
}

// A bind makes its missing target of the source's kind without asking the source's kind
// first (mount.go), and a target it made for a bind that failed is gone again.
func TestBindMakesTheTargetOfTheSourcesKind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("binds need root")
	}
	src, dst := t.TempDir(), t.TempDir()
	if err := os.WriteFile(src+"/file", []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+"/existing", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unmountAfter := func(target string) {
		t.Cleanup(func() { _ = syscall.Unmount(target, syscall.MNT_DETACH) })
	}
	for _, c := range []struct{ source, target, read string }{
		{src, dst + "/dir/nested", dst + "/dir/nested/file"},
		{src + "/file", dst + "/new-file", dst + "/new-file"},
		{src + "/file", dst + "/existing", dst + "/existing"},
	} {
		if err := bindMount(bindSpec{Source: c.source, Target: c.target, ReadOnly: true}); err != nil {
			t.Fatalf("bind %s on %s: %v", c.source, c.target, err)
		}
		unmountAfter(c.target)
		if got, err := os.ReadFile(c.read); err != nil || string(got) != "a file" {
			t.Fatalf("through the bind on %s: %q %v", c.target, got, err)
		}
		if err := os.WriteFile(c.read, []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("a read-only bind on %s took a write: %v", c.target, err)
		}
	}

	err := bindMount(bindSpec{Source: src + "/missing", Target: dst + "/for-missing"})
	var re *requestError
	if !errors.As(err, &re) || re.code != "ENOENT" {
		t.Fatalf("a missing source: %v", err)
	}
	if _, err := os.Lstat(dst + "/for-missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the target made for a failed bind stayed: %v", err)
	}
	// A directory onto an existing file: refused, and the file stays a file.
	if err := os.WriteFile(dst+"/plain", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bindMount(bindSpec{Source: src, Target: dst + "/plain"}); err == nil {
		unmountAfter(dst + "/plain")
		t.Fatal("a directory was bound onto a file")
	}
	if info, err := os.Lstat(dst + "/plain"); err != nil || !info.Mode().IsRegular() {
		t.Fatalf("the file target changed: %v %v", info, err)
	}
}

// Unmounting a bind with remove leaves the tree as it was before the bind: what the bind
// made (the target and its missing parents) goes, what was there stays.
func TestUnmountWithRemoveTakesBackWhatTheBindMade(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("binds need root")
	}
	src, dst := t.TempDir(), t.TempDir()
	if err := os.Mkdir(dst+"/kept", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{dst + "/made/deeper/target", dst + "/kept"} {
		if err := bindMount(bindSpec{Source: src, Target: target}); err != nil {
			t.Fatal(err)
		}
		if err := unmount(unmountRequest{Target: target, Remove: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(dst + "/made"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("what the bind made stayed: %v", err)
	}
	if info, err := os.Lstat(dst + "/kept"); err != nil || !info.IsDir() {
		t.Fatalf("a target that was there before the bind went: %v", err)
	}
}

// An exec's unbinds take a prepared layout away before its binds and command, in the same
// round trip; one that fails (nothing there any more) stops the exec before its command.
func TestExecUnbindsBeforeItsBinds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("binds need root")
	}
	src, dst := t.TempDir(), t.TempDir()
	prepared, next := dst+"/prepared/mount", dst+"/next"
	t.Cleanup(func() {
		for _, target := range []string{prepared, next} {
			_ = syscall.Unmount(target, syscall.MNT_DETACH)
		}
	})
	marker := dst + "/ran"
	a := &agent{reaper: startReaper(), started: time.Now(), logf: t.Logf}
	for i, c := range []struct {
		request map[string]any
		answer  string
	}{
		{map[string]any{
			"argv":  []string{"true"},
			"binds": []map[string]any{{"source": src, "target": prepared, "readOnly": false}},
		}, `"exitCode":0`},
		{map[string]any{
			"argv":    []string{"sh", "-c", "test ! -e " + dst + "/prepared && test -d " + next},
			"unbinds": []string{prepared},
			"binds":   []map[string]any{{"source": src, "target": next, "readOnly": false}},
		}, `"exitCode":0`},
		{map[string]any{"argv": []string{"touch", marker}, "unbinds": []string{prepared}}, `"code":"ENOENT","step":"unbind"`},
		{map[string]any{"argv": []string{"true"}, "unbinds": []string{"relative"}}, `"kind":"bad-request"`},
	} {
		c.request["id"], c.request["op"], c.request["timeoutMs"] = i+1, "exec", 5000
		header, err := json.Marshal(c.request)
		if err != nil {
			t.Fatal(err)
		}
		if answer := a.handle(frame{header: header}); !strings.Contains(string(answer), c.answer) {
			t.Fatalf("exec %d answered %q, not %s", i+1, answer, c.answer)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran although its unbind failed")
	}
}
