package diagnose

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/stackconfig"
)

func testConfig() stackconfig.Config {
	return stackconfig.Config{
		Account: "123456789012", Region: "us-east-1",
		InstanceTypes: []string{"c7g.large", "c6g.large", "m7g.large"},
		Subnets:       map[string]string{"subnet-0abc000000000001a": "us-east-1a", "subnet-0abc000000000001b": "us-east-1b"},
	}
}

func TestDiagnose(t *testing.T) {
	at := time.Date(2026, 3, 14, 8, 52, 39, 0, time.UTC)
	stackEvent := func(id, phys, typ, reason string) Failure {
		return FromStackEvent(StackEvent{Timestamp: at, LogicalID: id, PhysicalID: phys, ResourceType: typ, Status: "CREATE_FAILED",
			Reason: reason, ClientRequestToken: "Console-CreateStack-7f59c3cf"})
	}
	for _, tc := range []struct {
		name     string
		f        Failure
		class    Class
		resource string
		fix      []string // substrings of Fix
		types    []string // configured instance types, when not testConfig's
	}{
		{name: "capacity", f: stackEvent("SnifferGroup", "apitap-sniffers", "AWS::AutoScaling::AutoScalingGroup",
			"We currently do not have sufficient c7g.large capacity in the Availability Zone you requested (us-east-1a). Our system will be working on provisioning additional capacity. You can currently get c7g.large capacity by not specifying an Availability Zone in your request or choosing us-east-1b, us-east-1c."),
			class: InsufficientCapacity, resource: "SnifferGroup (apitap-sniffers)",
			fix: []string{"no c7g.large capacity in us-east-1a", "EC2 suggests us-east-1b, us-east-1c", "instance types c6g.large, m7g.large",
				"subnets subnet-0abc000000000001a, subnet-0abc000000000001b (zones us-east-1a, us-east-1b)"}},
		{name: "type not offered, the only type: the zone goes", f: FromActivity("apitap-sniffers", "Failed",
			"Your requested instance type (c7g.large) is not supported in your requested Availability Zone (us-east-1b). Please retry your request by not specifying an Availability Zone or choosing us-east-1a. Launching EC2 instance failed.", "us-east-1b", at),
			class: TypeNotOffered, resource: "apitap-sniffers",
			fix: []string{"c7g.large is not offered in us-east-1b", "subnets subnet-0abc000000000001a (zones us-east-1a)"}, types: []string{"c7g.large"}},
		{name: "type not offered: the type goes", f: FromActivity("apitap-sniffers", "Failed",
			"Your requested instance type (c7g.large) is not supported in your requested Availability Zone (us-east-1b). Please retry your request by not specifying an Availability Zone or choosing us-east-1a. Launching EC2 instance failed.", "us-east-1b", at),
			class: TypeNotOffered, resource: "apitap-sniffers",
			fix: []string{"instance types c6g.large, m7g.large; subnets subnet-0abc000000000001a, subnet-0abc000000000001b", "Dropped instance type c7g.large"}},
		{name: "capacity, nothing remains", f: FromActivity("apitap-sniffers", "Failed",
			"We currently do not have sufficient c7g.large capacity in the Availability Zone you requested (us-east-1a).", "", at),
			class: InsufficientCapacity, resource: "apitap-sniffers", fix: []string{"no change; add instance types (apitap:instanceTypes) or subnets (apitap:subnets)"},
			types: []string{"c7g.large"}},
		{name: "capacity named by code only, zone from the activity", f: FromActivity("apitap-sniffers", "InsufficientInstanceCapacity", "Insufficient capacity.", "us-east-1a", at),
			class: InsufficientCapacity, resource: "apitap-sniffers",
			fix: []string{"no instance capacity in us-east-1a", "subnets subnet-0abc000000000001b (zones us-east-1b)"}},
		{name: "KMS", f: FromActivity("apitap-sniffers", "Failed", "Client.InternalError: Client error on launch", "us-east-1a", at),
			class: KMSLaunch, resource: "apitap-sniffers", fix: []string{"AWSServiceRoleForAutoScaling", "kms:GrantIsForAWSResource"}},
		{name: "SLR", f: stackEvent("SnifferVolumeKey", "", "AWS::KMS::Key", "Policy contains a statement with one or more invalid principals."),
			class: ServiceLinkedRoleMissing, resource: "SnifferVolumeKey", fix: []string{CreateSLRCommand}},
		{name: "mirror quota", f: stackEvent("MirrorTarget", "", "AWS::EC2::TrafficMirrorTarget", "The maximum number of traffic mirror targets has been reached. (Service: AmazonEC2; Status Code: 400; Error Code: TrafficMirrorTargetLimitExceeded; Request ID: 1)"),
			class: MirrorQuota, resource: "MirrorTarget", fix: []string{"targets per account and Region (10,000)", "cannot be raised"}},
		{name: "access denied", f: stackEvent("MirrorTarget", "", "AWS::EC2::TrafficMirrorTarget", "User: arn:aws:sts::123456789012:assumed-role/deployer/x is not authorized to perform: ec2:CreateTrafficMirrorTarget on resource: arn:aws:ec2:us-east-1:123456789012:traffic-mirror-target/* because no identity-based policy allows the ec2:CreateTrafficMirrorTarget action"),
			class: AccessDenied, resource: "MirrorTarget", fix: []string{"Allow ec2:CreateTrafficMirrorTarget to arn:aws:sts::123456789012:assumed-role/deployer/x on arn:aws:ec2:us-east-1:123456789012:traffic-mirror-target/*."}},
		{name: "access denied by an SCP", f: stackEvent("MirrorTarget", "", "AWS::EC2::TrafficMirrorTarget", "User: arn:aws:sts::123456789012:assumed-role/deployer/x is not authorized to perform: ec2:CreateTrafficMirrorTarget with an explicit deny in a service control policy"),
			class: AccessDenied, resource: "MirrorTarget", fix: []string{"explicit deny in a service control policy", "an Allow does not help"}},
		{name: "access denied to create the role", f: stackEvent("SnifferGroup", "", "AWS::AutoScaling::AutoScalingGroup", "User: arn:aws:sts::123456789012:assumed-role/deployer/x is not authorized to perform: iam:CreateServiceLinkedRole on resource: arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"),
			class: AccessDenied, resource: "SnifferGroup", fix: []string{"Allow iam:CreateServiceLinkedRole", CreateSLRCommand}},
		{name: "access denied to Auto Scaling", f: FromActivity("apitap-sniffers", "Failed", "Client.UnauthorizedOperation: You are not authorized to perform this operation.", "us-east-1a", at),
			class: AccessDenied, resource: "apitap-sniffers", fix: []string{"Allow the denied action to " + slr}},
		{name: "vCPU limit", f: FromActivity("apitap-sniffers", "Failed", "You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to.", "us-east-1a", at),
			class: ResourceLimit, resource: "apitap-sniffers", fix: []string{"VcpuLimitExceeded is reached", "Service Quotas"}},
		{name: "unknown", f: stackEvent("Teardown", "", "Custom::ApitapTeardown", "Resource timed out waiting for completion"),
			class: Unknown, resource: "Teardown", fix: []string{"No known cause"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.types != nil {
				cfg.InstanceTypes = tc.types
			}
			if tc.name == "capacity, nothing remains" {
				cfg.Subnets = map[string]string{"subnet-0abc000000000001a": "us-east-1a", "subnet-0abc000000000002a": "us-east-1a"}
			}
			d := Diagnose(tc.f, cfg)
			if d.Class != tc.class || d.Resource != tc.resource || d.Token != tc.f.Token {
				t.Errorf("diagnosis = %+v", d)
			}
			if !strings.Contains(d.Evidence, tc.f.Message) {
				t.Errorf("evidence %q lacks the message", d.Evidence)
			}
			for _, want := range tc.fix {
				if !strings.Contains(d.Fix, want) {
					t.Errorf("fix lacks %q:\n%s", want, d.Fix)
				}
			}
		})
	}
}

