package remedy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/remedy"
	"github.com/apitap/apitap/internal/stackconfig"
)

const (
	stackName = "apitap"
	fleet     = "apitap-sniffers"
)

// account is a deployed stack's simulated account: its topic, its
// diagnoses table, its fleet with three types over two zones, its EBS key
// without the Auto Scaling role's grant, and the stack.
type account struct {
	t       *testing.T
	a       *awssim.Account
	clock   *awssim.ManualClock
	topic   string
	key     string
	stackID string
	engine  *remedy.Engine
}

var types = []string{"c7g.large", "c6g.large", "m7g.large"}

func newAccount(t *testing.T, remediate ...string) *account {
	t.Helper()
	clock := awssim.NewManualClock(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	a := awssim.New(awssim.Options{Clock: clock})
	t.Cleanup(a.Close)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.AddRole(awssim.AutoScalingServiceLinkedRole))
	x := &account{t: t, a: a, clock: clock, topic: a.AddTopic(stackName + "-notifications")}
	must(a.AddTable(stackName+"-diagnoses", contract.DiagnosisKey))
	must(a.AddFleetGroup(fleet, types, []string{"subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"}, 2, 6, 2))
	_, x.key = a.AddKey(`{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` +
		awssim.DefaultAccountID + `:root"},"Action":"kms:*","Resource":"*"}]}`)
	id, err := a.AddStack(stackName, nil)
	must(err)
	x.stackID = id
	sc := stackconfig.Config{StackName: stackName, Account: awssim.DefaultAccountID, Region: awssim.DefaultRegion,
		InstanceTypes: types, Subnets: map[string]string{"subnet-0aaaaaaaaaaaaaaa1": "us-east-1a", "subnet-0bbbbbbbbbbbbbbb2": "us-east-1b"},
		Remediate: remediate}.WithDefaults()
	cfg := a.Config()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	x.engine = &remedy.Engine{
		Cfg: remedy.Config{Stack: sc, FleetGroup: fleet, VolumeKey: x.key, ReconcileFn: stackName + "-reconcile"},
		Report: &remedy.Reporter{DB: dynamodb.NewFromConfig(cfg), TableName: stackName + "-diagnoses", Topic: sns.NewFromConfig(cfg),
			TopicARN: x.topic, Stack: stackName, Log: log, Now: clock.Now},
		Events: cloudformation.NewFromConfig(cfg), Fleet: autoscaling.NewFromConfig(cfg), Keys: kms.NewFromConfig(cfg), Log: log,
	}
	return x
}

// failedUpdate writes the events of a failed update, newest last here
// (the account returns them newest first): the capacity failure first,
// then its cascades, then the rollback.
func (x *account) failedUpdate(token, firstReason string) {
	x.t.Helper()
	at := x.clock.Now()
	for i, ev := range []awssim.StackEvent{
		{LogicalResourceID: stackName, PhysicalResourceID: x.stackID, ResourceType: "AWS::CloudFormation::Stack", ResourceStatus: "UPDATE_IN_PROGRESS"},
		{LogicalResourceID: "SnifferGroup", PhysicalResourceID: fleet, ResourceType: "AWS::AutoScaling::AutoScalingGroup", ResourceStatus: "UPDATE_FAILED", ResourceStatusReason: firstReason},
		{LogicalResourceID: "ReconcileFunction", PhysicalResourceID: stackName + "-reconcile", ResourceType: "AWS::Lambda::Function", ResourceStatus: "UPDATE_FAILED", ResourceStatusReason: "Resource update cancelled"},
		{LogicalResourceID: stackName, PhysicalResourceID: x.stackID, ResourceType: "AWS::CloudFormation::Stack", ResourceStatus: "UPDATE_ROLLBACK_IN_PROGRESS",
			ResourceStatusReason: "The following resource(s) failed to update: [ReconcileFunction, SnifferGroup]. "},
	} {
		ev.ClientRequestToken, ev.Timestamp = token, at.Add(time.Duration(i)*time.Second)
		if err := x.a.AddStackEvent(stackName, ev); err != nil {
			x.t.Fatal(err)
		}
	}
}

func (x *account) published() []remedy.Report {
	var out []remedy.Report
	for _, m := range x.a.Published(x.topic) {
		var r remedy.Report
		if err := json.Unmarshal([]byte(m.Message), &r); err != nil {
			x.t.Fatalf("published %q: %v", m.Message, err)
		}
		out = append(out, r)
	}
	return out
}

const capacity = "We currently do not have sufficient c7g.large capacity in the Availability Zone you requested (us-east-1a). " +
	"Our system will be working on provisioning additional capacity. You can currently get c7g.large capacity by not specifying " +
	"an Availability Zone in your request or choosing us-east-1b."

