// Package stackconfig is the configuration of apitap's stack (infra/stack)
// and the physical names it derives: read from CDK context (cdk.json or
// `cdk -c key=value`) by FromContext, validated by Validate. It uses the
// standard library only, so that the operator commands (preflight, status)
// read cdk.json exactly as the stack does without linking the CDK.
package stackconfig

import (
	"github.com/apitap/apitap/internal/contract"

	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Context keys. Every key is "apitap:" + the name documented in the README.
const ContextPrefix = "apitap:"

// KafkaAuth is how the sniffers authenticate to the Kafka brokers.
type KafkaAuth string

const (
	KafkaAuthNone        KafkaAuth = "none"
	KafkaAuthSCRAMSHA512 KafkaAuth = "scram-sha-512"
	KafkaAuthSCRAMSHA256 KafkaAuth = "scram-sha-256"
	KafkaAuthIAM         KafkaAuth = "iam" // Amazon MSK IAM access control
)

// PortRange is an inclusive TCP port range of the mirror filter.
type PortRange struct{ From, To int }

func (p PortRange) String() string {
	if p.From == p.To {
		return strconv.Itoa(p.From)
	}
	return fmt.Sprintf("%d-%d", p.From, p.To)
}

// Config is the stack's configuration. Zero fields take the defaults
// below (see Defaults); Validate says what cannot work.
type Config struct {
	// StackName is the CloudFormation stack name, the value of the
	// apitap:stack tag on every mirror session, and the prefix of every
	// named resource. Default "apitap".
	StackName string
	// Account and Region are where the stack goes (the VPC's).
	Account, Region string

	// VPCID and VPCCIDRs: the VPC of the load balancers. The sniffers
	// admit VXLAN and health checks from these CIDRs only.
	VPCID    string
	VPCCIDRs []string
	// Subnets maps private subnet ids to their availability zones; at
	// least two zones. The NLB and the fleet use all of them.
	Subnets map[string]string

	// LoadBalancerARNs and LoadBalancerTags select the load balancers
	// whose targets are mirrored (at least one of the two).
	LoadBalancerARNs []string
	LoadBalancerTags map[string]string

	// Kafka.
	KafkaBrokers []string // host:port
	KafkaTopic   string   // default "akto.api.logs"
	KafkaTLS     bool
	KafkaAuth    KafkaAuth // default none
	// KafkaSecretARN is the Secrets Manager secret ({"username":...,
	// "password":...}) for SCRAM; KafkaSecretKMSKeyARN the customer managed
	// key it is encrypted with, if any (Amazon MSK requires one).
	KafkaSecretARN       string
	KafkaSecretKMSKeyARN string
	// MSKClusterARN is the Amazon MSK cluster for IAM authentication.
	MSKClusterARN string

	// Sniffer fleet.
	InstanceTypes   []string // arm64 Graviton types; default DefaultInstanceTypes
	MinCapacity     int      // default 2
	MaxCapacity     int      // default 6
	DesiredCapacity int      // default MinCapacity
	AktoAccountID   string   // default "1000000"
	// SnifferEnv holds more SNIFFER_* settings for /etc/apitap/sniffer.env,
	// e.g. SNIFFER_REDACT_HEADERS.
	SnifferEnv map[string]string

	// Volume control: the sniffer's rules of what is recorded (README
	// "Volume control"), written into its environment file when set.
	// SampleRate is the share of connections recorded, 0 to 1 (nil: all).
	SampleRate *float64
	// IncludeHosts, ExcludeHosts, IncludePaths and ExcludePaths are globs
	// ('*' matches any characters); Methods the only methods recorded;
	// ExcludeStatus status classes (4xx) or codes (404) not recorded.
	IncludeHosts, ExcludeHosts []string
	IncludePaths, ExcludePaths []string
	Methods, ExcludeStatus     []string
	// DropBodyContentTypes are media type globs whose bodies are left out
	// (nil: the sniffer's default; ["none"]: keep every body).
	DropBodyContentTypes []string
	// VNIRateLimit is records per second per VNI (0: no limit);
	// VNIRateBurst the bucket size (0: the rate rounded up).
	VNIRateLimit float64
	VNIRateBurst int

	// Mirror sessions and filter.
	SessionNumber  int    // 1-32766, default 1
	ConflictPolicy string // skip (default) or coexist
	// MirrorPorts restricts the filter to these server ports (an ingress
	// and an egress rule each, per address family); empty means all TCP in
	// both directions.
	MirrorPorts []PortRange
	// SkipIPv6 leaves IPv6 out of the filter (context apitap:mirrorIpv6
	// false), which leaves room for more port ranges.
	SkipIPv6 bool

	// ReconcileSchedule is an EventBridge schedule expression. Default
	// "rate(5 minutes)".
	ReconcileSchedule string
	// NotificationEmail, if set, is subscribed to the SNS topic.
	NotificationEmail string
	// CreateTrail creates a CloudTrail trail (management write events) so
	// that target registrations reach EventBridge; only needed when the
	// account has no trail.
	CreateTrail bool
	// LogRetentionDays of the functions' and the sniffers' log groups.
	// Default 30.
	LogRetentionDays int
	// Remediate lists the remediation classes that act when diagnosed
	// (RemedyClasses); the others are only reported. Default none.
	Remediate []string
	// RemediationCooldownMinutes is the least time between two actions
	// of one class. Default 30.
	RemediationCooldownMinutes int
	// UnhealthyMinutes is how long a sniffer may fail the NLB health check
	// before it is reported (and, with "sniffers", replaced). Default 15.
	UnhealthyMinutes int
	// ReconcileReservedConcurrency, when above 0, reserves that much
	// concurrency for the reconcile function (1: one pass at a time).
	// Default 0: none, which any account can deploy.
	ReconcileReservedConcurrency int
}

// RemedyClasses are the remediations apitap can make (README
// "Troubleshooting"): capacity (the fleet's instance types and zones,
// within the configured lists), kms (the stack's own EBS key's grant to
// Auto Scaling), sessions (a reconcile at once), sniffers (replace one that
// stays unhealthy).
var RemedyClasses = []string{"capacity", "kms", "sessions", "sniffers"}

// Remediates reports whether the class acts (not only reports).
func (c Config) Remediates(class string) bool { return slices.Contains(c.Remediate, class) }

// Defaults.
var (
	DefaultInstanceTypes = []string{"c7g.large", "c6g.large", "c6gn.large", "m7g.large", "m6g.large"}
)

const (
	DefaultStackName         = "apitap"
	DefaultKafkaTopic        = contract.DefaultTopic
	DefaultAktoAccountID     = "1000000"
	DefaultReconcileSchedule = "rate(5 minutes)"
	DefaultLogRetentionDays  = 30
	DefaultMinCapacity       = 2
	DefaultMaxCapacity       = 6
	DefaultCooldownMinutes   = 30
	DefaultUnhealthyMinutes  = 15

	// MaxFilterRules is AWS's limit of rules per traffic mirror filter,
	// both directions together; it cannot be raised.
	MaxFilterRules = 10
	// MaxStackNameLen keeps "<stack>-instance-events" within Lambda's
	// 64-character function names.
	MaxStackNameLen = 48
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.StackName == "" {
		c.StackName = DefaultStackName
	}
	if c.KafkaTopic == "" {
		c.KafkaTopic = DefaultKafkaTopic
	}
	if c.KafkaAuth == "" {
		c.KafkaAuth = KafkaAuthNone
	}
	if len(c.InstanceTypes) == 0 {
		c.InstanceTypes = append([]string(nil), DefaultInstanceTypes...)
	}
	if c.MinCapacity == 0 {
		c.MinCapacity = DefaultMinCapacity
	}
	if c.MaxCapacity == 0 {
		c.MaxCapacity = max(DefaultMaxCapacity, c.MinCapacity)
	}
	if c.DesiredCapacity == 0 {
		c.DesiredCapacity = c.MinCapacity
	}
	if c.AktoAccountID == "" {
		c.AktoAccountID = DefaultAktoAccountID
	}
	if c.SessionNumber == 0 {
		c.SessionNumber = 1
	}
	if c.ConflictPolicy == "" {
		c.ConflictPolicy = "skip"
	}
	if c.ReconcileSchedule == "" {
		c.ReconcileSchedule = DefaultReconcileSchedule
	}
	if c.LogRetentionDays == 0 {
		c.LogRetentionDays = DefaultLogRetentionDays
	}
	if c.RemediationCooldownMinutes == 0 {
		c.RemediationCooldownMinutes = DefaultCooldownMinutes
	}
	if c.UnhealthyMinutes == 0 {
		c.UnhealthyMinutes = DefaultUnhealthyMinutes
	}
	return c
}

// RulesPerSlot is the number of filter rules one port range (or all TCP)
// takes: an ingress and an egress rule per address family.
func (c Config) RulesPerSlot() int {
	if c.SkipIPv6 {
		return 2
	}
	return 4
}

// FilterRules is the number of mirror filter rules the configuration
// needs.
func (c Config) FilterRules() int {
	return c.RulesPerSlot() * max(1, len(c.MirrorPorts))
}

// AvailabilityZones are the zones of the subnets, sorted.
func (c Config) AvailabilityZones() []string {
	seen := map[string]bool{}
	var out []string
	for _, az := range c.Subnets {
		if !seen[az] {
			seen[az] = true
			out = append(out, az)
		}
	}
	sort.Strings(out)
	return out
}

// SubnetIDs are the subnet ids sorted by zone, then id, with their zones
// in the same order.
func (c Config) SubnetIDs() (ids, zones []string) {
	for id := range c.Subnets {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := ids[i], ids[j]
		if c.Subnets[a] != c.Subnets[b] {
			return c.Subnets[a] < c.Subnets[b]
		}
		return a < b
	})
	for _, id := range ids {
		zones = append(zones, c.Subnets[id])
	}
	return ids, zones
}

