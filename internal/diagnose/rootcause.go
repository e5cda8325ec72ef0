// Package diagnose finds why a stack operation of apitap failed and what
// would fix it: the root cause among a stack's events, the class of a
// failure message as AWS writes it, a diagnosis with a concrete fix, and
// the pure planners of the remedies the stack can apply itself (other
// instance types or zones, the key policy statements of the Auto Scaling
// service-linked role) with a cooldown between two of them.
//
// Everything here is pure: the callers read the events, the key policy and
// the fleet, and apply what a planner returns. The message shapes and the
// AWS pages they come from are in docs/aws.md ("Diagnosis").
package diagnose

import (
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/apitap/apitap/events"
)

// StackEvent is one event of DescribeStackEvents, as the caller copied it
// from the SDK's types.StackEvent.
type StackEvent struct {
	Timestamp          time.Time
	LogicalID          string // LogicalResourceId; the stack's name for the stack itself
	PhysicalID         string // PhysicalResourceId; the stack's ARN for the stack itself
	ResourceType       string
	Status             string // ResourceStatus, e.g. CREATE_FAILED
	Reason             string // ResourceStatusReason
	ClientRequestToken string
}

// StackType is the resource type of a stack, of the stack itself and of a
// nested stack alike.
const StackType = "AWS::CloudFormation::Stack"

// Failed reports whether e is a failure (status ending in _FAILED).
func (e StackEvent) Failed() bool { return strings.HasSuffix(e.Status, "_FAILED") }

// IsStack reports whether e is an event of the stack itself, not of one of
// its resources. A nested stack is a resource of type StackType too, but
// its logical id is not the name in its physical id (the nested stack's
// ARN names "<parent>-<logical id>-<suffix>"); the stack's own events carry
// its name as logical id and its ARN as physical id.
func (e StackEvent) IsStack() bool {
	return e.ResourceType == StackType && e.LogicalID != "" && events.StackNameFromID(e.PhysicalID) == e.LogicalID
}

// Consequences: failures CloudFormation reports because of another one.
// They are never a root cause while a failure of another kind exists.
var consequence = []*regexp.Regexp{
	// Resources CloudFormation stopped working on once another failed.
	regexp.MustCompile(`^Resource (creation|update) cancelled`),
	// The stack's own summary of its failed resources.
	regexp.MustCompile(`^The following resource\(s\) failed to (create|update|delete)`),
	// A nested stack's resource in the parent: the cause is inside it.
	regexp.MustCompile(`^Embedded stack \S+ was not successfully (created|updated|deleted)`),
}

// IsConsequence reports whether a failure only follows from another one
// (cancelled, summarised, or failed inside a nested stack).
func IsConsequence(e StackEvent) bool {
	for _, re := range consequence {
		if re.MatchString(e.Reason) {
			return true
		}
	}
	return false
}

// Operation returns the events of one stack operation, newest first, from
// events as DescribeStackEvents returns them (newest first, operations
// mixed, pages concatenated).
//
// With a token, the operation is the events carrying it: CloudFormation
// gives every event of an operation the token the operation was started
// with. Without one (the operation was started without a token, or the
// caller wants the latest), it is the most recent operation: the events
// from the stack's latest operation start back to the newest event. An
// operation starts with the stack's CREATE_, UPDATE_, DELETE_ or
// IMPORT_IN_PROGRESS, or with a rollback of a stack whose previous status
// was a failure (a rollback or a continued rollback asked for later); a
// rollback that directly follows the operation's *_IN_PROGRESS is part of
// that operation.
func Operation(events []StackEvent, token string) []StackEvent {
	if token != "" {
		var out []StackEvent
		for _, e := range events {
			if e.ClientRequestToken == token {
				out = append(out, e)
			}
		}
		return out
	}
	start := -1
	for i, e := range events {
		if e.IsStack() && startsOperation(e.Status, previousStackStatus(events, i)) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil
	}
	out := append([]StackEvent(nil), events[:start+1]...)
	// An operation started with a token gave it to all its events; an event
	// of the window with another token belongs to no part of it.
	if tok := events[start].ClientRequestToken; tok != "" {
		out = Operation(out, tok)
	}
	return out
}

// previousStackStatus is the status of the stack's own event before (older
// than) events[i], or "".
func previousStackStatus(events []StackEvent, i int) string {
	for _, e := range events[i+1:] {
		if e.IsStack() {
			return e.Status
		}
	}
	return ""
}

func startsOperation(status, previous string) bool {
	switch status {
	case "CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "IMPORT_IN_PROGRESS":
		return true
	case "ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "IMPORT_ROLLBACK_IN_PROGRESS":
		return strings.HasSuffix(previous, "_FAILED")
	}
	return false
}

// Cause is the root cause of a failed operation.
type Cause struct {
	Event StackEvent
	// OnlyConsequences is true when every failure of the operation is a
	// consequence (the cause is elsewhere: inside a nested stack, or in
	// events no longer listed); Event is then the oldest of them.
	OnlyConsequences bool
}

// RootCause returns the root cause of the operation (see Operation for
// token): its oldest failure that is not a consequence, or, when there are
// only consequences, the oldest of those. Later failures are usually
// cascades of the first (docs/aws.md, "Diagnosis"), so the oldest is the
// cause, not the last. ok is false when the operation has no failure.
func RootCause(events []StackEvent, token string) (c Cause, ok bool) {
	op := Operation(events, token)
	// Oldest first; the list order breaks ties of equal timestamps (one
	// second resolution is common).
	idx := make([]int, len(op))
	for i := range idx {
		idx[i] = len(op) - 1 - i
	}
	sort.SliceStable(idx, func(a, b int) bool { return op[idx[a]].Timestamp.Before(op[idx[b]].Timestamp) })
	var first *StackEvent
	for _, i := range idx {
		e := op[i]
		if !e.Failed() {
			continue
		}
		if !IsConsequence(e) {
			return Cause{Event: e}, true
		}
		if first == nil {
			first = &op[i]
		}
	}
	if first == nil {
		return Cause{}, false
	}
	return Cause{Event: *first, OnlyConsequences: true}, true
}
