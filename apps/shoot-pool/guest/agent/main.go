// Command shoot-agent runs inside a Seed shoot microVM as PID 1 (exec'd by the
// initramfs /init) and serves the host's requests: ping, setClock, mount/bind/remount/
// unmount, reseed and exec. See PROTOCOL.md for the wire format.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	portName := flag.String("port", "agent", "name of the virtio-serial port to serve")
	vsockPort := flag.Uint("vsock-port", 1024, "vsock port to listen on (0: none)")
	flag.Parse()

	a := &agent{
		reaper:  startReaper(),
		started: time.Now(),
		// Only what is out of the ordinary: stderr is the console, an emulated UART where
		// each byte is an exit to QEMU, and under TCG the kernel's console path is more code
		// that every clone's QEMU translates afresh.
		logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "shoot-agent: "+format+"\n", args...)
		},
	}
	if *vsockPort != 0 {
		go serveVsock(a, uint32(*vsockPort))
	}
	// Runs forever: as PID 1 the agent must never return (the kernel would panic).
	serveSerial(a, *portName)
}
