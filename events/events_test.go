package events

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Ids shared by the samples (README.md lists them).
const (
	stackID     = "arn:aws:cloudformation:us-east-1:123456789012:stack/apitap/5b0c7e20-9d3f-11f0-8a1b-0e4c6f2d3a11"
	tgInstances = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-instances/73e2d6bc24d8a067"
	tgIPs       = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api-ips/943f017f100becff"
	teardownFn  = "arn:aws:lambda:us-east-1:123456789012:function:apitap-teardown"
)

// check verifies one sample file's decoded content.
type check func(t *testing.T, raw []byte)

func ec2State(state string) check {
	return func(t *testing.T, raw []byte) {
		e := mustParse(t, raw, EC2State)
		d, err := e.EC2StateChange()
		if err != nil {
			t.Fatal(err)
		}
		want := EC2StateChange{InstanceID: "i-0abc0000000000001", State: state}
		if d != want {
			t.Errorf("detail = %+v, want %+v", d, want)
		}
		if !slices.Contains(e.Resources, "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc0000000000001") {
			t.Errorf("resources %v lack the instance ARN", e.Resources)
		}
	}
}

func asg(detailType, instance, statusCode, statusMessage string) check {
	return asgOf("web-asg", detailType, instance, statusCode, statusMessage)
}

// asgOf checks an Auto Scaling activity of group.
func asgOf(group, detailType, instance, statusCode, statusMessage string) check {
	return func(t *testing.T, raw []byte) {
		e := mustParse(t, raw, AutoScaling)
		if e.DetailType != detailType {
			t.Errorf("detail-type = %q, want %q", e.DetailType, detailType)
		}
		d, err := e.AutoScalingActivity()
		if err != nil {
			t.Fatal(err)
		}
		if d.EC2InstanceID != instance || d.AutoScalingGroupName != group || d.StatusCode != statusCode || d.StatusMessage != statusMessage {
			t.Errorf("detail = %+v", d)
		}
		if d.ActivityID == "" || d.Cause == "" || d.Description == "" || d.StartTime == "" || d.EndTime == "" || d.Origin == "" || d.Destination == "" {
			t.Errorf("detail lacks a field AWS always sends: %+v", d)
		}
		if !strings.HasPrefix(d.Details.AvailabilityZone, "us-east-1") || !strings.HasPrefix(d.Details.SubnetID, "subnet-") {
			t.Errorf("Details = %+v", d.Details)
		}
		if !strings.HasSuffix(e.Resources[0], ":autoScalingGroupName/"+group) || (instance != "") != (len(e.Resources) == 2) {
			t.Errorf("resources = %v, want the group's ARN and the instance's, if any", e.Resources)
		}
		if !strings.HasSuffix(d.Description, "Status Reason: "+statusMessage) && statusMessage != "" {
			t.Errorf("Description %q does not end in the status message", d.Description)
		}
	}
}

// resource checks a CloudFormation Resource Status Change: CREATE_FAILED
// of the stack's logicalID with a status reason containing each of reason.
func resource(logicalID, physicalID, resourceType string, reason ...string) check {
	return func(t *testing.T, raw []byte) {
		e := mustParse(t, raw, ResourceStatus)
		d, err := e.ResourceStatusChange()
		if err != nil {
			t.Fatal(err)
		}
		if d.StackID != stackID || d.LogicalResourceID != logicalID || d.PhysicalResourceID != physicalID ||
			d.ResourceType != resourceType || d.Status != "CREATE_FAILED" || d.ClientRequestToken != "" {
			t.Errorf("detail = %+v", d)
		}
		for _, r := range reason {
			if !strings.Contains(d.StatusReason, r) {
				t.Errorf("status reason %q lacks %q", d.StatusReason, r)
			}
		}
		// CloudFormation's resource handlers wrap the service's message.
		if !strings.HasPrefix(d.StatusReason, `Resource handler returned message: "`) || !strings.Contains(d.StatusReason, "(RequestToken: ") {
			t.Errorf("status reason %q is not a resource handler's message", d.StatusReason)
		}
		if !slices.Equal(e.Resources, []string{stackID}) {
			t.Errorf("resources = %v", e.Resources)
		}
	}
}

