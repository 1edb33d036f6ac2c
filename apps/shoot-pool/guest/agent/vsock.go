package main

// The vsock transport (Cloud Hypervisor). The host reaches it through CH's hybrid vsock
// (`CONNECT <port>` on CH's Unix socket); each connection is one session. The syscall
// package has no AF_VSOCK address type, so bind and accept are raw system calls.

import (
	"os"
	"syscall"
	"unsafe"
)

const (
	afVsock    = 40
	vmaddrAny  = 0xffffffff // VMADDR_CID_ANY
	sockaddrVM = 16         // sizeof(struct sockaddr_vm)
)

// rawSockaddrVM is struct sockaddr_vm.
type rawSockaddrVM struct {
	family    uint16
	reserved1 uint16
	port      uint32
	cid       uint32
	flags     uint8
	zero      [3]uint8
}

func listenVsock(port uint32) (int, error) {
	fd, err := syscall.Socket(afVsock, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	addr := rawSockaddrVM{family: afVsock, port: port, cid: vmaddrAny}
	if _, _, errno := syscall.Syscall(syscall.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&addr)), sockaddrVM); errno != 0 {
		_ = syscall.Close(fd)
		return -1, errno
	}
	if err := syscall.Listen(fd, 4); err != nil {
		_ = syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// serveVsock accepts host connections forever, one session at a time.
func serveVsock(a *agent, port uint32) {
	fd, err := listenVsock(port)
	if err != nil {
		// No vsock device (QEMU here has none): the serial port serves instead.
		a.logf("no vsock listener on port %d: %v", port, err)
		return
	}
	a.logf("listening on vsock port %d", port)
	for {
		// accept4 without an address: syscall.Accept would close the connection because
		// it cannot decode an AF_VSOCK peer address.
		nfd, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(fd), 0, 0, syscall.SOCK_CLOEXEC, 0, 0)
		if errno != 0 {
			if errno == syscall.EINTR || errno == syscall.ECONNABORTED {
				continue
			}
			a.logf("vsock accept: %v", errno)
			return
		}
		conn := os.NewFile(nfd, "vsock")
		if err := a.serve(conn); err != nil {
			a.logf("vsock session ended: %v", err)
		}
		_ = conn.Close()
	}
}
