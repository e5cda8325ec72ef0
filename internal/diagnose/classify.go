package diagnose

import (
	"regexp"
	"slices"
	"strings"
)

// Class is the kind of a failure, which decides its fix.
type Class string

const (
	// Unknown: no pattern matched; the evidence is all there is.
	Unknown Class = "Unknown"
	// InsufficientCapacity: EC2 has no capacity of the type in the zone now.
	InsufficientCapacity Class = "InsufficientCapacity"
	// KMSLaunch: an instance with an encrypted volume failed to launch
	// because the Auto Scaling service-linked role may not use the key.
	KMSLaunch Class = "KMSLaunch"
	// TypeNotOffered: the instance type (or the configuration) is not
	// offered in the zone.
	TypeNotOffered Class = "TypeNotOffered"
	// MirrorQuota: a Traffic Mirroring quota, which cannot be raised.
	MirrorQuota Class = "MirrorQuota"
	// AccessDenied: a principal lacks a permission (or is denied one).
	AccessDenied Class = "AccessDenied"
	// ServiceLinkedRoleMissing: the Auto Scaling service-linked role does
	// not exist yet, so a key policy naming it is refused.
	ServiceLinkedRoleMissing Class = "ServiceLinkedRoleMissing"
	// ResourceLimit: another quota (vCPUs, instances, addresses, ...).
	ResourceLimit Class = "ResourceLimit"
)

// Classification is what a failure message says, in fields.
type Classification struct {
	Class Class
	// Code is the error code the message or its caller named
	// (InsufficientInstanceCapacity, TrafficMirrorTargetLimitExceeded,
	// AccessDenied, ...), or "".
	Code string
	// InstanceType and Zone the message names (capacity, type not offered).
	InstanceType, Zone string
	// OtherZones are the zones EC2 suggests instead ("... or choosing
	// us-east-1b, us-east-1c"), in its order.
	OtherZones []string
	// Action, Principal and Resource of an access denial; DeniedBy says
	// where an explicit deny is ("service control policy", ...), "" when
	// no policy allows the action (then an Allow fixes it).
	Action, Principal, Resource, DeniedBy string
	// Quota names the Traffic Mirroring quota (MirrorQuota) or the limit
	// code (ResourceLimit).
	Quota string
}

// Message shapes. Each one's source is in docs/aws.md ("Diagnosis").
var (
	// EC2 InsufficientInstanceCapacity, as RunInstances and Auto Scaling
	// activities write it.
	reCapacity = regexp.MustCompile(`We currently do not have sufficient (\S+) capacity in the Availability Zone you requested \(([a-z0-9-]+)\)`)
	// "... or choosing us-east-1b, us-east-1c." (capacity and type not offered)
	reChoosing = regexp.MustCompile(`\bor choosing ([a-z0-9-]+(?:,\s*(?:and |or )?[a-z0-9-]+)*)`)
	// EC2 Unsupported, as RunInstances and Auto Scaling activities write it.
	reTypeNotInZone = regexp.MustCompile(`Your requested instance type \((\S+)\) is not supported in your requested Availability Zone \(([a-z0-9-]+)\)`)
	// IAM's access denied messages: "User: <principal> is not authorized to
	// perform: <action> [on resource: <arn>] [because no <policy> allows
	// the <action> action | with an explicit deny in a <policy>]".
	reNotAuthorized = regexp.MustCompile(`User: (\S+) is not authorized to perform: ([A-Za-z0-9-]+:[A-Za-z0-9*]+)(?: on resource: (\S+?))?(?:\s+(?:because|with)\b|[.,"]?(?:\s|$))`)
	reExplicitDeny  = regexp.MustCompile(`with an explicit deny in (?:an? )?([a-z -]+?policy)`)
	// Older CloudFormation resources prefix the call: "API: ec2:CreateX <message>".
	reAPIPrefix = regexp.MustCompile(`\bAPI: ([a-z0-9-]+:[A-Za-z0-9]+) `)
	// Codes inside a message: SDK v1 "(Service: ...; Error Code: X; ...)",
	// CloudFormation's "(RequestToken: ..., HandlerErrorCode: X)", SDK v2
	// "api error X: ...", and EC2 state reasons "Client.X: ..." / "Server.X: ...".
	reErrorCode   = regexp.MustCompile(`Error Code: ([A-Za-z0-9.]+)`)
	reHandlerCode = regexp.MustCompile(`HandlerErrorCode: ([A-Za-z]+)`)
	reAPIError    = regexp.MustCompile(`api error ([A-Za-z0-9.]+):`)
	reStateReason = regexp.MustCompile(`\b((?:Client|Server)\.[A-Za-z0-9.]+):`)
	// Traffic Mirroring quotas in words.
	reMirrorWords = regexp.MustCompile(`(?i)traffic mirror(?:ing)? (session|target|filter rule|filter|source)s?\b.*\b(limit|maximum|quota)|\b(limit|maximum|quota)\b.*\btraffic mirror(?:ing)? (session|target|filter rule|filter|source)`)
	// Other quotas in words.
	reLimitWords = regexp.MustCompile(`(?i)\blimit exceeded\b|\bmaximum number of\b|\bcurrent vCPU limit\b|\bYour quota allows for\b|\bbelow its minimum value\b|\bexceeds? the (?:account )?(?:limit|quota)\b`)
)

