package consensus

import (
	"errors"
	"fmt"
)

// Code classifies a consensus error; values cross process boundaries.
type Code uint8

const (
	CodeOK        Code = iota
	CodeNotLeader      // this node does not lead the group; Leader hints who does
	CodeStopped        // the group or engine is stopped
	CodeNotFound       // no such group
	CodeExists         // the group is already started
	CodeTimeout        // the operation did not finish in time; outcome unknown
	CodeDropped        // the proposal was dropped before commit (e.g. leader change); safe to retry
	CodeInvalid        // bad argument
	CodeStorage        // the store failed
	CodeInternal
)

var codeNames = [...]string{"ok", "not leader", "stopped", "not found", "exists", "timeout", "dropped", "invalid", "storage", "internal"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

// Error is a consensus error with a code and, for CodeNotLeader, a hint.
type Error struct {
	Code   Code
	Leader NodeID // with CodeNotLeader: the leader if known
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	s := "consensus: " + e.Code.String()
	if e.Code == CodeNotLeader && e.Leader != 0 {
		s += fmt.Sprintf(" (leader %d)", e.Leader)
	}
	switch {
	case e.Msg != "":
		s += ": " + e.Msg
	case e.Err != nil:
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is compares codes, so errors.Is(err, ErrNotLeader) holds for any leader.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Leader == 0 && t.Code == e.Code
}

var (
	ErrNotLeader = &Error{Code: CodeNotLeader}
	ErrStopped   = &Error{Code: CodeStopped}
	ErrNotFound  = &Error{Code: CodeNotFound}
	ErrExists    = &Error{Code: CodeExists}
	ErrTimeout   = &Error{Code: CodeTimeout}
	ErrDropped   = &Error{Code: CodeDropped}
	ErrInvalid   = &Error{Code: CodeInvalid}
)

// NotLeader returns a CodeNotLeader error hinting at leader.
func NotLeader(leader NodeID) error { return &Error{Code: CodeNotLeader, Leader: leader} }

// Errorf builds an Error; a %w verb sets its cause.
func Errorf(c Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: c, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// CodeOf returns err's code (CodeInternal if it has none).
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

// LeaderHint returns the leader named by a CodeNotLeader error, or 0.
func LeaderHint(err error) NodeID {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeNotLeader {
		return e.Leader
	}
	return 0
}
