package stackconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/apitap/apitap/internal/contract"
)

// Physical names. Every resource that AWS lets us name is named after the
// stack, so that the deploying user's policy (infra/policy) can be scoped
// to this stack's resources by ARN, and two apitap stacks in one account
// never collide. The tag apitap:stack=<stack name> goes on every taggable
// resource as well (and the functions put it on every mirror session).

// Names are the physical names of the stack's resources.
type Names struct {
	Stack string
	// RolePath is the IAM path of every role and instance profile.
	RolePath          string
	Functions         map[string]string // function key (instance-events, ...) -> function name
	LogGroups         map[string]string // function key -> log group name
	SnifferLogGroup   string
	FailureQueue      string
	Diagnoses         string // DynamoDB table of published diagnoses and remediation actions
	Topic             string
	LoadBalancer      string // at most 32 characters
	TargetGroup       string // at most 32 characters
	AutoScalingGroup  string
	LaunchTemplate    string
	Dashboard         string
	Trail             string
	TrailBucket       string
	AlarmPrefix       string
	RulePrefix        string
	MetricsNamespace  string // the sniffers' custom metrics
	FunctionNamespace string // the functions' EMF metrics
}

// FunctionKeys are the Lambda functions, named as under functions/: the
// orchestrator's and the operator commands.
var FunctionKeys = append(append([]string(nil), contract.Functions...), contract.Commands...)

// NamesFor derives every physical name from the configuration.
func NamesFor(c Config) Names {
	s := c.StackName
	n := Names{
		Stack:             s,
		RolePath:          "/apitap/" + s + "/",
		Functions:         map[string]string{},
		LogGroups:         map[string]string{},
		FailureQueue:      s + "-failed-events",
		Diagnoses:         s + "-diagnoses",
		SnifferLogGroup:   "/apitap/" + s + "/sniffers",
		Topic:             s + "-notifications",
		LoadBalancer:      shortName(s, "mirror", 32),
		TargetGroup:       shortName(s, "sniffers", 32),
		AutoScalingGroup:  s + "-sniffers",
		LaunchTemplate:    s + "-sniffer",
		Dashboard:         s,
		Trail:             s + "-trail",
		TrailBucket:       bucketName(s, c.Account, c.Region),
		AlarmPrefix:       s + "-",
		RulePrefix:        s + "-",
		MetricsNamespace:  contract.SnifferNamespace,
		FunctionNamespace: contract.FunctionNamespace,
	}
	for _, k := range FunctionKeys {
		n.Functions[k] = s + "-" + k
		n.LogGroups[k] = "/aws/lambda/" + s + "-" + k
	}
	return n
}

// shortName is "<stack>-<suffix>" when it fits in max characters, or else
// the stack name cut short followed by a hash of the whole stack name.
func shortName(stack, suffix string, max int) string {
	if name := stack + "-" + suffix; len(name) <= max {
		return name
	}
	h := hash(stack, 6)
	keep := max - len(suffix) - len(h) - 2
	return strings.TrimRight(stack[:keep], "-") + "-" + h + "-" + suffix
}

// bucketName is the trail bucket's globally unique name: lowercase, at
// most 63 characters.
func bucketName(stack, account, region string) string {
	name := strings.ToLower(stack) + "-trail-" + account + "-" + region
	if len(name) <= 63 {
		return name
	}
	return "apitap-trail-" + account + "-" + region + "-" + hash(stack, 8)
}

func hash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}