func elbv2(eventName, errorCode, targetGroup string, targets ...Target) check {
	return func(t *testing.T, raw []byte) {
		c := mustCloudTrail(t, raw, eventName, errorCode)
		r, err := c.ELBv2Targets()
		if err != nil {
			t.Fatal(err)
		}
		if r.TargetGroupArn != targetGroup || !reflect.DeepEqual(r.Targets, targets) {
			t.Errorf("request = %+v, want %s %+v", r, targetGroup, targets)
		}
		if _, err := c.ClassicInstances(); !errors.Is(err, ErrWrongKind) {
			t.Errorf("ClassicInstances on %s: err = %v, want ErrWrongKind", eventName, err)
		}
	}
}

func classic(eventName, lb string, instances ...string) check {
	return func(t *testing.T, raw []byte) {
		c := mustCloudTrail(t, raw, eventName, "")
		r, err := c.ClassicInstances()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, in := range r.Instances {
			got = append(got, in.InstanceID)
		}
		if r.LoadBalancerName != lb || !slices.Equal(got, instances) {
			t.Errorf("request = %+v, want %s %v", r, lb, instances)
		}
		if _, err := c.ELBv2Targets(); !errors.Is(err, ErrWrongKind) {
			t.Errorf("ELBv2Targets on %s: err = %v, want ErrWrongKind", eventName, err)
		}
	}
}

func stack(status, reasonPrefix, token string) check {
	return func(t *testing.T, raw []byte) {
		e := mustParse(t, raw, StackStatus)
		d, err := e.StackStatusChange()
		if err != nil {
			t.Fatal(err)
		}
		if d.StackID != stackID || d.StackName() != "apitap" || d.Status != status || d.ClientRequestToken != token {
			t.Errorf("detail = %+v, want status %s token %q", d, status, token)
		}
		if !strings.HasPrefix(d.StatusReason, reasonPrefix) || (reasonPrefix == "" && d.StatusReason != "") {
			t.Errorf("status reason = %q, want prefix %q", d.StatusReason, reasonPrefix)
		}
		if !slices.Equal(e.Resources, []string{stackID}) {
			t.Errorf("resources = %v", e.Resources)
		}
	}
}

func ecsTask(taskARN, lastStatus, stopCode string, enis ...ECSTaskENI) check {
	return func(t *testing.T, raw []byte) {
		e := mustParse(t, raw, ECSTask)
		d, err := e.ECSTaskStateChange()
		if err != nil {
			t.Fatal(err)
		}
		if d.TaskARN != taskARN || d.LastStatus != lastStatus || d.DesiredStatus != lastStatus || d.StopCode != stopCode ||
			d.ClusterARN != "arn:aws:ecs:us-east-1:123456789012:cluster/shop" || d.Group != "service:shop-api" || d.Service() != "shop-api" ||
			d.LaunchType != "FARGATE" || d.Version == 0 || d.TaskDefinitionARN == "" || d.CreatedAt == "" {
			t.Errorf("detail = %+v", d)
		}
		if (stopCode != "") != (d.StoppedReason != "") {
			t.Errorf("stopCode %q with stoppedReason %q", d.StopCode, d.StoppedReason)
		}
		if got := d.ENIs(); !reflect.DeepEqual(got, enis) {
			t.Errorf("ENIs() = %+v, want %+v", got, enis)
		}
		// Each container names the attachment and address of the task's ENI.
		for _, c := range d.Containers {
			if len(c.NetworkInterfaces) != 1 || c.NetworkInterfaces[0].AttachmentID != d.Attachments[0].ID ||
				c.NetworkInterfaces[0].PrivateIPv4 != enis[0].PrivateIPv4 || c.LastStatus != lastStatus {
				t.Errorf("container %+v does not match the task's ENI %+v", c, enis[0])
			}
		}
		if !slices.Equal(e.Resources, []string{taskARN}) {
			t.Errorf("resources = %v, want the task ARN", e.Resources)
		}
	}
}

