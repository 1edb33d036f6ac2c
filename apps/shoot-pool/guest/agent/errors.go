package main

import (
	"errors"
	"fmt"
	"syscall"
)

// requestError is a request's failure as the host sees it (PROTOCOL.md, "Errors").
type requestError struct {
	kind    string
	message string
	code    string
	step    string
}

func (e *requestError) Error() string { return e.kind + ": " + e.message }

func badRequest(message string) error {
	return &requestError{kind: kindBadRequest, message: message}
}

// failed wraps a system call's error with what was being done and its errno name.
func failed(doing string, err error) error {
	e := &requestError{kind: kindFailed, message: fmt.Sprintf("%s: %v", doing, err)}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.code = errnoName(errno)
	}
	return e
}

// errnoName gives the symbolic name of the errors a host can act on; others keep only
// their text in the message.
func errnoName(errno syscall.Errno) string {
	switch errno {
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EACCES:
		return "EACCES"
	case syscall.EPERM:
		return "EPERM"
	case syscall.EROFS:
		return "EROFS"
	case syscall.EBUSY:
		return "EBUSY"
	case syscall.EINVAL:
		return "EINVAL"
	case syscall.ENODEV:
		return "ENODEV"
	case syscall.ENOTDIR:
		return "ENOTDIR"
	case syscall.EEXIST:
		return "EEXIST"
	case syscall.ENOSPC:
		return "ENOSPC"
	default:
		return fmt.Sprintf("errno %d", int(errno))
	}
}

// inStep marks which part of a compound request failed.
func inStep(step string, err error) error {
	var re *requestError
	if !errors.As(err, &re) {
		re = &requestError{kind: kindInternal, message: err.Error()}
	}
	marked := *re
	marked.step = step
	return &marked
}

func toErrorBody(err error) errorBody {
	var re *requestError
	if errors.As(err, &re) {
		return errorBody{Kind: re.kind, Message: re.message, Code: re.code, Step: re.step}
	}
	return errorBody{Kind: kindInternal, Message: err.Error()}
}
