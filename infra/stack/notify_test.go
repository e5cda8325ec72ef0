package stack_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The notification topic: the stack's alarms and the fleet's Auto Scaling
// notifications reach it, nothing reaches it without TLS, and nobody else
// publishes. Checked by evaluating the synthesized topic and key policies.
func TestTopicPolicyLetsAlarmsPublish(t *testing.T) {
	for _, variant := range []string{"full", "scram"} {
		s := synth(t, variant)
		topicID := s.logicalID("AWS::SNS::Topic")
		topicARN := refValue(t, s, topicID)
		var topicPolicy []map[string]any
		for _, p := range s.ofType("AWS::SNS::TopicPolicy") {
			if fmt.Sprint(render(t, s, p["Topics"])) == fmt.Sprint([]any{topicARN}) {
				topicPolicy = append(topicPolicy, statements(t, render(t, s, p["PolicyDocument"]))...)
			}
		}
		if len(topicPolicy) == 0 {
			t.Fatalf("%s: no policy on the notification topic", variant)
		}
		keyPolicy := statements(t, render(t, s, s.model.Resources[s.keyOfTopic(t, topicID)].Properties["KeyPolicy"]))
		tls := func(ctx map[string]string, secure bool) map[string]string {
			out := map[string]string{"aws:SecureTransport": fmt.Sprint(secure)}
			for k, v := range ctx {
				out[k] = v
			}
			return out
		}
		publish := func(who principal, ctx map[string]string, identity ...map[string]any) (topic, key decision) {
			topic = evaluate(t, topicPolicy, account, request{Principal: who, Action: "sns:Publish", Resource: topicARN, Context: ctx, Identity: identity})
			// SNS asks KMS for a data key as the publisher's service or
			// role (docs/aws.md, "Notifications").
			key = evaluate(t, keyPolicy, account, request{Principal: who, Action: "kms:GenerateDataKey", Resource: "*", Context: ctx, Identity: identity})
			return topic, key
		}

		cloudwatch := principal{Service: "cloudwatch.amazonaws.com"}
		alarms := s.ofType("AWS::CloudWatch::Alarm")
		if len(alarms) < 5 {
			t.Fatalf("%s: %d alarms", variant, len(alarms))
		}
		for id, a := range alarms {
			name, named := a["AlarmName"].(string)
			if !named {
				// The step scaling policy's own alarm: its action is the
				// policy, not a notification.
				for _, act := range a["AlarmActions"].([]any) {
					if ref, _ := act.(map[string]any)["Ref"].(string); s.model.Resources[ref].Type != "AWS::AutoScaling::ScalingPolicy" {
						t.Errorf("%s: unnamed alarm %s acts on %v", variant, id, jsonOf(act))
					}
				}
				continue
			}
			if !slices.Contains(strs(render(t, s, a["AlarmActions"])), topicARN) || !slices.Contains(strs(render(t, s, a["OKActions"])), topicARN) {
				t.Errorf("%s: alarm %s does not notify the topic: %v", variant, id, jsonOf(a["AlarmActions"]))
			}
			ctx := map[string]string{"aws:SourceAccount": account, "aws:SourceArn": fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", region, account, name)}
			if topic, key := publish(cloudwatch, tls(ctx, true)); topic != allowed || key != allowed {
				t.Errorf("%s: alarm %s publishing: topic policy %s, key policy %s", variant, name, topic, key)
			}
			if topic, _ := publish(cloudwatch, tls(ctx, false)); topic != explicitDeny {
				t.Errorf("%s: alarm %s publishing without TLS: %s", variant, name, topic)
			}
		}
		for what, ctx := range map[string]map[string]string{
			"another account's alarm of the same name": {"aws:SourceAccount": "210987654321", "aws:SourceArn": fmt.Sprintf("arn:aws:cloudwatch:%s:210987654321:alarm:%s-failed-events", region, s.cfg.StackName)},
			"another alarm of this account":            {"aws:SourceAccount": account, "aws:SourceArn": fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:someone-elses", region, account)},
			"an alarm with no source":                  {},
		} {
			if topic, _ := publish(cloudwatch, tls(ctx, true)); topic == allowed {
				t.Errorf("%s: %s may publish", variant, what)
			}
		}

		// Fleet notifications: the Auto Scaling service-linked role
		// publishes with its own managed policy's sns:Publish.
		slr := principal{ARN: fmt.Sprintf("arn:aws:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", account), Account: account}
		slrPolicy := map[string]any{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}
		if topic, key := publish(slr, tls(nil, true), slrPolicy); topic != allowed || key != allowed {
			t.Errorf("%s: Auto Scaling notifications: topic policy %s, key policy %s", variant, topic, key)
		}
		if topic, _ := publish(slr, tls(nil, false), slrPolicy); topic != explicitDeny {
			t.Errorf("%s: Auto Scaling notifications without TLS: %s", variant, topic)
		}
		if got := s.ofType("AWS::AutoScaling::AutoScalingGroup"); len(got) != 1 {
			t.Fatalf("%s: %d groups", variant, len(got))
		}
		for _, g := range s.ofType("AWS::AutoScaling::AutoScalingGroup") {
			if nc := jsonOf(render(t, s, g["NotificationConfigurations"])); !strings.Contains(nc, topicARN) {
				t.Errorf("%s: the fleet does not notify the topic: %s", variant, nc)
			}
		}

		anonymous := principal{}
		if topic, _ := publish(anonymous, tls(nil, false)); topic != explicitDeny {
			t.Errorf("%s: an anonymous publisher without TLS: %s", variant, topic)
		}
		if topic, _ := publish(anonymous, tls(nil, true)); topic == allowed {
			t.Errorf("%s: an anonymous publisher over TLS: %s", variant, topic)
		}
	}
}

// keyOfTopic is the logical id of the KMS key the topic is encrypted with.
func (s *synthesized) keyOfTopic(t *testing.T, topicID string) string {
	t.Helper()
	ref, ok := s.model.Resources[topicID].Properties["KmsMasterKeyId"].(map[string]any)
	if !ok {
		t.Fatalf("the topic has no customer managed key: %v", jsonOf(s.model.Resources[topicID].Properties))
	}
	for _, k := range []string{"Ref", "Fn::GetAtt"} {
		switch v := ref[k].(type) {
		case string:
			return v
		case []any:
			return v[0].(string)
		}
	}
	t.Fatalf("key reference %v", jsonOf(ref))
	return ""
}