// Partition is the ARN partition of the region.
func (c Config) Partition() string {
	switch {
	case strings.HasPrefix(c.Region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(c.Region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

var (
	reStackName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	reAccount    = regexp.MustCompile(`^[0-9]{12}$`)
	reRegion     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	reVPC        = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
	reSubnet     = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	reAZ         = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$`)
	reLBARN      = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:loadbalancer/(app/|net/)?[A-Za-z0-9-]+(/[0-9a-f]+)?$`)
	reBroker     = regexp.MustCompile(`^[A-Za-z0-9.-]+:[0-9]{1,5}$`)
	reTopic      = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
	reGraviton   = regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*\.[a-z0-9]+$`)
	reDigits     = regexp.MustCompile(`^[0-9]{1,10}$`)
	reSchedule   = regexp.MustCompile(`^(rate\((1 minute|[0-9]+ minutes|1 hour|[0-9]+ hours|1 day|[0-9]+ days)\)|cron\([^()]+\))$`)
	reEmail      = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	reSecretARN  = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$`)
	reKMSKeyARN  = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$`)
	reMSKARN     = regexp.MustCompile(`^arn:aws[a-z-]*:kafka:[a-z0-9-]+:[0-9]{12}:cluster/([A-Za-z0-9-]+)/([0-9a-f-]+(-[0-9]+)?)$`)
	reSnifferEnv = regexp.MustCompile(`^SNIFFER_[A-Z0-9_]+$`)
	reTagKey     = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	// RetentionDays are CloudWatch Logs' retention periods, by the CDK's
	// names (awslogs.RetentionDays).
	RetentionDays = map[int]string{1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
		30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
		365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
		1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS", 3653: "TEN_YEARS"}
	reservedSniffs = map[string]bool{ // set by the stack itself
		"SNIFFER_KAFKA": true, "SNIFFER_TOPIC": true, "SNIFFER_KAFKA_TLS": true, "SNIFFER_KAFKA_SASL": true,
		"SNIFFER_KAFKA_USERNAME": true, "SNIFFER_KAFKA_PASSWORD": true, "SNIFFER_ACCOUNT_ID": true,
		"SNIFFER_HEALTH_ADDR": true, "SNIFFER_ADMIN_ADDR": true, "SNIFFER_LISTEN": true, "SNIFFER_PCAP": true,
		// Volume control: first-class keys (volumeKeys).
		"SNIFFER_SAMPLE_RATE": true, "SNIFFER_INCLUDE_HOSTS": true, "SNIFFER_EXCLUDE_HOSTS": true,
		"SNIFFER_INCLUDE_PATHS": true, "SNIFFER_EXCLUDE_PATHS": true, "SNIFFER_METHODS": true,
		"SNIFFER_EXCLUDE_STATUS": true, "SNIFFER_DROP_BODY_CONTENT_TYPES": true,
		"SNIFFER_VNI_RATE_LIMIT": true, "SNIFFER_VNI_RATE_BURST": true,
	}
)

// Validate reports every setting that cannot work, each naming its
// context key. It expects defaults applied (WithDefaults).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", ContextPrefix, key, fmt.Sprintf(format, args...)))
	}
	if !reStackName.MatchString(c.StackName) || len(c.StackName) > MaxStackNameLen {
		bad("stackName", "%q must start with a letter, hold only letters, digits and hyphens, and be at most %d characters", c.StackName, MaxStackNameLen)
	}
	if !reAccount.MatchString(c.Account) {
		bad("account", "%q is not a 12-digit AWS account id (required)", c.Account)
	}
	if !reRegion.MatchString(c.Region) {
		bad("region", "%q is not an AWS region such as eu-west-1 (required)", c.Region)
	}
	if !reVPC.MatchString(c.VPCID) {
		bad("vpcId", "%q is not a VPC id such as vpc-0123456789abcdef0 (required: the VPC of the load balancers)", c.VPCID)
	}
	if len(c.VPCCIDRs) == 0 {
		bad("vpcCidr", "required: the VPC's IPv4 CIDR (more than one, comma-separated, for secondary CIDRs)")
	}
	for _, cidr := range c.VPCCIDRs {
		p, err := netip.ParsePrefix(cidr)
		if err != nil || !p.Addr().Is4() || p.Masked() != p {
			bad("vpcCidr", "%q is not an IPv4 network such as 10.0.0.0/16", cidr)
		} else if p.Bits() == 0 {
			bad("vpcCidr", "%q would admit the whole internet", cidr)
		}
	}
	for id, az := range c.Subnets {
		if !reSubnet.MatchString(id) {
			bad("subnets", "%q is not a subnet id", id)
		}
		if !reAZ.MatchString(az) || (c.Region != "" && !strings.HasPrefix(az, c.Region)) {
			bad("subnets", "subnet %s: %q is not an availability zone of region %s", id, az, c.Region)
		}
	}
	if n := len(c.AvailabilityZones()); n < 2 {
		bad("subnets", "private subnets in at least two availability zones are required (got %d zones)", n)
	}
	if len(c.LoadBalancerARNs) == 0 && len(c.LoadBalancerTags) == 0 {
		bad("loadBalancerArns", "select load balancers by ARN and/or by tag (apitap:loadBalancerTags)")
	}
	for _, arn := range c.LoadBalancerARNs {
		if !reLBARN.MatchString(arn) {
			bad("loadBalancerArns", "%q is not a load balancer ARN", arn)
		} else if parts := strings.SplitN(arn, ":", 6); parts[3] != c.Region || parts[4] != c.Account {
			bad("loadBalancerArns", "%q is not in account %s, region %s", arn, c.Account, c.Region)
		}
		if strings.Contains(arn, ",") {
			bad("loadBalancerArns", "%q holds a comma", arn)
		}
	}
	for k, v := range c.LoadBalancerTags {
		if !reTagKey.MatchString(k) || strings.ContainsAny(k+v, ",=") || len(v) > 256 {
			bad("loadBalancerTags", "%q=%q is not a usable tag (no commas or '=' in keys and values)", k, v)
		}
	}

	if len(c.KafkaBrokers) == 0 {
		bad("kafkaBrokers", "required: bootstrap brokers as host:port")
	}
	for _, b := range c.KafkaBrokers {
		if !reBroker.MatchString(b) {
			bad("kafkaBrokers", "%q is not host:port", b)
		} else if _, port, _ := strings.Cut(b, ":"); !validPort(port) {
			bad("kafkaBrokers", "%q: port out of range", b)
		}
	}
	if !reTopic.MatchString(c.KafkaTopic) {
		bad("kafkaTopic", "%q is not a Kafka topic name", c.KafkaTopic)
	}
	switch c.KafkaAuth {
	case KafkaAuthNone:
		if c.KafkaSecretARN != "" || c.MSKClusterARN != "" {
			bad("kafkaAuth", "is none but kafkaSecretArn or mskClusterArn is set")
		}
	case KafkaAuthSCRAMSHA512, KafkaAuthSCRAMSHA256:
		if !reSecretARN.MatchString(c.KafkaSecretARN) {
			bad("kafkaSecretArn", "%q is not a Secrets Manager secret ARN (required with kafkaAuth %s)", c.KafkaSecretARN, c.KafkaAuth)
		}
		if !c.KafkaTLS {
			bad("kafkaTls", "must be true with SASL/SCRAM (the password would cross the network in clear)")
		}
	case KafkaAuthIAM:
		if !reMSKARN.MatchString(c.MSKClusterARN) {
			bad("mskClusterArn", "%q is not an Amazon MSK cluster ARN (required with kafkaAuth iam)", c.MSKClusterARN)
		}
		if !c.KafkaTLS {
			bad("kafkaTls", "must be true with MSK IAM authentication")
		}
	default:
		bad("kafkaAuth", "%q is not none, scram-sha-512, scram-sha-256 or iam", c.KafkaAuth)
	}
	if c.KafkaSecretKMSKeyARN != "" && !reKMSKeyARN.MatchString(c.KafkaSecretKMSKeyARN) {
		bad("kafkaSecretKmsKeyArn", "%q is not a KMS key ARN", c.KafkaSecretKMSKeyARN)
	}

	if len(c.InstanceTypes) == 0 {
		bad("instanceTypes", "at least one type is required")
	}
	seen := map[string]bool{}
	for _, t := range c.InstanceTypes {
		if !reGraviton.MatchString(t) {
			bad("instanceTypes", "%q is not an arm64 Graviton instance type such as c7g.large", t)
		}
		if seen[t] {
			bad("instanceTypes", "%q is listed twice", t)
		}
		seen[t] = true
	}
	if len(c.InstanceTypes) > 40 {
		bad("instanceTypes", "at most 40 types")
	}
	if c.MinCapacity < 1 || c.MaxCapacity < c.MinCapacity || c.DesiredCapacity < c.MinCapacity || c.DesiredCapacity > c.MaxCapacity {
		bad("minCapacity", "need 1 <= minCapacity (%d) <= desiredCapacity (%d) <= maxCapacity (%d)", c.MinCapacity, c.DesiredCapacity, c.MaxCapacity)
	}
	if c.MaxCapacity > 100 {
		bad("maxCapacity", "%d is more than 100 sniffers", c.MaxCapacity)
	}
	if !reDigits.MatchString(c.AktoAccountID) {
		bad("aktoAccountId", "%q is not a decimal account id", c.AktoAccountID)
	}
	for k, v := range c.SnifferEnv {
		if !reSnifferEnv.MatchString(k) {
			bad("snifferEnv", "%q is not a SNIFFER_* variable", k)
		} else if reservedSniffs[k] {
			bad("snifferEnv", "%s is set by the stack from its own settings", k)
		}
		if strings.ContainsAny(v, "\n\r\x00'\"\\$`") {
			bad("snifferEnv", "%s: value holds a newline, quote, backslash, '$' or '`'", k)
		}
	}

	c.validateVolume(bad)

	if c.SessionNumber < 1 || c.SessionNumber > 32766 {
		bad("sessionNumber", "%d is outside 1-32766", c.SessionNumber)
	}
	if c.ConflictPolicy != "skip" && c.ConflictPolicy != "coexist" {
		bad("conflictPolicy", "%q is not skip or coexist", c.ConflictPolicy)
	}
	for i, p := range c.MirrorPorts {
		if p.From < 1 || p.To > 65535 || p.From > p.To {
			bad("mirrorPorts", "%s is not a port or a range within 1-65535", p)
		}
		for _, q := range c.MirrorPorts[:i] {
			if p.From <= q.To && q.From <= p.To {
				bad("mirrorPorts", "%s overlaps %s", p, q)
			}
		}
	}
	if n := c.FilterRules(); n > MaxFilterRules {
		fams := "IPv4 and IPv6"
		if c.SkipIPv6 {
			fams = "IPv4"
		}
		bad("mirrorPorts", "%d port ranges need %d filter rules (an ingress and an egress rule for %s each), a traffic mirror filter holds at most %d: at most %d ranges fit; merge ports into ranges (8000-8099), leave mirrorPorts empty for all TCP, or set mirrorIpv6 false for %d",
			len(c.MirrorPorts), n, fams, MaxFilterRules, MaxFilterRules/c.RulesPerSlot(), MaxFilterRules/2)
	}
	if !reSchedule.MatchString(c.ReconcileSchedule) {
		bad("reconcileSchedule", "%q is not an EventBridge schedule such as rate(5 minutes) or cron(0/5 * * * ? *)", c.ReconcileSchedule)
	}
	if c.NotificationEmail != "" && !reEmail.MatchString(c.NotificationEmail) {
		bad("notificationEmail", "%q is not an e-mail address", c.NotificationEmail)
	}
	for _, r := range c.Remediate {
		if !slices.Contains(RemedyClasses, r) {
			bad("remediate", "%q is not one of %v", r, RemedyClasses)
		}
	}
	if c.RemediationCooldownMinutes < 5 || c.RemediationCooldownMinutes > 1440 {
		bad("remediationCooldownMinutes", "%d is outside 5-1440", c.RemediationCooldownMinutes)
	}
	if c.UnhealthyMinutes < 5 || c.UnhealthyMinutes > 1440 {
		bad("unhealthyMinutes", "%d is outside 5-1440", c.UnhealthyMinutes)
	}
	if c.ReconcileReservedConcurrency < 0 || c.ReconcileReservedConcurrency > 1000 {
		bad("reconcileReservedConcurrency", "%d is outside 0 (none, the default) to 1000", c.ReconcileReservedConcurrency)
	}
	if _, ok := RetentionDays[c.LogRetentionDays]; !ok {
		var days []int
		for d := range RetentionDays {
			days = append(days, d)
		}
		sort.Ints(days)
		bad("logRetentionDays", "%d is not one of CloudWatch Logs' retention periods %v", c.LogRetentionDays, days)
	}
	if err := errors.Join(errs...); err != nil {
		return &InvalidError{Err: err}
	}
	return nil
}