func custom(requestType, physicalID, filterID, oldFilterID string) check {
	return func(t *testing.T, raw []byte) {
		if _, err := Parse(raw); err == nil {
			t.Error("Parse accepted a custom resource request as an EventBridge event")
		}
		r, err := ParseCustomResource(raw)
		if err != nil {
			t.Fatal(err)
		}
		if r.RequestType != requestType || r.StackID != stackID || r.StackName() != "apitap" ||
			r.LogicalResourceID != "Teardown" || r.PhysicalResourceID != physicalID ||
			r.ResourceType != "Custom::ApitapTeardown" || r.ServiceToken != teardownFn || r.RequestID == "" {
			t.Errorf("request = %+v", r)
		}
		if !strings.HasPrefix(r.ResponseURL, "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/") ||
			!strings.Contains(r.ResponseURL, r.RequestID) {
			t.Errorf("ResponseURL = %q", r.ResponseURL)
		}
		if r.Property("StackName") != "apitap" || r.Property("MirrorTargetId") != "tmt-0abc0000000000001" ||
			r.Property("MirrorFilterId") != filterID || r.Property("ServiceToken") != teardownFn {
			t.Errorf("ResourceProperties = %v", r.ResourceProperties)
		}
		old, _ := r.OldResourceProperties["MirrorFilterId"].(string)
		if old != oldFilterID {
			t.Errorf("OldResourceProperties = %v, want MirrorFilterId %q", r.OldResourceProperties, oldFilterID)
		}
	}
}