// mirrorQuotas are the Traffic Mirroring quota codes of the EC2 API, with
// the quota each one is (docs/aws.md, "Traffic Mirroring").
var mirrorQuotas = map[string]string{
	"TrafficMirrorSessionsPerInterfaceLimitExceeded": "sessions per source network interface (3)",
	"TrafficMirrorSessionLimitExceeded":              "sessions per account and Region (10,000)",
	"TrafficMirrorSessionsPerTargetLimitExceeded":    "sessions per target",
	"TrafficMirrorSourcesPerTargetLimitExceeded":     "sources per target",
	"TrafficMirrorTargetLimitExceeded":               "targets per account and Region (10,000)",
	"TrafficMirrorFilterLimitExceeded":               "filters per account and Region (10,000)",
	"TrafficMirrorFilterRuleLimitExceeded":           "rules per filter (10)",
}

// mirrorQuotaWords names the quota a message describes in words.
var mirrorQuotaWords = map[string]string{
	"session":     "sessions",
	"target":      "targets per account and Region (10,000)",
	"filter":      "filters per account and Region (10,000)",
	"filter rule": "rules per filter (10)",
	"source":      "sources per target",
}

// activityStatus are Auto Scaling activity status codes: not error codes.
var activityStatus = map[string]bool{
	"Failed": true, "Cancelled": true, "Successful": true, "InProgress": true,
	"PendingSpotBidPlacement": true, "WaitingForSpotInstanceRequestId": true,
	"WaitingForSpotInstanceId": true, "WaitingForInstanceId": true,
	"PreInService": true, "WaitingForELBConnectionDraining": true,
	"MidLifecycleAction": true, "WaitingForInstanceWarmup": true,
}

// Classify classifies a failure message: a stack event's
// ResourceStatusReason, or an Auto Scaling activity's StatusMessage with
// its StatusCode as code ("Failed" and the other activity statuses are not
// error codes and are ignored). code may be "" (it is then looked for in
// the message). The first rule that matches decides, in this order: the
// service-linked role, access denied, Traffic Mirroring quotas, capacity,
// type not offered, the launch error of an encrypted volume, other limits.
func Classify(code, message string) Classification {
	c := Classification{Class: Unknown, Code: errorCode(code, message)}
	switch {
	case slrMissing(message):
		c.Class = ServiceLinkedRoleMissing
	case accessDenied(&c, message):
		c.Class = AccessDenied
	case mirrorQuota(&c, message):
		c.Class = MirrorQuota
	case capacity(&c, message):
		c.Class = InsufficientCapacity
	case typeNotOffered(&c, message):
		c.Class = TypeNotOffered
	case kmsLaunch(c.Code, message):
		c.Class = KMSLaunch
	case resourceLimit(&c, message):
		c.Class = ResourceLimit
	}
	return c
}

// errorCode is code when it is one, else the first code the message names.
func errorCode(code, message string) string {
	if code != "" && !activityStatus[code] {
		return code
	}
	for _, re := range []*regexp.Regexp{reErrorCode, reAPIError, reStateReason} {
		if m := re.FindStringSubmatch(message); m != nil {
			return m[1]
		}
	}
	// CloudFormation's handler code is coarser (AccessDenied,
	// ServiceLimitExceeded, NotStabilized, ...): last.
	if m := reHandlerCode.FindStringSubmatch(message); m != nil {
		return m[1]
	}
	return ""
}

// slrMissing: KMS refuses a key policy naming a principal that does not
// exist ("Policy contains a statement with one or more invalid
// principals.", MalformedPolicyDocumentException). apitap's key policies
// name the account, AWS services and the Auto Scaling service-linked role
// only, and the role is the one that may not exist yet (docs/aws.md,
// "Notifications"). Services that use the role name it when it is absent.
func slrMissing(message string) bool {
	m := strings.ToLower(message)
	return strings.Contains(m, "one or more invalid principals") ||
		strings.Contains(m, "arn specified for service-linked role does not exist") ||
		(strings.Contains(m, "service-linked role") && (strings.Contains(m, "does not exist") || strings.Contains(m, "not found")))
}