// The root cause is the oldest failure of the operation, published once
// however many events of the operation arrive; with the class disabled,
// nothing changes.
func TestStackFailureReportedOnceAndOnlyReported(t *testing.T) {
	x := newAccount(t)
	x.failedUpdate("token-1", "Received 0 SUCCESS signal(s) out of 2. "+capacity)
	ctx := context.Background()
	for range 3 { // UPDATE_FAILED, UPDATE_ROLLBACK_IN_PROGRESS, ..._COMPLETE
		if err := x.engine.StackFailed(ctx, x.stackID, "token-1"); err != nil {
			t.Fatal(err)
		}
	}
	got := x.published()
	if len(got) != 1 || got[0].Class != "InsufficientCapacity" || !strings.Contains(got[0].Resource, "SnifferGroup") ||
		!strings.Contains(got[0].Evidence, "c7g.large") {
		t.Fatalf("published %+v, want one InsufficientCapacity of SnifferGroup", got)
	}
	if g, _ := x.a.Group(fleet); !slices.Equal(g.InstanceTypes, types) {
		t.Errorf("remediation disabled, the fleet changed: %v", g.InstanceTypes)
	}
	// A second failed operation is another cause.
	x.clock.Advance(time.Hour)
	x.failedUpdate("token-2", "Received 0 SUCCESS signal(s) out of 2. "+capacity)
	if err := x.engine.StackFailed(ctx, x.stackID, "token-2"); err != nil {
		t.Fatal(err)
	}
	if n := len(x.published()); n != 2 {
		t.Errorf("%d publications after a second failed operation, want 2", n)
	}
}

// Enabled, the capacity remedy drops the failing type, within the
// configured list, once per cooldown, and says how to undo it.
func TestCapacityRemedyWithinConfigurationAndCooldown(t *testing.T) {
	x := newAccount(t, "capacity")
	ctx := context.Background()
	x.failedUpdate("token-1", capacity)
	if err := x.engine.StackFailed(ctx, x.stackID, "token-1"); err != nil {
		t.Fatal(err)
	}
	g, _ := x.a.Group(fleet)
	if !slices.Equal(g.InstanceTypes, []string{"c6g.large", "m7g.large"}) || len(g.Subnets) != 2 {
		t.Fatalf("fleet after the remedy: types %v, subnets %v", g.InstanceTypes, g.Subnets)
	}
	got := x.published()
	if len(got) != 2 || got[1].State != "remediated" || got[1].Undo == "" || !strings.Contains(got[1].Changed, "c7g.large") {
		t.Fatalf("published %+v, want the diagnosis and the remediation with its undo", got)
	}
	// Another capacity failure within the cooldown: reported, not acted on.
	x.clock.Advance(10 * time.Minute)
	x.failedUpdate("token-2", strings.ReplaceAll(capacity, "c7g.large", "c6g.large"))
	if err := x.engine.StackFailed(ctx, x.stackID, "token-2"); err != nil {
		t.Fatal(err)
	}
	if g, _ := x.a.Group(fleet); !slices.Equal(g.InstanceTypes, []string{"c6g.large", "m7g.large"}) {
		t.Errorf("a second change within the cooldown: %v", g.InstanceTypes)
	}
	// After the cooldown it may act again; the types stay configured ones.
	x.clock.Advance(time.Hour)
	x.failedUpdate("token-3", strings.ReplaceAll(capacity, "c7g.large", "c6g.large"))
	if err := x.engine.StackFailed(ctx, x.stackID, "token-3"); err != nil {
		t.Fatal(err)
	}
	g, _ = x.a.Group(fleet)
	if !slices.Equal(g.InstanceTypes, []string{"m7g.large"}) {
		t.Errorf("after the cooldown: %v", g.InstanceTypes)
	}
	for _, typ := range g.InstanceTypes {
		if !slices.Contains(types, typ) {
			t.Errorf("the remedy chose %s, which the configuration does not name", typ)
		}
	}
}

const kmsLaunch = "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: Client.InternalError: Client error on launch"

// A launch failing on the stack's key: the grant is added when enabled
// (once: a second failure finds it there), reported only when not.
func TestKeyRemedy(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		var x *account
		if enabled {
			x = newAccount(t, "kms")
		} else {
			x = newAccount(t)
		}
		ctx := context.Background()
		before := x.a.KeyPolicy(x.key)
		if err := x.engine.LaunchFailed(ctx, fleet, "Failed", kmsLaunch, "us-east-1a", x.clock.Now()); err != nil {
			t.Fatal(err)
		}
		// Another group's failure is not ours.
		if err := x.engine.LaunchFailed(ctx, "shop-web", "Failed", kmsLaunch, "us-east-1a", x.clock.Now()); err != nil {
			t.Fatal(err)
		}
		after := x.a.KeyPolicy(x.key)
		granted := strings.Contains(after, "AutoScalingServiceLinkedRoleUse") && strings.Contains(after, "kms:GrantIsForAWSResource")
		if granted != enabled || (!enabled && after != before) {
			t.Errorf("enabled %v: the key policy became\n%s", enabled, after)
		}
		states := map[string]int{}
		for _, r := range x.published() {
			states[r.State]++
			if r.Class != "KMSLaunch" {
				t.Errorf("published class %s", r.Class)
			}
		}
		if states["diagnosed"] != 1 || (states["remediated"] == 1) != enabled {
			t.Errorf("enabled %v: published %v", enabled, states)
		}
	}
}

