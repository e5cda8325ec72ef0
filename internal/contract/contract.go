// Package contract holds the names that apitap's binaries and its stack
// share: the environment variables the stack sets on the functions and on
// the sniffers, the tags on every mirror session, the metric namespaces and
// dimensions, the default Kafka topic. Each name is defined here once and
// imported by infra/, internal/lambdafn, the orchestrator and the sniffer,
// so that a rename cannot leave one side behind. Standard library only
// (it is imported by the CDK app and by the sniffer alike).
//
// The meaning of each name is in docs/contracts.md.
package contract

import "strings"

// Environment variables the stack sets on every Lambda function.
const (
	EnvStackName     = "APITAP_STACK_NAME"       // the owning stack's name: the value of TagStack
	EnvTargetID      = "APITAP_MIRROR_TARGET_ID" // the stack's traffic mirror target
	EnvFilterID      = "APITAP_MIRROR_FILTER_ID" // the stack's traffic mirror filter
	EnvMirrorNLBARN  = "APITAP_MIRROR_NLB_ARN"   // the stack's own NLB (the mirror target): never selected
	EnvVPCID         = "APITAP_VPC_ID"           // the stack's VPC
	EnvLBARNs        = "APITAP_LB_ARNS"          // comma-separated load balancer ARNs
	EnvLBTags        = "APITAP_LB_TAGS"          // comma-separated key=value
	EnvSessionNumber = "APITAP_SESSION_NUMBER"   // 1-32766, default 1
	EnvConflict      = "APITAP_CONFLICT_POLICY"  // skip (default) or coexist
	EnvRate          = "APITAP_MUTATIONS_PER_SECOND"
	EnvAccountID     = "APITAP_ACCOUNT_ID"
	// Diagnosis and remediation (README "Troubleshooting").
	EnvTopicARN      = "APITAP_TOPIC_ARN"                    // the stack's SNS topic: diagnoses go there
	EnvDiagnoses     = "APITAP_DIAGNOSES_TABLE"              // DynamoDB table: what was published, what was done
	EnvFleetGroup    = "APITAP_FLEET_GROUP"                  // the sniffers' Auto Scaling group
	EnvSnifferTG     = "APITAP_SNIFFER_TARGET_GROUP"         // the sniffers' target group behind the mirror NLB
	EnvVolumeKey     = "APITAP_VOLUME_KEY_ARN"               // the stack's own EBS key
	EnvReconcileFn   = "APITAP_RECONCILE_FUNCTION"           // the reconcile function's name
	EnvInstanceTypes = "APITAP_INSTANCE_TYPES"               // the configured sniffer types, in order
	EnvSubnets       = "APITAP_SUBNETS"                      // the configured subnets, id=zone,...
	EnvRemediate     = "APITAP_REMEDIATE"                    // the classes that act, comma-separated
	EnvCooldown      = "APITAP_REMEDIATION_COOLDOWN_MINUTES" // least time between two actions of a class
	EnvUnhealthy     = "APITAP_UNHEALTHY_MINUTES"            // how long a sniffer may be unhealthy
	// DiagnosisKey and DiagnosisExpires are the diagnoses table's
	// partition key and time-to-live attribute.
	DiagnosisKey     = "Key"
	DiagnosisExpires = "Expires"
	// EnvConfig holds the stack's whole configuration as JSON, on the
	// preflight function only (it checks what the others need not know).
	EnvConfig = "APITAP_CONFIG"
	// EnvRegion is set by Lambda itself, not by the stack.
	EnvRegion = "AWS_REGION"
)

// FunctionEnv lists the variables the stack must set on every function
// (EnvMirrorNLBARN is optional for a local run: the functions then look the
// NLB up from the mirror target).
var FunctionEnv = []string{
	EnvStackName, EnvTargetID, EnvFilterID, EnvMirrorNLBARN, EnvVPCID, EnvLBARNs, EnvLBTags,
	EnvSessionNumber, EnvConflict, EnvAccountID,
	EnvTopicARN, EnvDiagnoses, EnvFleetGroup, EnvSnifferTG, EnvVolumeKey, EnvReconcileFn, EnvInstanceTypes, EnvSubnets,
	EnvRemediate, EnvCooldown, EnvUnhealthy,
}

// Tags apitap puts on every mirror session it creates (docs/contracts.md
// §3). A session is ours only when TagStack equals the stack's name and it
// points at the stack's mirror target.
const (
	TagStack    = "apitap:stack"    // the owning CloudFormation stack's name
	TagLB       = "apitap:lb"       // the load balancer ARN it mirrors for
	TagVNI      = "apitap:vni"      // the VNI, decimal
	TagInstance = "apitap:instance" // the source instance id, when the ENI belongs to one
	TagCreated  = "apitap:created"  // RFC 3339 time apitap created it (the grace period)
)