// samplesTable has one row per sample file: TestSamples fails for a file
// without a row and for a row without a file.
var samplesTable = map[string]check{
	"ec2-state-pending.json":       ec2State(StatePending),
	"ec2-state-running.json":       ec2State(StateRunning),
	"ec2-state-stopping.json":      ec2State(StateStopping),
	"ec2-state-stopped.json":       ec2State(StateStopped),
	"ec2-state-shutting-down.json": ec2State(StateShuttingDown),
	"ec2-state-terminated.json":    ec2State(StateTerminated),

	"autoscaling-launch-successful.json":    asg(DetailLaunchSuccessful, "i-0abc0000000000002", "InProgress", ""),
	"autoscaling-terminate-successful.json": asg(DetailTerminateSuccessful, "i-0abc0000000000003", "InProgress", ""),
	"autoscaling-launch-unsuccessful.json":  asg(DetailLaunchUnsuccessful, "i-0abc0000000000004", "Failed", "Client.InternalError: Client error on launch"),
	"autoscaling-launch-unsuccessful-capacity.json": asgOf("apitap-sniffers", DetailLaunchUnsuccessful, "", "Failed",
		"We currently do not have sufficient c7g.large capacity in the Availability Zone you requested (us-east-1a). Our system will be working on provisioning additional capacity. "+
			"You can currently get c7g.large capacity by not specifying an Availability Zone in your request or choosing us-east-1b, us-east-1c, us-east-1d, us-east-1f. Launching EC2 instance failed."),
	"autoscaling-launch-unsuccessful-kms.json": asgOf("apitap-sniffers", DetailLaunchUnsuccessful, "i-0abc0000000000007", "Failed", "Client.InternalError: Client error on launch"),
	"autoscaling-terminate-unsuccessful.json":  asg(DetailTerminateUnsuccessful, "i-0abc0000000000005", "Failed", "Client.UnauthorizedOperation: You are not authorized to perform this operation."),

	"cloudtrail-elbv2-register-targets-instance.json":   elbv2(EventRegisterTargets, "", tgInstances, Target{ID: "i-0abc0000000000002", Port: 80}),
	"cloudtrail-elbv2-deregister-targets-instance.json": elbv2(EventDeregisterTargets, "", tgInstances, Target{ID: "i-0abc0000000000003", Port: 80}),
	"cloudtrail-elbv2-register-targets-ip.json": elbv2(EventRegisterTargets, "", tgIPs,
		Target{ID: "10.0.1.25", Port: 8080}, Target{ID: "10.0.2.47", Port: 8080}),
	"cloudtrail-elbv2-deregister-targets-ip.json": elbv2(EventDeregisterTargets, "", tgIPs,
		Target{ID: "10.0.2.47", Port: 8080, AvailabilityZone: "us-east-1b"}),
	"cloudtrail-elbv2-register-targets-failed.json": elbv2(EventRegisterTargets, "InvalidTarget", tgInstances, Target{ID: "i-0abc0000000000003", Port: 80}),
	"cloudtrail-classic-register-instances.json":    classic(EventRegisterInstancesClassic, "legacy-clb", "i-0abc0000000000006"),
	"cloudtrail-classic-deregister-instances.json":  classic(EventDeregisterInstancesClassic, "legacy-clb", "i-0abc0000000000006"),

	"cfn-stack-create-in-progress.json":                  stack("CREATE_IN_PROGRESS", "User Initiated", ""),
	"cfn-stack-create-complete.json":                     stack("CREATE_COMPLETE", "", ""),
	"cfn-stack-create-failed.json":                       stack("CREATE_FAILED", "The following resource(s) failed to create: [SnifferGroup].", ""),
	"cfn-stack-rollback-in-progress.json":                stack("ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [SnifferGroup].", ""),
	"cfn-stack-rollback-complete.json":                   stack("ROLLBACK_COMPLETE", "", ""),
	"cfn-stack-update-in-progress.json":                  stack("UPDATE_IN_PROGRESS", "User Initiated", ""),
	"cfn-stack-update-complete-cleanup-in-progress.json": stack("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "", ""),
	"cfn-stack-update-complete.json":                     stack("UPDATE_COMPLETE", "", ""),
	"cfn-stack-update-failed.json":                       stack("UPDATE_FAILED", "The following resource(s) failed to update: [SnifferGroup].", ""),
	"cfn-stack-update-rollback-in-progress.json":         stack("UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [SnifferGroup].", ""),
	"cfn-stack-update-rollback-complete.json":            stack("UPDATE_ROLLBACK_COMPLETE", "", ""),
	"cfn-stack-delete-in-progress.json":                  stack("DELETE_IN_PROGRESS", "User Initiated", "Console-DeleteStack-7f59c3cf-00d2-40c7-b2ff-e75db0987002"),
	"cfn-stack-delete-complete.json":                     stack("DELETE_COMPLETE", "", "Console-DeleteStack-7f59c3cf-00d2-40c7-b2ff-e75db0987002"),
	"cfn-stack-delete-failed.json":                       stack("DELETE_FAILED", "The following resource(s) failed to delete: [MirrorTarget].", ""),

	// The failures the diagnosis classifies (internal/diagnose).
	"cfn-resource-create-failed.json": resource("SnifferGroup", "apitap-sniffers", "AWS::AutoScaling::AutoScalingGroup",
		"Client.InternalError: Client error on launch", "HandlerErrorCode: NotStabilized"),
	"cfn-resource-create-failed-capacity.json": resource("SnifferGroup", "apitap-sniffers", "AWS::AutoScaling::AutoScalingGroup",
		"We currently do not have sufficient c7g.large capacity in the Availability Zone you requested (us-east-1a).", "HandlerErrorCode: NotStabilized"),
	"cfn-resource-create-failed-type-not-offered.json": resource("SnifferGroup", "apitap-sniffers", "AWS::AutoScaling::AutoScalingGroup",
		"Your requested instance type (c6gn.large) is not supported in your requested Availability Zone (us-east-1b).", "HandlerErrorCode: NotStabilized"),
	"cfn-resource-create-failed-mirror-target-quota.json": resource("MirrorTarget", "", "AWS::EC2::TrafficMirrorTarget",
		"The maximum number of traffic mirror targets has been reached.", "HandlerErrorCode: ServiceLimitExceeded"),
	"cfn-resource-create-failed-filter-rule-quota.json": resource("MirrorFilterRuleIPv62Egress", "", "AWS::EC2::TrafficMirrorFilterRule",
		"Error Code: TrafficMirrorFilterRuleLimitExceeded", "HandlerErrorCode: ServiceLimitExceeded"),
	"cfn-resource-create-failed-access-denied.json": resource("MirrorTarget", "", "AWS::EC2::TrafficMirrorTarget",
		"User: arn:aws:sts::123456789012:assumed-role/cdk-hnb659fds-cfn-exec-role-123456789012-us-east-1/AWSCloudFormation is not authorized to perform: ec2:CreateTrafficMirrorTarget on resource: arn:aws:ec2:us-east-1:123456789012:traffic-mirror-target/*",
		"HandlerErrorCode: AccessDenied"),
	"cfn-resource-create-failed-slr-missing.json": resource("SnifferVolumeKey", "", "AWS::KMS::Key",
		"Policy contains a statement with one or more invalid principals.", "HandlerErrorCode: InvalidRequest"),

	"cfn-custom-resource-create.json": custom(RequestCreate, "", "tmf-0abc0000000000001", ""),
	"cfn-custom-resource-update.json": custom(RequestUpdate, "apitap-teardown", "tmf-0abc0000000000002", "tmf-0abc0000000000001"),
	"cfn-custom-resource-delete.json": custom(RequestDelete, "apitap-teardown", "tmf-0abc0000000000002", ""),

	"ecs-task-state-running.json": ecsTask("arn:aws:ecs:us-east-1:123456789012:task/shop/5d2c8e0b7a4f4c1e9b3a6f8d0c2e4a17", TaskRunning, "",
		ECSTaskENI{ID: "eni-0abc0000000000011", AttachmentStatus: "ATTACHED", SubnetID: "subnet-0abc000000000001a", MAC: "0e:3a:91:5c:7b:d2",
			PrivateIPv4: "10.0.1.25", PrivateIPv6: "2600:1f18:4a3:6901:8d2c:5e1f:3b7a:9c40"}),
	"ecs-task-state-stopped.json": ecsTask("arn:aws:ecs:us-east-1:123456789012:task/shop/9a7e3c1f5b2d4e8a0c6f1b9d3e7a5c24", TaskStopped, "ServiceSchedulerInitiated",
		ECSTaskENI{ID: "eni-0abc0000000000012", AttachmentStatus: "DELETED", SubnetID: "subnet-0abc000000000001b", MAC: "12:5f:a8:03:c4:9e",
			PrivateIPv4: "10.0.2.47"}),

	"scheduled-event.json": func(t *testing.T, raw []byte) {
		e := mustParse(t, raw, Scheduled)
		if !slices.Equal(e.Resources, []string{"arn:aws:events:us-east-1:123456789012:rule/apitap-reconcile"}) {
			t.Errorf("resources = %v", e.Resources)
		}
	},
}

func TestSamples(t *testing.T) {
	names := Samples()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, files) {
		t.Fatalf("Samples() = %v, directory holds %v", names, files)
	}
	for name := range samplesTable {
		if !slices.Contains(names, name) {
			t.Errorf("table row %s has no sample file", name)
		}
	}
	ids := map[string]string{}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			c, ok := samplesTable[name]
			if !ok {
				t.Fatalf("sample %s has no row in samplesTable", name)
			}
			raw := Sample(name)
			c(t, raw)
			if e, err := Parse(raw); err == nil {
				checkEnvelope(t, e)
				if other, dup := ids[e.ID]; dup {
					t.Errorf("event id %s is also used by %s", e.ID, other)
				}
				ids[e.ID] = name
			}
		})
	}
}