// A sniffer unhealthy longer than the threshold: reported once, replaced
// once per cooldown when enabled (never when none is healthy), resolved
// when healthy again.
func TestUnhealthySniffers(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		var x *account
		if enabled {
			x = newAccount(t, "sniffers")
		} else {
			x = newAccount(t)
		}
		a, ctx := x.a, context.Background()
		vpc := a.AddVPC()
		nlb, err := a.AddLoadBalancer("network", vpc, stackName+"-mirror", nil)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := a.AddTargetGroup(nlb, "instance")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for range 3 {
			id, _, err := a.AddInstance(vpc, "c7g.large")
			if err != nil {
				t.Fatal(err)
			}
			if err := a.AddGroupInstance(fleet, id, "us-east-1a", "Healthy"); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := a.Register(tg, ids...); err != nil {
			t.Fatal(err)
		}
		if err := a.SetTargetHealth(tg, ids[0], awssim.HealthUnhealthy); err != nil {
			t.Fatal(err)
		}
		x.engine.Cfg.SnifferTG = tg
		x.engine.Targets = elbv2.NewFromConfig(a.Config())
		check := func() {
			t.Helper()
			if err := x.engine.Health(ctx); err != nil {
				t.Fatal(err)
			}
		}
		check() // first seen: watched, not reported
		if n := len(x.published()); n != 0 {
			t.Fatalf("reported at first sight: %d", n)
		}
		x.clock.Advance(20 * time.Minute)
		check()
		check()
		states := map[string]int{}
		for _, r := range x.published() {
			states[r.State]++
		}
		g, _ := a.Group(fleet)
		if states["diagnosed"] != 1 || (states["remediated"] == 1) != enabled || (len(g.Terminated) == 1) != enabled {
			t.Errorf("enabled %v: published %v, terminated %v", enabled, states, g.Terminated)
		}
		if !enabled { // replaced, it is gone from the group and the target group
			if err := a.SetTargetHealth(tg, ids[0], awssim.HealthHealthy); err != nil {
				t.Fatal(err)
			}
		}
		check()
		last := x.published()[len(x.published())-1]
		if last.State != "resolved" {
			t.Errorf("enabled %v: after recovery the last publication is %s", enabled, last.State)
		}
	}
}

// A mirrored source whose skip metrics rose is reported once, and
// resolved once the window passes without skips.
func TestSkippedMirrorTraffic(t *testing.T) {
	x := newAccount(t)
	ctx := context.Background()
	x.engine.Metrics = cloudwatch.NewFromConfig(x.a.Config())
	x.engine.Sources = func(context.Context) ([]string, error) { return []string{"i-0aaa", "i-0bbb"}, nil }
	x.a.PutDatapoint("AWS/EC2", "NetworkPacketsSkipMirrorOut", map[string]string{"InstanceId": "i-0bbb"}, x.clock.Now().Add(-3*time.Minute), 1200)
	for range 2 {
		if err := x.engine.Health(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := x.published()
	if len(got) != 1 || got[0].Class != remedy.ClassSkipped || got[0].Resource != "i-0bbb" {
		t.Fatalf("published %+v, want one MirrorSkipped of i-0bbb", got)
	}
	x.clock.Advance(30 * time.Minute)
	if err := x.engine.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if got := x.published(); len(got) != 2 || got[1].State != "resolved" {
		t.Errorf("after a quiet window: %+v", got)
	}
}

// A reconcile that left work starts the next one at once when "sessions"
// is enabled, once per cooldown; not at all when it is not.
func TestReconcileNow(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		var x *account
		if enabled {
			x = newAccount(t, "sessions")
		} else {
			x = newAccount(t)
		}
		x.a.AddFunction(stackName + "-reconcile")
		x.engine.Invoker = lambda.NewFromConfig(x.a.Config())
		ctx := context.Background()
		for range 2 {
			if err := x.engine.ReconcileNow(ctx, "120 changes left"); err != nil {
				t.Fatal(err)
			}
		}
		inv := x.a.Invocations(stackName + "-reconcile")
		want := 0
		if enabled {
			want = 1
		}
		if len(inv) != want || (enabled && inv[0].Type != "Event") {
			t.Errorf("enabled %v: invocations %+v, want %d asynchronous", enabled, inv, want)
		}
	}
}
