package diagnose

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

const stackARN = "arn:aws:cloudformation:us-east-1:123456789012:stack/apitap/5b0c7e20-9d3f-11f0-8a1b-0e4c6f2d3a11"

// loadPages reads testdata/describe-stack-events.json: the pages of
// DescribeStackEvents (newest first) in the API's JSON, concatenated as a
// caller paging through them would.
func loadPages(t *testing.T) []StackEvent {
	t.Helper()
	raw, err := os.ReadFile("testdata/describe-stack-events.json")
	if err != nil {
		t.Fatal(err)
	}
	var pages []struct {
		StackEvents []struct {
			LogicalResourceId, PhysicalResourceId, ResourceType, ResourceStatus, ResourceStatusReason, ClientRequestToken string
			Timestamp                                                                                                     time.Time
		}
		NextToken string
	}
	if err := json.Unmarshal(raw, &pages); err != nil {
		t.Fatal(err)
	}
	var out []StackEvent
	for i, p := range pages {
		if (p.NextToken == "") != (i == len(pages)-1) {
			t.Fatalf("page %d: NextToken %q", i, p.NextToken)
		}
		for _, e := range p.StackEvents {
			out = append(out, StackEvent{Timestamp: e.Timestamp, LogicalID: e.LogicalResourceId, PhysicalID: e.PhysicalResourceId,
				ResourceType: e.ResourceType, Status: e.ResourceStatus, Reason: e.ResourceStatusReason, ClientRequestToken: e.ClientRequestToken})
		}
	}
	for i := 1; i < len(out); i++ {
		if out[i].Timestamp.After(out[i-1].Timestamp) {
			t.Fatalf("fixture not newest first at %d", i)
		}
	}
	return out
}

func TestRootCauseFixture(t *testing.T) {
	events := loadPages(t)
	for _, tc := range []struct {
		name, token string
		ok          bool
		at          string // the cause's timestamp
		resource    string
		contains    string
		class       Class
	}{
		// The latest operation (no token): the first capacity failure in
		// us-east-1a, not the rollback's later one in us-east-1b, nor the
		// cancelled rule, nor the stack's summary.
		{name: "latest operation", ok: true, at: "2026-03-14T08:52:39.204Z", resource: "SnifferGroup",
			contains: "c7g.large capacity in the Availability Zone you requested (us-east-1a)", class: InsufficientCapacity},
		{name: "an older operation by token", token: "apitap-deploy-2f6c1e0a-8d4b-4c1e-9f3a-7b2d5e8c0a14", ok: true,
			at: "2026-03-12T09:25:14.870Z", resource: "SnifferGroup", contains: "Client error on launch", class: KMSLaunch},
		{name: "unknown token", token: "Console-UpdateStack-00000000-0000-0000-0000-000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := RootCause(events, tc.token)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, c)
			}
			if !ok {
				return
			}
			if got := c.Event.Timestamp.Format("2006-01-02T15:04:05.000Z"); got != tc.at || c.Event.LogicalID != tc.resource ||
				!strings.Contains(c.Event.Reason, tc.contains) || c.OnlyConsequences {
				t.Errorf("cause = %+v", c)
			}
			if got := Classify("", c.Event.Reason).Class; got != tc.class {
				t.Errorf("class = %s, want %s", got, tc.class)
			}
		})
	}
	// The latest operation spans from its UPDATE_IN_PROGRESS to the newest
	// event: nothing of the operations before it.
	op := Operation(events, "")
	if last := op[len(op)-1]; !last.IsStack() || last.Status != "UPDATE_IN_PROGRESS" || !strings.HasPrefix(last.Timestamp.Format(time.RFC3339), "2026-03-14") {
		t.Errorf("operation starts with %+v", last)
	}
	if len(op) != 13 {
		t.Errorf("operation has %d events, want 13", len(op))
	}
	// The first operation (a create that succeeded) has no failure.
	if c, ok := RootCause(events[len(events)-11:], ""); ok {
		t.Errorf("the successful create has a cause: %+v", c)
	}
}

