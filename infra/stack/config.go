// Package stack is apitap's CloudFormation stack, written with the AWS CDK:
// the internal NLB and sniffer fleet behind a traffic mirror target, the
// mirror filter, the Lambda functions that own the mirror sessions and
// answer the operator commands, their EventBridge rules, the teardown
// custom resource, notifications, alarms and a dashboard. Its whole
// configuration is a stackconfig.Config, read from CDK context.
package stack

import "github.com/apitap/apitap/internal/stackconfig"

// The configuration lives in internal/stackconfig (standard library only,
// so the operator commands read cdk.json as the stack does); these names
// keep the stack's code and its users short.
type (
	Config    = stackconfig.Config
	KafkaAuth = stackconfig.KafkaAuth
	PortRange = stackconfig.PortRange
	Names     = stackconfig.Names
)

const (
	KafkaAuthNone        = stackconfig.KafkaAuthNone
	KafkaAuthSCRAMSHA512 = stackconfig.KafkaAuthSCRAMSHA512
	KafkaAuthSCRAMSHA256 = stackconfig.KafkaAuthSCRAMSHA256
	KafkaAuthIAM         = stackconfig.KafkaAuthIAM
	MaxFilterRules       = stackconfig.MaxFilterRules
)

var (
	FromContext   = stackconfig.FromContext
	NamesFor      = stackconfig.NamesFor
	SASLMechanism = stackconfig.SASLMechanism
	// FunctionKeys are the Lambda functions, named as under functions/.
	FunctionKeys  = stackconfig.FunctionKeys
	retentionDays = stackconfig.RetentionDays
)