// InvalidError is a configuration that does not validate: Err joins one
// error per setting.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string {
	return "invalid apitap configuration (CDK context, see README \"Deploying\"):\n" + e.Err.Error()
}

func (e *InvalidError) Unwrap() error { return e.Err }

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// MSKResources are the IAM resources of MSK IAM access: the cluster, and
// the topic (arn:...:topic/<cluster name>/<cluster uuid>/<topic>).
func (c Config) MSKResources() (cluster, topic string) {
	m := reMSKARN.FindStringSubmatch(c.MSKClusterARN)
	if m == nil {
		return "", ""
	}
	prefix := strings.TrimSuffix(c.MSKClusterARN, "cluster/"+m[1]+"/"+m[2])
	return c.MSKClusterARN, prefix + "topic/" + m[1] + "/" + m[2] + "/" + c.KafkaTopic
}

// FromContext reads the configuration from CDK context. get returns the
// value of a context key, nil when unset: from cdk.json a JSON value, from
// `cdk -c key=value` a string. Lists are JSON arrays or comma-separated
// strings; maps are JSON objects or comma-separated key=value strings.
// The result has defaults applied and is validated.
func FromContext(get func(key string) any) (Config, error) {
	var errs []error
	r := reader{get: get, errs: &errs}
	c := Config{
		StackName:            r.str("stackName"),
		Account:              r.str("account"),
		Region:               r.str("region"),
		VPCID:                r.str("vpcId"),
		VPCCIDRs:             r.list("vpcCidr"),
		Subnets:              r.kv("subnets"),
		LoadBalancerARNs:     r.list("loadBalancerArns"),
		LoadBalancerTags:     r.kv("loadBalancerTags"),
		KafkaBrokers:         r.list("kafkaBrokers"),
		KafkaTopic:           r.str("kafkaTopic"),
		KafkaTLS:             r.boolean("kafkaTls"),
		KafkaAuth:            KafkaAuth(strings.ToLower(r.str("kafkaAuth"))),
		KafkaSecretARN:       r.str("kafkaSecretArn"),
		KafkaSecretKMSKeyARN: r.str("kafkaSecretKmsKeyArn"),
		MSKClusterARN:        r.str("mskClusterArn"),
		InstanceTypes:        r.list("instanceTypes"),
		MinCapacity:          r.integer("minCapacity"),
		MaxCapacity:          r.integer("maxCapacity"),
		DesiredCapacity:      r.integer("desiredCapacity"),
		AktoAccountID:        r.str("aktoAccountId"),
		SnifferEnv:           r.kv("snifferEnv"),
		SessionNumber:        r.integer("sessionNumber"),
		ConflictPolicy:       r.str("conflictPolicy"),
		ReconcileSchedule:    r.str("reconcileSchedule"),
		NotificationEmail:    r.str("notificationEmail"),
		CreateTrail:          r.boolean("createTrail"),
		LogRetentionDays:     r.integer("logRetentionDays"),
		SkipIPv6:             !r.booleanOr("mirrorIpv6", true),

		ReconcileReservedConcurrency: r.integer("reconcileReservedConcurrency"),
		Remediate:                    r.list("remediate"),
		RemediationCooldownMinutes:   r.integer("remediationCooldownMinutes"),
		UnhealthyMinutes:             r.integer("unhealthyMinutes"),

		SampleRate:           r.number("sampleRate"),
		IncludeHosts:         r.list("includeHosts"),
		ExcludeHosts:         r.list("excludeHosts"),
		IncludePaths:         r.list("includePaths"),
		ExcludePaths:         r.list("excludePaths"),
		Methods:              r.list("methods"),
		ExcludeStatus:        r.list("excludeStatus"),
		DropBodyContentTypes: r.list("dropBodyContentTypes"),
		VNIRateBurst:         r.integer("vniRateBurst"),
	}
	if v := r.number("vniRateLimit"); v != nil {
		c.VNIRateLimit = *v
	}
	for _, p := range r.list("mirrorPorts") {
		pr, err := parsePortRange(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%smirrorPorts: %w", ContextPrefix, err))
			continue
		}
		c.MirrorPorts = append(c.MirrorPorts, pr)
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("invalid apitap configuration (CDK context, see README \"Deploying\"):\n%w", err)
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

func parsePortRange(s string) (PortRange, error) {
	from, to, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(from))
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(to))
	}
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("%q is not a port (80) or a range (8000-8099)", s)
	}
	return PortRange{a, b}, nil
}

