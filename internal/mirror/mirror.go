// Package mirror decides which traffic mirror sessions must exist. It is
// pure: given the desired sources (from the selected load balancers), the
// sessions that exist, and the configuration, Input.Plan returns the actions
// and the report (a method, since the type Plan is its result). Everything
// here is table-tested; AWS calls live elsewhere.
//
// Ownership (docs/contracts.md §3): a session is ours only when
// its tag apitap:stack equals this stack's name and it points at this
// stack's mirror target (Config.Owns). We never modify or delete any other
// session; a foreign session on an ENI we want to mirror is a conflict.
package mirror

import (
	"time"

	"github.com/apitap/apitap/internal/contract"
)

// Session limits AWS enforces.
const (
	MaxSessionsPerENI = 3
	MinSessionNumber  = 1
	MaxSessionNumber  = 32766
)

// ConflictPolicy says what to do on an ENI that already has a foreign session.
type ConflictPolicy string

const (
	// ConflictSkip leaves the ENI alone and reports it (default).
	ConflictSkip ConflictPolicy = "skip"
	// ConflictCoexist adds our session with a number above the foreign
	// ones; it is reported as possibly shadowed, since AWS mirrors each
	// packet once, by the lowest-numbered session whose filter accepts it.
	ConflictCoexist ConflictPolicy = "coexist"
)

// Config is the stack's mirroring configuration.
type Config struct {
	StackName     string
	TargetID      string // the stack's traffic mirror target (its NLB)
	FilterID      string // the stack's traffic mirror filter
	SessionNumber int32  // default 1
	Conflict      ConflictPolicy
	// Grace protects sessions created this recently from deletion when a
	// Describe may not show their source as desired yet. Default 3m.
	Grace time.Duration
}

// Source is one ENI that must be mirrored.
type Source struct {
	ENI          string
	LB           string // ARN of the selected load balancer it is mirrored for
	VNI          uint32 // that load balancer's VNI
	InstanceID   string // "" for an ip target whose ENI has no instance
	InstanceType string
	// Epoch changes when the source is (re)started, so that a session
	// re-created after a stop/start gets a new ClientToken: the instance's
	// launch time, or the ENI's attach time.
	Epoch string
	// AlsoLBs are other selected load balancers that target this ENI; it
	// gets one session, for LB (the first in sorted-ARN order).
	AlsoLBs []string
}

// Session is an existing traffic mirror session.
type Session struct {
	ID       string
	ENI      string
	TargetID string
	FilterID string
	Number   int32
	VNI      uint32
	Tags     map[string]string
}

// Owner is the stack named by s's apitap:stack tag, "" when it has none.
// The tag alone does not make a session ours: see Config.Owns.
func (s *Session) Owner() string { return s.Tags[contract.TagStack] }

// Owns reports whether s is ours: its apitap:stack tag is the stack's name
// and it points at the stack's mirror target. Every path that deletes or
// replaces a session decides with this, on the tags read back from AWS,
// never on what a server-side filter returned. With an empty stack name or
// target (a config that skipped Validate) nothing is ours.
func (c Config) Owns(s Session) bool {
	return c.StackName != "" && c.TargetID != "" && s.Tags[contract.TagStack] == c.StackName && s.TargetID == c.TargetID
}

// Blocked is an ENI that must not be tried again before Until: its last
// create failed for a reason that does not go away by retrying at once
// (unsupported source type, three sessions already).
type Blocked struct {
	Until  time.Time
	Reason string
}

// Input is everything Plan needs.
type Input struct {
	Config  Config
	Desired []Source
	// Actual holds the sessions on the stack's target and every session on
	// each desired ENI.
	Actual []Session
	// Blocked ENIs are reported, not retried, until their time.
	Blocked map[string]Blocked
	// Created maps session ids to when this stack created them, where
	// known (from the apitap:created tag or this process's memory); used
	// with Config.Grace.
	Created map[string]time.Time
	Now     time.Time
}

// Create is a session to create.
type Create struct {
	Source Source
	Number int32
	Token  string // ClientToken: the same for every retry of the same create
	// Shadowed is set when a foreign session with a lower number may take
	// the traffic first (ConflictCoexist).
	Shadowed bool
	// Replaces is our session this one replaces (VNI or LB changed):
	// delete it once this create succeeds. nil when it replaces none.
	Replaces *Session
}

// Delete is a session of ours to delete.
type Delete struct {
	Session Session
	Reason  string // "source no longer desired", "duplicate", "replaced", ...
}

// Problem is an ENI left alone, with why.
type Problem struct {
	ENI    string
	LB     string
	Reason string
	// Sessions are the foreign sessions involved, for conflicts.
	Sessions []string
}

// Plan is what to do, and what to tell the user.
type Plan struct {
	Creates []Create
	Deletes []Delete
	// Kept counts desired sources that already have their session.
	Kept int
	// Conflicts are desired ENIs with foreign sessions (skipped, or
	// coexisting and possibly shadowed).
	Conflicts []Problem
	// Unsupported are desired ENIs that cannot be mirrored now (blocked
	// after an unsupported-source or session-limit error, or full).
	Unsupported []Problem
	// Protected are sessions that would be deleted but are within Grace.
	Protected []Delete
}
