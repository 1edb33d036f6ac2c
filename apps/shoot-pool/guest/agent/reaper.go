package main

// The agent runs as PID 1, so every orphan in the guest becomes its child. One goroutine
// reaps them all with wait4(-1) and hands the statuses of the commands it started to
// whoever waits for them. os/exec cannot be used: its Wait would race this reaper for
// the same pid.

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
}

// startReaper returns the process's one reaper: two would race each other for the same
// exits and lose them.
var startReaper = sync.OnceValue(newReaper)

func newReaper() *reaper {
	r := &reaper{waiters: map[int]chan syscall.WaitStatus{}}
	sigchld := make(chan os.Signal, 16)
	signal.Notify(sigchld, syscall.SIGCHLD)
	go func() {
		for range sigchld {
			r.reapAll()
		}
	}()
	return r
}

// spawn starts a process while holding the lock, so the reaper cannot dispatch its exit
// before the waiter is registered, and returns the channel its status arrives on.
func (r *reaper) spawn(start func() (int, error)) (int, <-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return 0, nil, err
	}
	done := make(chan syscall.WaitStatus, 1)
	r.waiters[pid] = done
	return pid, done, nil
}

func (r *reaper) reapAll() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		if done, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			done <- status
		}
		r.mu.Unlock()
	}
}