// The functions' metrics, in CloudWatch Embedded Metric Format.
const (
	FunctionNamespace = "apitap"
	DimFunction       = "Function" // the function's key: instance-events, stack-events, reconcile, teardown
	DimStack          = "Stack"    // the stack's name
)

// Metric names of the functions' EMF lines, one line per invocation with
// the dimensions DimFunction and DimStack. The dashboard and alarms name
// these constants, and a test compares them with real invocations' lines.
const (
	MetricDesired            = "Desired"
	MetricActual             = "Actual"
	MetricCreated            = "Created"
	MetricDeleted            = "Deleted"
	MetricConflicts          = "Conflicts"
	MetricUnsupported        = "Unsupported"
	MetricErrors             = "Errors"
	MetricRefused            = "Refused"
	MetricUndocumentedErrors = "UndocumentedErrors"
	MetricAPICalls           = "APICalls"
	MetricDuration           = "Duration"
)

// SnifferMetricDrops is the sniffers' metric of lost records and packets
// (namespace SnifferNamespace, dimension DimStack), published by the
// fleet's metrics timer.
const SnifferMetricDrops = "Drops"

// Function keys: each is a folder under functions/ and the value of the
// DimFunction dimension.
const (
	FnInstanceEvents = "instance-events"
	FnStackEvents    = "stack-events"
	FnReconcile      = "reconcile"
	FnTeardown       = "teardown"
)

// Functions are the function keys in a fixed order.
var Functions = []string{FnInstanceEvents, FnStackEvents, FnReconcile, FnTeardown}

// The operator commands: functions invoked on demand, and local commands
// (README "Deploying"). They read and never change anything.
const (
	CmdConnections = "connections"
	CmdPreflight   = "preflight"
	CmdStatus      = "status"
)

// Commands are the command keys in a fixed order.
var Commands = []string{CmdConnections, CmdPreflight, CmdStatus}

// SnifferNamespace holds the sniffers' custom CloudWatch metrics.
const SnifferNamespace = "apitap/sniffer"

// DefaultTopic is the Kafka topic of the records (Akto's default).
const DefaultTopic = "akto.api.logs"

// SnifferEnvPrefix starts every environment variable the sniffer reads: a
// flag -kafka-batch-size is SNIFFER_KAFKA_BATCH_SIZE.
const SnifferEnvPrefix = "SNIFFER_"

// SnifferEnv is the environment variable of a sniffer flag.
func SnifferEnv(flag string) string {
	return SnifferEnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Sniffer flags the stack sets through the sniffer's environment file.
const (
	SnifferFlagKafka      = "kafka"
	SnifferFlagTopic      = "topic"
	SnifferFlagKafkaTLS   = "kafka-tls"
	SnifferFlagKafkaSASL  = "kafka-sasl"
	SnifferFlagAccountID  = "account-id"
	SnifferFlagListen     = "listen"
	SnifferFlagHealthAddr = "health-addr"
	SnifferFlagAdminAddr  = "admin-addr"
	SnifferFlagLogFormat  = "log-format"
	SnifferFlagUsername   = "kafka-username"
	SnifferFlagPassword   = "kafka-password"
	// SnifferFlagMemoryLimit is set at boot from the instance's memory.
	SnifferFlagMemoryLimit = "memory-limit"
)

// Sniffer flags of volume control, which the stack sets from cdk.json.
const (
	SnifferFlagSampleRate    = "sample-rate"
	SnifferFlagIncludeHosts  = "include-hosts"
	SnifferFlagExcludeHosts  = "exclude-hosts"
	SnifferFlagIncludePaths  = "include-paths"
	SnifferFlagExcludePaths  = "exclude-paths"
	SnifferFlagMethods       = "methods"
	SnifferFlagExcludeStatus = "exclude-status"
	SnifferFlagDropBodyTypes = "drop-body-content-types"
	SnifferFlagVNIRateLimit  = "vni-rate-limit"
	SnifferFlagVNIRateBurst  = "vni-rate-burst"
)

// Traffic per load balancer: the sniffers count, per VNI (one per load
// balancer, docs/contracts.md §2), the records they publish, the HTTP
// request/response pairs among them and the bytes of those records, as
// Prometheus counters on /metrics with the label PromLabelVNI (a decimal
// VNI, or PromVNIOther beyond the sniffer's -max-vnis). The fleet's metrics
// timer publishes each counter's growth to CloudWatch in SnifferNamespace
// with the dimensions DimStack and DimVNI.
const (
	PromVNIRecords = "apitap_sniffer_vni_records_total"
	PromVNIPairs   = "apitap_sniffer_vni_pairs_total"
	PromVNIBytes   = "apitap_sniffer_vni_bytes_total"
	PromLabelVNI   = "vni"
	PromVNIOther   = "other"

	SnifferMetricRecords = "Records"
	SnifferMetricPairs   = "Pairs"
	SnifferMetricBytes   = "Bytes"
	DimVNI               = "VNI"
)