// ev builds an event: stack events have the stack's name and ARN.
func ev(sec int, id, status, reason, token string) StackEvent {
	e := StackEvent{Timestamp: time.Date(2026, 3, 14, 9, 0, sec, 0, time.UTC), LogicalID: id, Status: status, Reason: reason,
		ClientRequestToken: token, ResourceType: "AWS::EC2::TrafficMirrorFilterRule", PhysicalID: "tmfr-" + id}
	if id == "apitap" {
		e.ResourceType, e.PhysicalID = StackType, stackARN
	}
	return e
}

// newestFirst reverses events written oldest first.
func newestFirst(events ...StackEvent) []StackEvent {
	out := make([]StackEvent, len(events))
	for i, e := range events {
		out[len(events)-1-i] = e
	}
	return out
}

func TestRootCause(t *testing.T) {
	const tokA, tokB = "tok-a", "tok-b"
	nested := StackEvent{Timestamp: time.Date(2026, 3, 14, 9, 0, 5, 0, time.UTC), LogicalID: "Network", ResourceType: StackType,
		PhysicalID: "arn:aws:cloudformation:us-east-1:123456789012:stack/apitap-Network-1X2Y3Z/0a1b2c3d", Status: "CREATE_FAILED",
		Reason: "Embedded stack arn:aws:cloudformation:us-east-1:123456789012:stack/apitap-Network-1X2Y3Z/0a1b2c3d was not successfully created: The following resource(s) failed to create: [Subnet]. "}
	for _, tc := range []struct {
		name   string
		events []StackEvent // oldest first
		token  string
		ok     bool
		want   string // the cause's LogicalID and second
		only   bool
	}{
		{name: "the oldest failure, not the last", events: []StackEvent{
			ev(0, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", ""),
			ev(1, "RuleA", "UPDATE_FAILED", "first real failure", ""),
			ev(2, "RuleB", "UPDATE_FAILED", "Resource update cancelled", ""),
			ev(3, "apitap", "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [RuleA, RuleB]. ", ""),
			ev(4, "RuleC", "UPDATE_FAILED", "a later real failure during rollback", ""),
			ev(5, "apitap", "UPDATE_ROLLBACK_FAILED", "The following resource(s) failed to update: [RuleC]. ", ""),
		}, ok: true, want: "RuleA@1"},
		{name: "timestamps decide over list order", events: []StackEvent{
			ev(0, "apitap", "CREATE_IN_PROGRESS", "User Initiated", ""),
			ev(3, "RuleB", "CREATE_FAILED", "later", ""),
			ev(2, "RuleA", "CREATE_FAILED", "earlier", ""),
		}, ok: true, want: "RuleA@2"},
		{name: "events of another operation are ignored", token: tokB, events: []StackEvent{
			ev(0, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", tokA),
			ev(1, "RuleA", "UPDATE_FAILED", "failure of A", tokA),
			ev(2, "apitap", "UPDATE_ROLLBACK_COMPLETE", "", tokA),
			ev(3, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", tokB),
			ev(4, "RuleB", "UPDATE_FAILED", "failure of B", tokB),
			ev(5, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", "tok-c"),
			ev(6, "RuleC", "UPDATE_FAILED", "failure of C", "tok-c"),
		}, ok: true, want: "RuleB@4"},
		{name: "no token: the latest operation only", events: []StackEvent{
			ev(0, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", ""),
			ev(1, "RuleA", "UPDATE_FAILED", "failure of the previous operation", ""),
			ev(2, "apitap", "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [RuleA]. ", ""),
			ev(3, "apitap", "UPDATE_ROLLBACK_COMPLETE", "", ""),
			ev(4, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", ""),
			ev(5, "RuleB", "UPDATE_COMPLETE", "", ""),
			ev(6, "apitap", "UPDATE_COMPLETE", "", ""),
		}},
		{name: "no token: a token on the start keeps the operation's events", events: []StackEvent{
			ev(0, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", tokA),
			ev(1, "RuleA", "UPDATE_FAILED", "failure of A", tokA),
			ev(2, "RuleZ", "UPDATE_FAILED", "an event of another token in the window", "tok-z"),
		}, ok: true, want: "RuleA@1"},
		{name: "only cascades: the first of them", events: []StackEvent{
			ev(0, "apitap", "CREATE_IN_PROGRESS", "User Initiated", ""),
			ev(1, "RuleA", "CREATE_FAILED", "Resource creation cancelled", ""),
			ev(2, "RuleB", "CREATE_FAILED", "Resource creation cancelled", ""),
			ev(3, "apitap", "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [RuleA, RuleB]. Rollback requested by user.", ""),
		}, ok: true, want: "RuleA@1", only: true},
		{name: "a nested stack's failure is a consequence", events: []StackEvent{
			ev(0, "apitap", "CREATE_IN_PROGRESS", "User Initiated", ""),
			nested,
			ev(6, "RuleA", "CREATE_FAILED", "the parent's own failure", ""),
		}, ok: true, want: "RuleA@6"},
		{name: "only a nested stack's failure", events: []StackEvent{
			ev(0, "apitap", "CREATE_IN_PROGRESS", "User Initiated", ""),
			nested,
			ev(6, "RuleA", "CREATE_FAILED", "Resource creation cancelled", ""),
		}, ok: true, want: "Network@5", only: true},
		{name: "a stack's own failure that is no summary is a cause", events: []StackEvent{
			ev(0, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", ""),
			ev(1, "apitap", "UPDATE_ROLLBACK_IN_PROGRESS", "Parameters: [SnifferAmi] do not exist in the template", ""),
			ev(2, "apitap", "UPDATE_ROLLBACK_FAILED", "Parameters: [SnifferAmi] do not exist in the template", ""),
		}, ok: true, want: "apitap@2"},
		{name: "a rollback directly after its operation's start belongs to it", events: []StackEvent{
			ev(0, "apitap", "CREATE_IN_PROGRESS", "User Initiated", ""),
			ev(1, "RuleA", "CREATE_FAILED", "cause", ""),
			ev(2, "apitap", "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [RuleA]. ", ""),
			ev(3, "RuleB", "DELETE_COMPLETE", "", ""),
		}, ok: true, want: "RuleA@1"},
		{name: "a continued rollback is an operation of its own", events: []StackEvent{
			ev(0, "apitap", "UPDATE_IN_PROGRESS", "User Initiated", ""),
			ev(1, "RuleA", "UPDATE_FAILED", "cause of the update", ""),
			ev(2, "apitap", "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [RuleA]. ", ""),
			ev(3, "RuleB", "UPDATE_FAILED", "rollback failure", ""),
			ev(4, "apitap", "UPDATE_ROLLBACK_FAILED", "The following resource(s) failed to update: [RuleB]. ", ""),
			ev(5, "apitap", "UPDATE_ROLLBACK_IN_PROGRESS", "", ""),
			ev(6, "RuleB", "UPDATE_FAILED", "rollback failure again", ""),
			ev(7, "apitap", "UPDATE_ROLLBACK_FAILED", "The following resource(s) failed to update: [RuleB]. ", ""),
		}, ok: true, want: "RuleB@6"},
		{name: "no stack start at all", events: []StackEvent{
			ev(1, "RuleA", "UPDATE_FAILED", "orphan", ""),
		}},
		{name: "no events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := RootCause(newestFirst(tc.events...), tc.token)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, c)
			}
			if !ok {
				return
			}
			got := c.Event.LogicalID + "@" + strconv.Itoa(c.Event.Timestamp.Second())
			if got != tc.want || c.OnlyConsequences != tc.only {
				t.Errorf("cause = %s (only consequences %v), want %s (%v)", got, c.OnlyConsequences, tc.want, tc.only)
			}
		})
	}
}

func TestIsStack(t *testing.T) {
	for _, tc := range []struct {
		e    StackEvent
		want bool
	}{
		{StackEvent{LogicalID: "apitap", ResourceType: StackType, PhysicalID: stackARN}, true},
		{StackEvent{LogicalID: "Network", ResourceType: StackType, PhysicalID: "arn:aws:cloudformation:us-east-1:1:stack/apitap-Network-1X/abc"}, false},
		{StackEvent{LogicalID: "Network", ResourceType: StackType}, false},
		{StackEvent{LogicalID: "apitap", ResourceType: "AWS::EC2::TrafficMirrorTarget", PhysicalID: stackARN}, false},
	} {
		if got := tc.e.IsStack(); got != tc.want {
			t.Errorf("IsStack(%+v) = %v", tc.e, got)
		}
	}
}
