package stack_test

import (
	"fmt"
	"strings"
	"testing"
)

// This file renders the synthesized template's values the way
// CloudFormation would (intrinsic functions resolved to stand-ins of the
// right shape), and evaluates resource policies the way IAM does for one
// request: an explicit Deny wins, then any Allow, else the request is
// implicitly denied (docs/aws.md, "Policy evaluation"). It knows only the
// elements and operators the stack uses; anything else fails the test
// rather than being guessed.

// render resolves every intrinsic function in v.
func render(t *testing.T, s *synthesized, v any) any {
	t.Helper()
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = render(t, s, x)
		}
		return out
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				switch k {
				case "Ref":
					return refValue(t, s, arg.(string))
				case "Fn::GetAtt":
					a := arg.([]any)
					return getAtt(t, s, a[0].(string), a[1].(string))
				case "Fn::Select":
					a := arg.([]any)
					list := render(t, s, a[1]).([]any)
					i := int(a[0].(float64))
					if i >= len(list) {
						t.Fatalf("render: Fn::Select %d of %v", i, list)
					}
					return list[i]
				case "Fn::Split":
					a := arg.([]any)
					var out []any
					for _, p := range strings.Split(fmt.Sprint(render(t, s, a[1])), a[0].(string)) {
						out = append(out, p)
					}
					return out
				case "Fn::Join":
					a := arg.([]any)
					var parts []string
					for _, p := range render(t, s, a[1]).([]any) {
						parts = append(parts, fmt.Sprint(p))
					}
					return strings.Join(parts, a[0].(string))
				}
				if strings.HasPrefix(k, "Fn::") {
					t.Fatalf("render: intrinsic %s is not modelled", k)
				}
			}
		}
		out := map[string]any{}
		for k, x := range v {
			out[k] = render(t, s, x)
		}
		return out
	}
	return v
}

func refValue(t *testing.T, s *synthesized, id string) string {
	t.Helper()
	switch id {
	case "AWS::AccountId":
		return account
	case "AWS::Region":
		return region
	case "AWS::Partition":
		return "aws"
	case "AWS::URLSuffix":
		return "amazonaws.com"
	case "AWS::StackName":
		return s.cfg.StackName
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/0a1b2c3d-0000-1111-2222-333344445555", region, account, s.cfg.StackName)
	}
	r, ok := s.model.Resources[id]
	if !ok {
		if _, isParam := s.model.Parameters[id]; isParam {
			return "param-" + id
		}
		t.Fatalf("render: Ref to unknown %s", id)
	}
	switch r.Type {
	case "AWS::SNS::Topic":
		return fmt.Sprintf("arn:aws:sns:%s:%s:%v", region, account, r.Properties["TopicName"])
	case "AWS::Lambda::Function", "AWS::CloudWatch::Alarm", "AWS::AutoScaling::AutoScalingGroup", "AWS::Logs::LogGroup":
		if n := nameOf(r.Properties); n != "" {
			return n
		}
	case "AWS::SQS::Queue":
		return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%v", region, account, r.Properties["QueueName"])
	case "AWS::ElasticLoadBalancingV2::TargetGroup":
		return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%v/0123456789abcdef", region, account, r.Properties["Name"])
	case "AWS::ElasticLoadBalancingV2::Listener":
		lb := s.model.Resources[references(r.Properties["LoadBalancerArn"])[0]]
		return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:listener/net/%v/0123456789abcdef/fedcba9876543210", region, account, lb.Properties["Name"])
	case "AWS::ElasticLoadBalancingV2::LoadBalancer":
		return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/net/%v/0123456789abcdef", region, account, r.Properties["Name"])
	}
	return "ref-" + id
}

func nameOf(props map[string]any) string {
	for _, k := range []string{"FunctionName", "AlarmName", "AutoScalingGroupName", "LogGroupName"} {
		if n, ok := props[k].(string); ok {
			return n
		}
	}
	return ""
}

