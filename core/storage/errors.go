package storage

import (
	"errors"
	"fmt"
)

// Code classifies a storage error. Codes cross process boundaries (the
// plugin protocol carries them), so their values are fixed: append only.
type Code uint8

const (
	CodeOK          Code = iota
	CodeCompacted        // the index is below FirstIndex-1
	CodeUnavailable      // the index is above LastIndex
	CodeInvalid          // the request breaks the contract (gap, bad range)
	CodeCorrupt          // stored data failed its checksum or framing
	CodeClosed           // the store was closed
	CodeFailed           // the store failed (an fsync error) and is closed for good
	CodeNotFound         // no such group or file
	CodeTooLarge         // an entry or batch exceeds the store's limit
	CodeInternal         // anything else
)

var codeNames = [...]string{"ok", "compacted", "unavailable", "invalid", "corrupt", "closed", "failed", "not found", "too large", "internal"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

// Error is a storage error with a code.
type Error struct {
	Code Code
	Msg  string
	Err  error // the cause, if any
}

func (e *Error) Error() string {
	s := "storage: " + e.Code.String()
	switch {
	case e.Msg != "":
		s += ": " + e.Msg // Errorf's message already holds the cause
	case e.Err != nil:
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCompacted) and the like compare codes.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Code == e.Code
}

// Sentinels to compare with errors.Is; they match any Error of their code.
var (
	ErrCompacted   = &Error{Code: CodeCompacted}
	ErrUnavailable = &Error{Code: CodeUnavailable}
	ErrInvalid     = &Error{Code: CodeInvalid}
	ErrCorrupt     = &Error{Code: CodeCorrupt}
	ErrClosed      = &Error{Code: CodeClosed}
	ErrFailed      = &Error{Code: CodeFailed}
	ErrNotFound    = &Error{Code: CodeNotFound}
	ErrTooLarge    = &Error{Code: CodeTooLarge}
)

// Errorf builds an Error with a code; a %w verb sets its cause.
func Errorf(c Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: c, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// CodeOf returns err's code: CodeOK for nil, CodeInternal for an error that
// carries none.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