// checkEnvelope checks the fields every EventBridge event carries.
func checkEnvelope(t *testing.T, e Envelope) {
	t.Helper()
	if e.Version != "0" || e.Account != "123456789012" || e.Region != "us-east-1" || e.ID == "" || e.Time.IsZero() || e.Resources == nil {
		t.Errorf("envelope = %+v", e)
	}
}

// decoders calls every typed decoder of Envelope, by the kind it accepts.
var decoders = map[Kind]func(Envelope) error{
	EC2State:       func(e Envelope) error { _, err := e.EC2StateChange(); return err },
	AutoScaling:    func(e Envelope) error { _, err := e.AutoScalingActivity(); return err },
	CloudTrailELB:  func(e Envelope) error { _, err := e.CloudTrailCall(); return err },
	StackStatus:    func(e Envelope) error { _, err := e.StackStatusChange(); return err },
	ResourceStatus: func(e Envelope) error { _, err := e.ResourceStatusChange(); return err },
	ECSTask:        func(e Envelope) error { _, err := e.ECSTaskStateChange(); return err },
}

func TestWrongKind(t *testing.T) {
	for _, name := range Samples() {
		e, err := Parse(Sample(name))
		if err != nil {
			continue // custom resource requests
		}
		for kind, decode := range decoders {
			err := decode(e)
			if kind == e.Kind() {
				if err != nil {
					t.Errorf("%s: %s decoder: %v", name, kind, err)
				}
				continue
			}
			if !errors.Is(err, ErrWrongKind) {
				t.Errorf("%s (%s): %s decoder: err = %v, want ErrWrongKind", name, e.Kind(), kind, err)
			} else if !strings.Contains(err.Error(), e.ID) {
				t.Errorf("%s: error %q does not name the event", name, err)
			}
		}
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		source, detailType string
		want               Kind
	}{
		{SourceEC2, DetailEC2StateChange, EC2State},
		{SourceEC2, "EC2 Spot Instance Interruption Warning", Unknown},
		{SourceAutoScaling, DetailTerminateUnsuccessful, AutoScaling},
		{SourceAutoScaling, "EC2 Instance-launch Lifecycle Action", Unknown},
		{SourceELB, DetailCloudTrailCall, CloudTrailELB},
		{SourceEC2, DetailCloudTrailCall, Unknown},
		{SourceCloudFormation, DetailStackStatusChange, StackStatus},
		{SourceCloudFormation, DetailResourceStatusChange, ResourceStatus},
		{SourceCloudFormation, "CloudFormation Drift Detection Status Change", Unknown},
		{SourceScheduler, DetailScheduled, Scheduled},
		{"aws.s3", DetailScheduled, Unknown},
		{SourceECS, DetailECSTaskStateChange, ECSTask},
		{SourceECS, "ECS Container Instance State Change", Unknown},
		{SourceECS, "ECS Service Action", Unknown},
		{SourceEC2, DetailECSTaskStateChange, Unknown},
	} {
		e := Envelope{Source: tc.source, DetailType: tc.detailType}
		if got := e.Kind(); got != tc.want {
			t.Errorf("Kind(%s, %s) = %s, want %s", tc.source, tc.detailType, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"not JSON":           `{"source":`,
		"no source":          `{"detail-type":"Scheduled Event","detail":{}}`,
		"no detail-type":     `{"source":"aws.events","detail":{}}`,
		"JSON array":         `[]`,
		"wrong typed source": `{"source":1,"detail-type":"Scheduled Event"}`,
	} {
		if _, err := Parse([]byte(raw)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, raw)
		}
	}
	for name, raw := range map[string]string{
		"EventBridge event": string(Sample("scheduled-event.json")),
		"unknown type":      `{"RequestType":"Replace","ResponseURL":"https://x","StackId":"s","RequestId":"r","LogicalResourceId":"l"}`,
		"no ResponseURL":    `{"RequestType":"Delete","StackId":"s","RequestId":"r","LogicalResourceId":"l"}`,
	} {
		if _, err := ParseCustomResource([]byte(raw)); err == nil {
			t.Errorf("%s: ParseCustomResource accepted %s", name, raw)
		}
	}
}

func TestMalformedDetail(t *testing.T) {
	for name, raw := range map[string]string{
		"EC2 without instance-id": `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{"state":"running"}}`,
		"EC2 detail not object":   `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":"running"}`,
		"stack without status":    `{"source":"aws.cloudformation","detail-type":"CloudFormation Stack Status Change","detail":{"stack-id":"x"}}`,
		"ECS without taskArn":     `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"lastStatus":"RUNNING"}}`,
		"ECS without lastStatus":  `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"taskArn":"arn:aws:ecs:us-east-1:1:task/c/1"}}`,
		"ECS detail not object":   `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":["RUNNING"]}`,
		"ECS no detail":           `{"source":"aws.ecs","detail-type":"ECS Task State Change"}`,
		"ECS attachments object":  `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","attachments":{"type":"eni"}}}`,
		"ECS details not pairs":   `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","attachments":[{"type":"eni","details":["eni-1"]}]}}`,
		"ECS value not a string":  `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","attachments":[{"type":"eni","details":[{"name":"privateIPv4Address","value":10}]}]}}`,
		"ECS version not number":  `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","version":"4"}}`,
	} {
		e, err := Parse([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = decoders[e.Kind()](e)
		if err == nil || errors.Is(err, ErrWrongKind) {
			t.Errorf("%s: err = %v, want a decoding error", name, err)
		}
	}

	// A CloudTrail call of another service under the ELB source is refused.
	e, err := Parse([]byte(`{"source":"aws.elasticloadbalancing","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CloudTrailCall(); !errors.Is(err, ErrWrongKind) {
		t.Errorf("CloudTrailCall of ec2.amazonaws.com: err = %v, want ErrWrongKind", err)
	}
}

// The task's network, as the handler reads it, whatever else the
// attachments hold.
func TestECSTaskNetwork(t *testing.T) {
	eni := func(status string, details ...string) ECSAttachment {
		a := ECSAttachment{ID: "att-1", Type: ECSAttachmentENI, Status: status}
		for i := 0; i+1 < len(details); i += 2 {
			a.Details = append(a.Details, ECSNameValue{Name: details[i], Value: details[i+1]})
		}
		return a
	}
	for _, tc := range []struct {
		name    string
		task    ECSTaskStateChange
		enis    []string
		ips     []string
		service string
	}{
		{name: "no attachments (bridge or host network mode)", task: ECSTaskStateChange{Group: "family:batch"}},
		{name: "eni still provisioning: no id, no address", task: ECSTaskStateChange{Attachments: []ECSAttachment{eni("PRECREATED", "subnetId", "subnet-1")}}},
		{name: "IPv4 only", task: ECSTaskStateChange{Group: "service:shop-api",
			Attachments: []ECSAttachment{eni("ATTACHED", "networkInterfaceId", "eni-1", "privateIPv4Address", "10.0.1.5")}},
			enis: []string{"eni-1"}, ips: []string{"10.0.1.5"}, service: "shop-api"},
		{name: "dual stack: IPv4 first", task: ECSTaskStateChange{Group: "service:a:b",
			Attachments: []ECSAttachment{eni("ATTACHED", "privateIPv6Address", "2600::1", "networkInterfaceId", "eni-1", "privateIPv4Address", "10.0.1.5")}},
			enis: []string{"eni-1"}, ips: []string{"10.0.1.5", "2600::1"}, service: "a:b"},
		{name: "other attachment types are not network interfaces", task: ECSTaskStateChange{Group: "family:web",
			Attachments: []ECSAttachment{{Type: "ElasticNetworkInterface"}, {Type: "Service Connect", Details: []ECSNameValue{{Name: "networkInterfaceId", Value: "eni-9"}}},
				eni("DELETED", "networkInterfaceId", "eni-2", "privateIPv4Address", "10.0.2.6")}},
			enis: []string{"eni-2"}, ips: []string{"10.0.2.6"}},
		{name: "address without an interface id", task: ECSTaskStateChange{Group: "service:",
			Attachments: []ECSAttachment{eni("ATTACHING", "privateIPv4Address", "10.0.3.7")}},
			ips: []string{"10.0.3.7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.task.ENIIDs(); !slices.Equal(got, tc.enis) {
				t.Errorf("ENIIDs() = %v, want %v", got, tc.enis)
			}
			if got := tc.task.IPs(); !slices.Equal(got, tc.ips) {
				t.Errorf("IPs() = %v, want %v", got, tc.ips)
			}
			if got := tc.task.Service(); got != tc.service {
				t.Errorf("Service() = %q, want %q", got, tc.service)
			}
		})
	}
}

func TestStackNameFromID(t *testing.T) {
	for id, want := range map[string]string{
		stackID: "apitap",
		"arn:aws:cloudformation:eu-west-1:111122223333:stack/my-stack-2/abc": "my-stack-2",
		"apitap": "",
		"arn:aws:cloudformation:us-east-1:123456789012:stack/apitap": "",
		"": "",
	} {
		if got := StackNameFromID(id); got != want {
			t.Errorf("StackNameFromID(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestSamplePanicsOnUnknownName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Sample of an unknown name did not panic")
		}
	}()
	Sample("no-such-sample.json")
}

// mustParse parses raw and checks its kind.
func mustParse(t *testing.T, raw []byte, want Kind) Envelope {
	t.Helper()
	e, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Kind(); got != want {
		t.Fatalf("Kind() = %s, want %s", got, want)
	}
	return e
}

// mustCloudTrail parses raw as a CloudTrail-delivered ELB call and checks
// the fields every such call carries.
func mustCloudTrail(t *testing.T, raw []byte, eventName, errorCode string) CloudTrailCall {
	t.Helper()
	e := mustParse(t, raw, CloudTrailELB)
	c, err := e.CloudTrailCall()
	if err != nil {
		t.Fatal(err)
	}
	if c.EventName != eventName || c.ErrorCode != errorCode || c.Failed() != (errorCode != "") {
		t.Errorf("eventName %q errorCode %q, want %q %q", c.EventName, c.ErrorCode, eventName, errorCode)
	}
	if c.Failed() && c.ErrorMessage == "" {
		t.Error("failed call without errorMessage")
	}
	if c.ReadOnly || c.EventType != "AwsApiCall" || c.AWSRegion != "us-east-1" || c.RequestID == "" || c.EventID == "" ||
		c.SourceIPAddress == "" || c.UserAgent == "" || c.UserIdentity.ARN == "" || c.EventTime.IsZero() ||
		c.RecipientAccount != "123456789012" {
		t.Errorf("call = %+v", c)
	}
	return c
}

// The directory holds only samples, the README and Go files.
func TestDirectoryContents(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".go") && n != "README.md" {
			t.Errorf("unexpected file %s (a sample must end in .json to be embedded)", n)
		}
	}
}