// reader turns context values of either shape into Go values.
type reader struct {
	get  func(string) any
	errs *[]error
}

func (r reader) fail(key string, v any, want string) {
	*r.errs = append(*r.errs, fmt.Errorf("%s%s: %v is not %s", ContextPrefix, key, v, want))
}

func (r reader) str(key string) string {
	switch v := r.get(ContextPrefix + key).(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		r.fail(key, v, "a string")
		return ""
	}
}

func (r reader) boolean(key string) bool {
	switch v := r.get(ContextPrefix + key).(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			r.fail(key, v, "true or false")
		}
		return b
	default:
		r.fail(key, v, "true or false")
		return false
	}
}

// booleanOr is boolean with a default for an unset key.
func (r reader) booleanOr(key string, def bool) bool {
	if r.get(ContextPrefix+key) == nil {
		return def
	}
	return r.boolean(key)
}

// number is a JSON number or a decimal string; nil when unset.
func (r reader) number(key string) *float64 {
	switch v := r.get(ContextPrefix + key).(type) {
	case nil:
		return nil
	case float64:
		return &v
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			r.fail(key, v, "a number")
			return nil
		}
		return &f
	default:
		r.fail(key, v, "a number")
		return nil
	}
}

func (r reader) integer(key string) int {
	switch v := r.get(ContextPrefix + key).(type) {
	case nil:
		return 0
	case float64:
		if v != float64(int(v)) {
			r.fail(key, v, "a whole number")
		}
		return int(v)
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			r.fail(key, v, "a whole number")
		}
		return n
	default:
		r.fail(key, v, "a whole number")
		return 0
	}
}

