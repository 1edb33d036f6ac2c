package main

// The virtio-serial transport (QEMU). The port named "agent" appears as /dev/vportNpM;
// its name is in /sys/class/virtio-ports/vportNpM/name. While no host client is connected
// to the QEMU side, reads return EOF at once (and writes block), so an EOF ends only the
// session, never the agent: it waits briefly and reads again.

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	portsDir = "/sys/class/virtio-ports"
	// idlePoll is how often the agent looks again while no host is connected: short,
	// because a freshly restored clone is waiting for its first answer.
	idlePoll = 5 * time.Millisecond
)

func findPort(name string) (string, bool) {
	entries, err := os.ReadDir(portsDir)
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(portsDir, e.Name(), "name"))
		if err == nil && strings.TrimSpace(string(raw)) == name {
			return "/dev/" + e.Name(), true
		}
	}
	return "", false
}

// waitForPort polls until the port exists: the virtio devices probe asynchronously after
// their modules load. It never gives up; under Cloud Hypervisor there is no such port
// and vsock serves instead.
func waitForPort(a *agent, name string) string {
	deadline := time.Now().Add(10 * time.Second)
	warned := false
	for {
		if path, ok := findPort(name); ok {
			return path
		}
		if time.Now().After(deadline) {
			if !warned {
				a.logf("no virtio-serial port named %q yet; still looking", name)
				warned = true
			}
			time.Sleep(time.Second)
		} else {
			time.Sleep(idlePoll)
		}
	}
}

func serveSerial(a *agent, name string) {
	path := waitForPort(a, name)
	for {
		// A plain blocking descriptor: reads wait for the host or return EOF without it.
		fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		if err != nil {
			a.logf("open %s: %v", path, err)
			time.Sleep(time.Second)
			continue
		}
		port := os.NewFile(uintptr(fd), path)
		a.logf("serving on %s", path)
		for {
			err := a.serve(port)
			if errors.Is(err, io.EOF) {
				time.Sleep(idlePoll)
				continue
			}
			a.logf("%s: %v; reopening", path, err)
			break
		}
		_ = port.Close()
		time.Sleep(100 * time.Millisecond)
	}
}