func getAtt(t *testing.T, s *synthesized, id, attr string) string {
	t.Helper()
	r, ok := s.model.Resources[id]
	if !ok {
		t.Fatalf("render: GetAtt of unknown %s", id)
	}
	switch {
	case r.Type == "AWS::KMS::Key" && attr == "Arn":
		return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", region, account, id)
	case r.Type == "AWS::Lambda::Function" && attr == "Arn":
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%v", region, account, r.Properties["FunctionName"])
	case r.Type == "AWS::SQS::Queue" && attr == "Arn":
		return fmt.Sprintf("arn:aws:sqs:%s:%s:%v", region, account, r.Properties["QueueName"])
	case r.Type == "AWS::SQS::Queue" && attr == "QueueName":
		return fmt.Sprint(r.Properties["QueueName"])
	case r.Type == "AWS::ElasticLoadBalancingV2::LoadBalancer" && attr == "LoadBalancerFullName":
		return fmt.Sprintf("net/%v/0123456789abcdef", r.Properties["Name"])
	case r.Type == "AWS::ElasticLoadBalancingV2::TargetGroup" && attr == "TargetGroupFullName":
		return fmt.Sprintf("targetgroup/%v/0123456789abcdef", r.Properties["Name"])
	case r.Type == "AWS::Logs::LogGroup" && attr == "Arn":
		return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%v:*", region, account, r.Properties["LogGroupName"])
	}
	return fmt.Sprintf("getatt-%s-%s", id, attr)
}

// principal is who makes a request.
type principal struct {
	Service string // e.g. cloudwatch.amazonaws.com
	ARN     string // an IAM role or user
	Account string // the principal's account ("" for anonymous)
}

// request is one API request as IAM evaluates it.
type request struct {
	Principal principal
	Action    string
	Resource  string
	Context   map[string]string // condition keys present in the request
	// Identity holds the principal's own IAM policies' statements (same
	// account only: they grant nothing on another account's resource).
	Identity []map[string]any
}

type decision string

const (
	allowed      decision = "allowed"
	explicitDeny decision = "explicitly denied"
	implicitDeny decision = "implicitly denied"
)

// evaluate decides req against the resource policy statements.
func evaluate(t *testing.T, resourcePolicy []map[string]any, resourceAccount string, req request) decision {
	t.Helper()
	allow := false
	for _, st := range resourcePolicy {
		if !statementMatches(t, st, req, true) {
			continue
		}
		if st["Effect"] == "Deny" {
			return explicitDeny
		}
		allow = true
	}
	if req.Principal.Account == resourceAccount {
		for _, st := range req.Identity {
			if !statementMatches(t, st, req, false) {
				continue
			}
			if st["Effect"] == "Deny" {
				return explicitDeny
			}
			allow = true
		}
	}
	if allow {
		return allowed
	}
	return implicitDeny
}

func statementMatches(t *testing.T, st map[string]any, req request, resourceBased bool) bool {
	t.Helper()
	for k := range st {
		switch k {
		case "Sid", "Effect", "Principal", "Action", "Resource", "Condition":
		default:
			t.Fatalf("policy element %s is not modelled: %v", k, jsonOf(st))
		}
	}
	if resourceBased && !principalMatches(t, st["Principal"], req.Principal) {
		return false
	}
	if !anyGlob(st["Action"], req.Action, true) || !anyGlob(st["Resource"], req.Resource, false) {
		return false
	}
	cond, _ := st["Condition"].(map[string]any)
	return conditionsHold(t, cond, req.Context)
}

func principalMatches(t *testing.T, p any, who principal) bool {
	t.Helper()
	if p == "*" {
		return true
	}
	m, ok := p.(map[string]any)
	if !ok {
		t.Fatalf("principal %v is not modelled", jsonOf(p))
	}
	for kind, v := range m {
		for _, x := range strs(v) {
			switch kind {
			case "Service":
				if who.Service != "" && x == who.Service {
					return true
				}
			case "AWS":
				if x == "*" || (who.ARN != "" && x == who.ARN) ||
					(who.Account != "" && (x == who.Account || x == "arn:aws:iam::"+who.Account+":root")) {
					return true
				}
			default:
				t.Fatalf("principal kind %s is not modelled", kind)
			}
		}
	}
	return false
}