// The KMS fix carries the two statements as JSON that a key policy takes.
func TestKMSFixIsJSON(t *testing.T) {
	d := Diagnose(FromActivity("apitap-sniffers", "Failed", "Client.InternalError: Client error on launch", "us-east-1a", time.Time{}), testConfig())
	_, js, ok := strings.Cut(d.Fix, "\n")
	if !ok {
		t.Fatalf("fix %q has no JSON", d.Fix)
	}
	var stmts []map[string]any
	if err := json.Unmarshal([]byte(js), &stmts); err != nil || len(stmts) != 2 {
		t.Fatalf("fix JSON: %v, %d statements", err, len(stmts))
	}
	policy, _ := json.Marshal(map[string]any{"Statement": stmts})
	if p, err := PlanKeyPolicy(policy, "aws", "123456789012"); err != nil || p.Change {
		t.Errorf("the fix's statements are not enough: %+v %v", p, err)
	}
}

func TestKey(t *testing.T) {
	cfg := testConfig()
	capacity := "We currently do not have sufficient c7g.large capacity in the Availability Zone you requested (us-east-1a)."
	ev := func(token, id, reason string, sec int) Diagnosis {
		return Diagnose(FromStackEvent(StackEvent{Timestamp: time.Date(2026, 3, 14, 9, 0, sec, 0, time.UTC), LogicalID: id, PhysicalID: "apitap-sniffers",
			Status: "UPDATE_FAILED", Reason: reason, ClientRequestToken: token}), cfg)
	}
	act := func(msg, zone string) Diagnosis {
		return Diagnose(FromActivity("SnifferGroup", "Failed", msg, zone, time.Time{}), cfg)
	}
	for _, tc := range []struct {
		name string
		a, b Diagnosis
		same bool
	}{
		{"same operation, class and resource; other wording", ev("t1", "SnifferGroup", capacity, 1), ev("t1", "SnifferGroup", capacity+" Launching EC2 instance failed.", 9), true},
		{"another operation", ev("t1", "SnifferGroup", capacity, 1), ev("t2", "SnifferGroup", capacity, 1), false},
		{"another resource", ev("t1", "SnifferGroup", capacity, 1), ev("t1", "OtherGroup", capacity, 1), false},
		{"another class", ev("t1", "SnifferGroup", capacity, 1), ev("t1", "SnifferGroup", "Client.InternalError: Client error on launch", 1), false},
		{"same condition without a token", act(capacity, ""), act(capacity+" Launching EC2 instance failed.", "us-east-1a"), true},
		{"another zone without a token", act(capacity, ""), act(strings.ReplaceAll(capacity, "us-east-1a", "us-east-1b"), ""), false},
		{"another type without a token", act(capacity, ""), act(strings.ReplaceAll(capacity, "c7g", "c6g"), ""), false},
		{"KMS twice", act("Client.InternalError: Client error on launch", "us-east-1a"), act("Client.InternalError: Client error on launch", "us-east-1b"), true},
	} {
		if got := tc.a.Key() == tc.b.Key(); got != tc.same {
			t.Errorf("%s: keys %q and %q, same = %v", tc.name, tc.a.Key(), tc.b.Key(), got)
		}
	}
}
