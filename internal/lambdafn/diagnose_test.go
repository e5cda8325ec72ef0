package lambdafn

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
)

// The handlers hand failures to the diagnosis engine, built from the
// environment the stack sets: a failed update of the stack (its resource
// event and its status events) is published once, and an unsuccessful
// launch of the fleet too; an application's group is not diagnosed.
func TestHandlersDiagnoseFailures(t *testing.T) {
	f := newFixture(t)
	a := f.w.Acct
	topic := a.AddTopic("apitap-notifications")
	if err := a.AddTable("apitap-diagnoses", contract.DiagnosisKey); err != nil {
		t.Fatal(err)
	}
	if err := a.AddFleetGroup("apitap-sniffers", []string{"c7g.large", "c6g.large"}, []string{"subnet-0aaaaaaaaaaaaaaa1"}, 1, 2, 1); err != nil {
		t.Fatal(err)
	}
	stackID, err := a.AddStack("apitap", nil)
	if err != nil {
		t.Fatal(err)
	}
	at := f.w.Clock.Now()
	for i, ev := range []awssim.StackEvent{
		{LogicalResourceID: "apitap", PhysicalResourceID: stackID, ResourceType: "AWS::CloudFormation::Stack", ResourceStatus: "UPDATE_IN_PROGRESS"},
		{LogicalResourceID: "SnifferGroup", PhysicalResourceID: "apitap-sniffers", ResourceType: "AWS::AutoScaling::AutoScalingGroup", ResourceStatus: "UPDATE_FAILED",
			ResourceStatusReason: "Your requested instance type (c7g.large) is not supported in your requested Availability Zone (us-east-1e). Please retry your request by not specifying an Availability Zone or choosing us-east-1a, us-east-1b."},
	} {
		ev.ClientRequestToken, ev.Timestamp = "tok-1", at.Add(time.Duration(i)*time.Second)
		if err := a.AddStackEvent("apitap", ev); err != nil {
			t.Fatal(err)
		}
	}
	env := f.w.Env()
	env[contract.EnvTopicARN], env[contract.EnvDiagnoses], env[contract.EnvFleetGroup] = topic, "apitap-diagnoses", "apitap-sniffers"
	env[contract.EnvInstanceTypes], env[contract.EnvSubnets] = "c7g.large,c6g.large", "subnet-0aaaaaaaaaaaaaaa1=us-east-1a"
	rc, table, topicARN, ok, err := RemedyConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || !ok {
		t.Fatalf("remedy configuration: %v %v", ok, err)
	}
	withRemedy := func(name string, h Handler, raw []byte) {
		t.Helper()
		fn := f.function(name)
		fn.Remedy = NewRemedy(rc, table, topicARN, a.Config(), NewClients(a.Config()), f.cfg, fn.Log, f.w.Clock.Now)
		if err := h(fn, t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	event := func(detailType string, detail map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"version": "0", "id": fmt.Sprint(detailType, len(detail)), "detail-type": detailType,
			"source": "aws.cloudformation", "account": awssim.DefaultAccountID, "time": at.Format(time.RFC3339), "region": awssim.DefaultRegion,
			"resources": []string{stackID}, "detail": detail})
		return b
	}
	withRemedy("stack-events", (*Function).StackEvents, event("CloudFormation Resource Status Change", map[string]any{
		"stack-id": stackID, "logical-resource-id": "SnifferGroup", "physical-resource-id": "apitap-sniffers",
		"resource-type": "AWS::AutoScaling::AutoScalingGroup", "client-request-token": "tok-1",
		"status-details": map[string]any{"status": "UPDATE_FAILED", "status-reason": "see the events"}}))
	for _, status := range []string{"UPDATE_FAILED", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"} {
		withRemedy("stack-events", (*Function).StackEvents, event("CloudFormation Stack Status Change", map[string]any{
			"stack-id": stackID, "client-request-token": "tok-1", "status-details": map[string]any{"status": status, "status-reason": ""}}))
	}
	got := a.Published(topic)
	if len(got) != 1 {
		t.Fatalf("%d publications for one failed update, want 1: %v", len(got), got)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(got[0].Message), &r); err != nil || r["class"] != "TypeNotOffered" {
		t.Fatalf("published %s (%v), want TypeNotOffered", got[0].Message, err)
	}

	launch := func(group string) []byte {
		b, _ := json.Marshal(map[string]any{"version": "0", "id": "launch-" + group, "detail-type": "EC2 Instance Launch Unsuccessful",
			"source": "aws.autoscaling", "account": awssim.DefaultAccountID, "time": at.Format(time.RFC3339), "region": awssim.DefaultRegion,
			"resources": []string{}, "detail": map[string]any{"StatusCode": "Failed", "AutoScalingGroupName": group, "ActivityId": "act-" + group,
				"StatusMessage": "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: Client.InternalError: Client error on launch",
				"Details":       map[string]any{"Availability Zone": "us-east-1a", "Subnet ID": "subnet-0aaaaaaaaaaaaaaa1"}}})
		return b
	}
	withRemedy("instance-events", (*Function).InstanceEvents, launch("shop-web"))
	withRemedy("instance-events", (*Function).InstanceEvents, launch("apitap-sniffers"))
	withRemedy("instance-events", (*Function).InstanceEvents, launch("apitap-sniffers"))
	if n := len(a.Published(topic)); n != 2 {
		t.Errorf("%d publications after the fleet's launch failures (twice) and an application's, want 2", n)
	}
}