// conditionsHold: every operator, every key must hold; a key's values are
// alternatives. A key absent from the request fails a positive operator
// and passes a negated one; ...IfExists passes when the key is absent.
func conditionsHold(t *testing.T, cond map[string]any, ctx map[string]string) bool {
	t.Helper()
	for op, keys := range cond {
		base, ifExists := strings.CutSuffix(op, "IfExists")
		for key, want := range keys.(map[string]any) {
			got, present := ctx[key]
			if !present {
				if ifExists || strings.Contains(base, "Not") {
					continue
				}
				return false
			}
			match := false
			for _, w := range strs(want) {
				switch base {
				case "StringEquals", "ArnEquals", "StringNotEquals", "ArnNotEquals":
					match = match || got == w
				case "StringLike", "ArnLike", "StringNotLike", "ArnNotLike":
					match = match || glob(w, got, false)
				case "Bool":
					match = match || strings.EqualFold(got, w)
				default:
					t.Fatalf("condition operator %s is not modelled", op)
				}
			}
			if strings.Contains(base, "Not") {
				match = !match
			}
			if !match {
				return false
			}
		}
	}
	return true
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	case []string:
		return v
	}
	return nil
}

func anyGlob(patterns any, s string, fold bool) bool {
	for _, p := range strs(patterns) {
		if glob(p, s, fold) {
			return true
		}
	}
	return false
}

// glob matches IAM wildcards: * any run of characters, ? one character.
func glob(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if glob(pattern[1:], s[i:], false) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && glob(pattern[1:], s[1:], false)
	}
	return s != "" && s[0] == pattern[0] && glob(pattern[1:], s[1:], false)
}

func statements(t *testing.T, doc any) []map[string]any {
	t.Helper()
	d, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("policy document %v", jsonOf(doc))
	}
	var out []map[string]any
	for _, st := range d["Statement"].([]any) {
		out = append(out, st.(map[string]any))
	}
	return out
}

func TestEvaluatorItself(t *testing.T) {
	pol := []map[string]any{
		{"Effect": "Allow", "Principal": map[string]any{"Service": "x.amazonaws.com"}, "Action": "sns:Publish", "Resource": "arn:t",
			"Condition": map[string]any{"ArnLike": map[string]any{"aws:SourceArn": []any{"arn:a:*", "arn:b"}}}},
		{"Effect": "Deny", "Principal": "*", "Action": "sns:*", "Resource": "*",
			"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}},
	}
	svc := principal{Service: "x.amazonaws.com"}
	for name, tc := range map[string]struct {
		req  request
		want decision
	}{
		"allowed by pattern":   {request{Principal: svc, Action: "SNS:Publish", Resource: "arn:t", Context: map[string]string{"aws:SourceArn": "arn:a:1"}}, allowed},
		"allowed by value":     {request{Principal: svc, Action: "sns:Publish", Resource: "arn:t", Context: map[string]string{"aws:SourceArn": "arn:b"}}, allowed},
		"other source":         {request{Principal: svc, Action: "sns:Publish", Resource: "arn:t", Context: map[string]string{"aws:SourceArn": "arn:c"}}, implicitDeny},
		"missing key":          {request{Principal: svc, Action: "sns:Publish", Resource: "arn:t"}, implicitDeny},
		"deny wins":            {request{Principal: svc, Action: "sns:Publish", Resource: "arn:t", Context: map[string]string{"aws:SourceArn": "arn:b", "aws:SecureTransport": "false"}}, explicitDeny},
		"other action":         {request{Principal: svc, Action: "sns:Subscribe", Resource: "arn:t", Context: map[string]string{"aws:SourceArn": "arn:b"}}, implicitDeny},
		"identity, same acct":  {request{Principal: principal{ARN: "arn:r", Account: "1"}, Action: "sns:Publish", Resource: "arn:t", Identity: []map[string]any{{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}}}, allowed},
		"identity, other acct": {request{Principal: principal{ARN: "arn:r", Account: "2"}, Action: "sns:Publish", Resource: "arn:t", Identity: []map[string]any{{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}}}, implicitDeny},
	} {
		if got := evaluate(t, pol, "1", tc.req); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
}
