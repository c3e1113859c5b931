package store

// The persistence contract as typed operations (what host backends implement) and its
// adapter to Backend are generated from the IDL — service Persistence in
// idl/sdskit/v1/api.proto, batch ops in state.proto — into gen/go/sdskit/v1/api.sdk.go.
// This file gives them their names in the core and adds the core's own checks.

import (
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Persistence is the persistence contract as 14 typed operations (what host backends
// implement); each write upserts or deletes one row, and removals of absent rows succeed.
// It is the generated sdskitv1.Persistence.
type Persistence = pb.Persistence

// Transactional is implemented by backends that can group writes: the writes between
// Begin and Commit of a channel take effect together, and Rollback discards them. It is
// the generated sdskitv1.PersistenceTransactions.
type Transactional = pb.PersistenceTransactions

// PanicError is the error FromPersistence returns when a host method panics: Op is the
// method ("SaveOutgoing", "Commit", …), Value the panic value; its text is
// "backend panicked in <Op>: <Value>".
type PanicError = pb.PanicError

// FromPersistence adapts a typed Persistence to a Backend (the generated
// sdskitv1.PersistenceBatchAdapter): each batch becomes the typed calls in order, inside
// Begin/Commit when p also implements Transactional, with Rollback on the first error.
//
// Without Transactional a failed batch may be left partially applied (the writes before
// the failing one stay), breaking Backend's all-or-nothing rule: such a backend is only
// crash-safe if it is itself atomic. Errors are wrapped as "<Op>: <cause>", a panicking
// host method becomes a *PanicError, malformed batches are rejected (ErrInvalidBatch)
// before any host call, and an empty batch makes no call. Load returns the host's
// snapshot with its log sorted oldest-first. FromPersistence panics on a nil p.
func FromPersistence(p Persistence) Backend {
	return pb.NewPersistenceBatchAdapter(p).WithHooks(validateBatch, normalizeSnapshot)
}

// normalizeSnapshot sorts a loaded snapshot's log oldest-first, as Backend.Load promises.
func normalizeSnapshot(s *pb.ChannelSnapshot) error {
	sortLog(s.Log)
	return nil
}
