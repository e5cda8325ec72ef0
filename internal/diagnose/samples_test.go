package diagnose_test

import (
	"testing"

	"github.com/apitap/apitap/events"
	"github.com/apitap/apitap/internal/diagnose"
	"github.com/apitap/apitap/internal/stackconfig"
)

// The failure samples of events/ (AWS's EventBridge shapes) classify as
// their names say, through the fields a handler would hand over.
func TestSamples(t *testing.T) {
	cfg := stackconfig.Config{Account: "123456789012", Region: "us-east-1", InstanceTypes: stackconfig.DefaultInstanceTypes,
		Subnets: map[string]string{"subnet-0abc000000000001a": "us-east-1a", "subnet-0abc000000000001b": "us-east-1b"}}
	for name, want := range map[string]struct {
		class      diagnose.Class
		typ, zone  string
		action     string
		quotaOrKey string
	}{
		"cfn-resource-create-failed.json":                     {class: diagnose.KMSLaunch},
		"cfn-resource-create-failed-capacity.json":            {class: diagnose.InsufficientCapacity, typ: "c7g.large", zone: "us-east-1a"},
		"cfn-resource-create-failed-type-not-offered.json":    {class: diagnose.TypeNotOffered, typ: "c6gn.large", zone: "us-east-1b"},
		"cfn-resource-create-failed-mirror-target-quota.json": {class: diagnose.MirrorQuota, quotaOrKey: "targets per account and Region (10,000)"},
		"cfn-resource-create-failed-filter-rule-quota.json":   {class: diagnose.MirrorQuota, quotaOrKey: "rules per filter (10)"},
		"cfn-resource-create-failed-access-denied.json":       {class: diagnose.AccessDenied, action: "ec2:CreateTrafficMirrorTarget"},
		"cfn-resource-create-failed-slr-missing.json":         {class: diagnose.ServiceLinkedRoleMissing},
		"autoscaling-launch-unsuccessful-capacity.json":       {class: diagnose.InsufficientCapacity, typ: "c7g.large", zone: "us-east-1a"},
		"autoscaling-launch-unsuccessful-kms.json":            {class: diagnose.KMSLaunch, zone: "us-east-1a"},
		"autoscaling-launch-unsuccessful.json":                {class: diagnose.KMSLaunch, zone: "us-east-1a"},
		"autoscaling-terminate-unsuccessful.json":             {class: diagnose.AccessDenied, zone: "us-east-1b"},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := events.Parse(events.Sample(name))
			if err != nil {
				t.Fatal(err)
			}
			var f diagnose.Failure
			if r, err := e.ResourceStatusChange(); err == nil {
				f = diagnose.FromStackEvent(diagnose.StackEvent{Timestamp: e.Time, LogicalID: r.LogicalResourceID, PhysicalID: r.PhysicalResourceID,
					ResourceType: r.ResourceType, Status: r.Status, Reason: r.StatusReason, ClientRequestToken: r.ClientRequestToken})
			} else if a, err := e.AutoScalingActivity(); err == nil {
				f = diagnose.FromActivity(a.AutoScalingGroupName, a.StatusCode, a.StatusMessage, a.Details.AvailabilityZone, e.Time)
			} else {
				t.Fatalf("%s is neither a resource status change nor an activity", name)
			}
			d := diagnose.Diagnose(f, cfg)
			c := d.Detail
			if d.Class != want.class || c.InstanceType != want.typ || c.Zone != want.zone || c.Action != want.action || c.Quota != want.quotaOrKey {
				t.Errorf("diagnosis %+v", d)
			}
			if d.Fix == "" || d.Key() == "" {
				t.Errorf("no fix or key: %+v", d)
			}
		})
	}
}
