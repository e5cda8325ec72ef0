// Package awserr classifies AWS API errors in one place, so that retry and
// reporting decisions are made the same way everywhere.
//
// Classification is by error code, as documented in the EC2 API's error
// code reference (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
// and the Elastic Load Balancing API references; docs/aws.md lists each
// code and what apitap does with it. Matching on the message is only a
// fallback for codes AWS does not document for a case (a Class with
// Fallback set), and callers count it, so that an undocumented answer is
// seen rather than silently relied upon. There is no list of instance
// types: which ones can be mirrored changes over time, and the API says so
// itself (NetworkInterfaceNotSupported).
package awserr

import (
	"errors"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kind is what apitap does about an error.
type Kind int

const (
	// Other is an error not classified: the operation failed, the next
	// run tries again.
	Other Kind = iota
	// Throttled is API throttling that survived the SDK's retries.
	Throttled
	// ServerError is AWS failing on its side (5xx).
	ServerError
	// NotFound is a resource that does not exist (any more): for a delete,
	// the work is done.
	NotFound
	// UnsupportedSource is a network interface Traffic Mirroring cannot use
	// as a source: reported, retried only after a backoff.
	UnsupportedSource
	// Quota is a Traffic Mirroring quota (Class.Quota names it): reported,
	// retried only after a backoff. None of these quotas can be raised.
	Quota
	// IdempotentMismatch is a ClientToken already used with other
	// parameters.
	IdempotentMismatch
	// BadFilter is a Describe filter the API refused (unknown name, too
	// many values).
	BadFilter
	// AccessDenied is a missing IAM permission.
	AccessDenied
)

var kindNames = [...]string{"other", "throttled", "server error", "not found", "unsupported source", "quota", "idempotent mismatch", "bad filter", "access denied"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Class is the classification of one error.
type Class struct {
	Kind Kind
	// Code is the API error code, "" for an error without one (network).
	Code string
	// Quota names the quota reached, for Kind Quota.
	Quota string
	// Fallback is set when the class was inferred from the message or from
	// the shape of an undocumented code, not from a documented code.
	Fallback bool
}

// Documented error codes (EC2 API error-code reference unless noted).
const (
	// CodeNetworkInterfaceNotSupported: "The network interface is not
	// supported for Traffic Mirroring."
	CodeNetworkInterfaceNotSupported = "NetworkInterfaceNotSupported"
	// The session not-found code has two spellings: the reference lists
	// InvalidTrafficMirrorSessionNotFound, the API answers with EC2's usual
	// <Param>.NotFound form.
	CodeSessionNotFound    = "InvalidTrafficMirrorSessionNotFound"
	CodeSessionIDNotFound  = "InvalidTrafficMirrorSessionId.NotFound"
	CodeIdempotentMismatch = "IdempotentParameterMismatch"
	CodeRequestLimit       = "RequestLimitExceeded" // EC2 throttling
	CodeThrottling         = "Throttling"           // ELB, Auto Scaling and CloudFormation throttling
	CodeInvalidFilter      = "InvalidFilter"
	CodeFilterLimit        = "FilterLimitExceeded"
	CodeInvalidParameter   = "InvalidParameterValue"
	CodeUnauthorized       = "UnauthorizedOperation" // EC2
	CodeAccessDenied       = "AccessDenied"          // ELB, Auto Scaling
)

// quotas maps the documented Traffic Mirroring quota codes to the quota's
// name (Traffic Mirroring quotas page of the VPC Traffic Mirroring guide).
var quotas = map[string]string{
	"TrafficMirrorSessionsPerInterfaceLimitExceeded": "3 sessions per source network interface",
	"TrafficMirrorSessionLimitExceeded":              "10,000 sessions per account and Region",
	"TrafficMirrorSessionsPerTargetLimitExceeded":    "sessions per mirror target",
	"TrafficMirrorSourcesPerTargetLimitExceeded":     "sources per mirror target",
	"TrafficMirrorTargetLimitExceeded":               "10,000 mirror targets per account and Region",
	"TrafficMirrorFilterLimitExceeded":               "10,000 mirror filters per account and Region",
	"TrafficMirrorFilterRuleLimitExceeded":           "10 rules per mirror filter",
}

var throttleCodes = map[string]bool{
	CodeRequestLimit: true, CodeThrottling: true, "ThrottlingException": true, "TooManyRequestsException": true,
	"RequestThrottled": true, "RequestThrottledException": true, "SlowDown": true,
}

var serverCodes = map[string]bool{
	"InternalError": true, "InternalFailure": true, "Unavailable": true, "ServiceUnavailable": true,
}

// Classify says what err is. A nil error is Other with no code.
func Classify(err error) Class {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		if err != nil && httpStatus(err)/100 == 5 {
			return Class{Kind: ServerError}
		}
		return Class{Kind: Other}
	}
	c := Class{Code: ae.ErrorCode()}
	msg := strings.ToLower(ae.ErrorMessage())
	switch code := c.Code; {
	case code == CodeNetworkInterfaceNotSupported:
		c.Kind = UnsupportedSource
	case code == CodeSessionNotFound || code == CodeSessionIDNotFound:
		c.Kind = NotFound
	case quotas[code] != "":
		c.Kind, c.Quota = Quota, quotas[code]
	case throttleCodes[code]:
		c.Kind = Throttled
	case serverCodes[code] || ae.ErrorFault() == smithy.FaultServer:
		c.Kind = ServerError
	case code == CodeIdempotentMismatch:
		c.Kind = IdempotentMismatch
	case code == CodeInvalidFilter || code == CodeFilterLimit:
		c.Kind = BadFilter
	case code == CodeUnauthorized || code == CodeAccessDenied:
		c.Kind = AccessDenied
	case strings.HasSuffix(code, ".NotFound") || code == "LoadBalancerNotFound" || code == "TargetGroupNotFound":
		// EC2 names every not-found code <Param>.NotFound; ELBv2 has its
		// own (both documented).
		c.Kind = NotFound

	// Fallbacks: undocumented answers, counted by the callers.
	case (code == CodeInvalidParameter || code == "UnsupportedOperation" || code == "InvalidParameterCombination") &&
		(strings.Contains(msg, "not supported") || strings.Contains(msg, "unsupported") ||
			strings.Contains(msg, "does not support") || strings.Contains(msg, "cannot be used as a traffic mirror source") ||
			strings.Contains(msg, "cannot be a traffic mirror source")):
		c.Kind, c.Fallback = UnsupportedSource, true
	case code == CodeInvalidParameter && strings.Contains(msg, "filter"):
		c.Kind, c.Fallback = BadFilter, true
	case strings.HasPrefix(code, "TrafficMirror") && (strings.HasSuffix(code, "LimitExceeded") || strings.HasSuffix(code, "QuotaExceeded")):
		c.Kind, c.Quota, c.Fallback = Quota, code, true
	case strings.HasSuffix(code, "NotFound"):
		c.Kind, c.Fallback = NotFound, true
	default:
		c.Kind = Other
	}
	return c
}

// httpStatus is the HTTP status of a response error, 0 when there is none.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Code is the API error code of err, "" when err is not an API error.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// IsThrottled reports API throttling that survived the SDK's retries.
func IsThrottled(err error) bool { return Classify(err).Kind == Throttled }

// IsNotFound reports that the resource acted on no longer exists: for a
// delete, the work is already done.
func IsNotFound(err error) bool { return Classify(err).Kind == NotFound }

// IsUnsupportedSource reports that the source ENI cannot be mirrored.
func IsUnsupportedSource(err error) bool { return Classify(err).Kind == UnsupportedSource }

// IsLimitExceeded reports a Traffic Mirroring quota (not API throttling).
func IsLimitExceeded(err error) bool { return Classify(err).Kind == Quota }

// IsIdempotentMismatch reports a ClientToken reused with other parameters.
func IsIdempotentMismatch(err error) bool { return Classify(err).Kind == IdempotentMismatch }

// IsBadFilter reports a Describe filter the API does not take.
func IsBadFilter(err error) bool { return Classify(err).Kind == BadFilter }

// Retryable reports whether a later attempt may succeed where this one
// failed: throttling, server errors and errors without an API code
// (network, timeouts).
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	switch c := Classify(err); c.Kind {
	case Throttled, ServerError:
		return true
	case Other:
		return c.Code == ""
	}
	return false
}
