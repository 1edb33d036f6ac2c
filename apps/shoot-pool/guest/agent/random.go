package main

// reseed: a clone restored from a snapshot wakes with the template's kernel RNG state, as
// every other clone of that snapshot does; until the kernel reseeds on its own (timer,
// interrupts, the virtio-rng device's kthread) two clones may draw the same bytes. The
// host sends fresh entropy right after the restore, before anything runs: the agent
// credits it to the input pool (RNDADDENTROPY) and forces the CRNG to reseed from it
// (RNDRESEEDCRNG), so every later read (getrandom, /dev/urandom) in this clone differs
// from every other clone's.

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"
)

const (
	// _IOW('R', 0x03, int[2]) and _IO('R', 0x07) from <linux/random.h>.
	ioctlAddEntropy = 0x40085203
	ioctlReseedCrng = 0x5207
	// 32 bytes make a full CRNG key; more than 512 would only be the host's waste.
	minEntropyBytes = 32
	maxEntropyBytes = 512
)

type reseedRequest struct {
	requestHead
}

type reseedResponse struct {
	okResponse
	// EntropyBytes is how much was credited; Reseeds counts the reseeds since boot.
	EntropyBytes int `json:"entropyBytes"`
	Reseeds      int `json:"reseeds"`
}

func reseedKernel(entropy []byte) error {
	if len(entropy) < minEntropyBytes || len(entropy) > maxEntropyBytes {
		return badRequest(fmt.Sprintf("reseed takes %d … %d bytes of entropy, not %d", minEntropyBytes, maxEntropyBytes, len(entropy)))
	}
	// A bare descriptor, not an os.File: the ioctls need nothing more, and an os.File
	// would register it with the runtime's poller, set a finalizer and (for Fd) switch it
	// back to blocking, code every clone's QEMU would translate on its way to its first
	// shoot.
	random, err := syscall.Open("/dev/urandom", syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return failed("open /dev/urandom", err)
	}
	defer syscall.Close(random)
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+(len(entropy)+3)/4*4)
	binary.LittleEndian.PutUint32(info[0:4], uint32(len(entropy)*8))
	binary.LittleEndian.PutUint32(info[4:8], uint32(len(entropy)))
	copy(info[8:], entropy)
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(random), ioctlAddEntropy, uintptr(unsafe.Pointer(&info[0]))); errno != 0 {
		return failed("RNDADDENTROPY", errno)
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(random), ioctlReseedCrng, 0); errno != 0 {
		return failed("RNDRESEEDCRNG", errno)
	}
	return nil
}