func accessDenied(c *Classification, message string) bool {
	if m := reNotAuthorized.FindStringSubmatch(message); m != nil {
		c.Principal, c.Action, c.Resource = m[1], m[2], strings.TrimRight(m[3], ".,")
		if d := reExplicitDeny.FindStringSubmatch(message); d != nil {
			c.DeniedBy = d[1]
		}
		c.Code = canonical(c.Code, deniedCodes)
		return true
	}
	if !slices.Contains(deniedCodes, c.Code) && !strings.Contains(message, "You are not authorized to perform this operation") {
		return false
	}
	c.Code = canonical(c.Code, deniedCodes)
	if m := reAPIPrefix.FindStringSubmatch(message); m != nil {
		c.Action = m[1]
	}
	return true
}

func mirrorQuota(c *Classification, message string) bool {
	for _, code := range []string{c.Code, mirrorCodeIn(message)} {
		if q, ok := mirrorQuotas[code]; ok {
			c.Code, c.Quota = code, q
			return true
		}
	}
	m := reMirrorWords.FindStringSubmatch(message)
	if m == nil {
		return false
	}
	what := strings.ToLower(m[1] + m[4])
	c.Quota = mirrorQuotaWords[what]
	return true
}

// mirrorCodeIn returns a Traffic Mirroring quota code written in message.
func mirrorCodeIn(message string) string {
	for code := range mirrorQuotas {
		if strings.Contains(message, code) {
			return code
		}
	}
	return ""
}

func capacity(c *Classification, message string) bool {
	if m := reCapacity.FindStringSubmatch(message); m != nil {
		c.InstanceType, c.Zone = m[1], m[2]
		c.OtherZones = otherZones(message)
		c.Code = canonical(c.Code, capacityCodes)
		return true
	}
	if slices.Contains(capacityCodes, c.Code) || strings.Contains(message, "There is no Spot capacity available that matches your request") {
		c.Code = canonical(c.Code, capacityCodes)
		return true
	}
	return false
}

func typeNotOffered(c *Classification, message string) bool {
	if m := reTypeNotInZone.FindStringSubmatch(message); m != nil {
		c.InstanceType, c.Zone = m[1], m[2]
		c.OtherZones = otherZones(message)
		c.Code = "Unsupported"
		return true
	}
	if strings.Contains(message, "The requested configuration is currently not supported") || c.Code == "Unsupported" {
		c.Code = "Unsupported"
		return true
	}
	return false
}

// kmsLaunch: EC2's state reason for an instance terminated at launch by a
// client error. AWS names a key the launching principal may not use as its
// cause; the fleet's volumes are always encrypted with a customer managed
// key (infra/stack/fleet.go), so for the fleet it is that (docs/aws.md).
func kmsLaunch(code, message string) bool {
	return strings.Contains(message, "Client error on launch") &&
		(code == "Client.InternalError" || strings.Contains(message, "Client.InternalError"))
}

func resourceLimit(c *Classification, message string) bool {
	// Throttling is no quota: the SDK retries it (docs/aws.md, "Error codes").
	if slices.Contains(throttleCodes, c.Code) || strings.Contains(message, "RequestLimitExceeded") || strings.Contains(message, "Rate exceeded") {
		return false
	}
	limitCode := strings.HasSuffix(c.Code, "LimitExceeded")
	if !limitCode && !reLimitWords.MatchString(message) {
		return false
	}
	switch {
	case limitCode:
		c.Quota = strings.TrimPrefix(c.Code, "Client.")
	case strings.Contains(message, "current vCPU limit"):
		c.Quota = "VcpuLimitExceeded"
	case strings.Contains(message, "Your quota allows for"):
		c.Quota = "InstanceLimitExceeded"
	case strings.Contains(message, "UnreservedConcurrentExecution"):
		c.Quota = "Lambda unreserved concurrency (at least 100 kept)"
	}
	return true
}

// Codes of one class; the first is the one reported when the message
// named another (a CloudFormation handler code) or none.
var (
	deniedCodes   = []string{"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation"}
	throttleCodes = []string{"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}
	capacityCodes = []string{"InsufficientInstanceCapacity", "Server.InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity"}
)

// canonical is code when it is one of set, else set's first.
func canonical(code string, set []string) string {
	if slices.Contains(set, code) {
		return code
	}
	return set[0]
}

// otherZones returns the zones of "... or choosing a, b, c".
func otherZones(message string) []string {
	m := reChoosing.FindStringSubmatch(message)
	if m == nil {
		return nil
	}
	var out []string
	for _, z := range strings.Split(m[1], ",") {
		z = strings.TrimSpace(z)
		z = strings.TrimPrefix(strings.TrimPrefix(z, "and "), "or ")
		if z != "" {
			out = append(out, z)
		}
	}
	return out
}