func (r reader) list(key string) []string {
	var raw []any
	switch v := r.get(ContextPrefix + key).(type) {
	case nil:
		return nil
	case []any:
		raw = v
	case []string:
		for _, s := range v {
			raw = append(raw, s)
		}
	case float64:
		raw = []any{v}
	case string:
		if strings.HasPrefix(strings.TrimSpace(v), "[") {
			if err := json.Unmarshal([]byte(v), &raw); err != nil {
				r.fail(key, v, "a JSON array")
				return nil
			}
			break
		}
		for _, s := range strings.Split(v, ",") {
			raw = append(raw, s)
		}
	default:
		r.fail(key, v, "a list")
		return nil
	}
	var out []string
	for _, x := range raw {
		switch x := x.(type) {
		case string:
			if s := strings.TrimSpace(x); s != "" {
				out = append(out, s)
			}
		case float64:
			out = append(out, strconv.FormatFloat(x, 'f', -1, 64))
		default:
			r.fail(key, x, "a string")
		}
	}
	return out
}

func (r reader) kv(key string) map[string]string {
	out := map[string]string{}
	switch v := r.get(ContextPrefix + key).(type) {
	case nil:
		return nil
	case map[string]any:
		for k, x := range v {
			s, ok := x.(string)
			if !ok {
				r.fail(key, x, "a string")
				continue
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(s)
		}
	case map[string]string:
		for k, s := range v {
			out[k] = s
		}
	case string:
		if strings.HasPrefix(strings.TrimSpace(v), "{") {
			var m map[string]string
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				r.fail(key, v, "a JSON object of strings")
				return nil
			}
			return m
		}
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			k, val, ok := strings.Cut(item, "=")
			if !ok || strings.TrimSpace(k) == "" {
				r.fail(key, item, "key=value")
				continue
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
	default:
		r.fail(key, v, "an object or key=value list")
		return nil
	}
	return out
}
