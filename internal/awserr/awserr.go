// Package awserr classifies AWS API errors in one place, so that retry and
// reporting decisions are made the same way everywhere. It looks only at
// the error code and message of a smithy.APIError, never at a list of
// instance types: which types can be mirrored changes over time.
package awserr

import (
	"errors"
	"strings"

	"github.com/aws/smithy-go"
)

// Code is the API error code of err, "" when err is not an API error.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func message(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return strings.ToLower(ae.ErrorMessage())
	}
	return ""
}

// IsThrottled reports API throttling that survived the SDK's retries.
func IsThrottled(err error) bool {
	switch Code(err) {
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
		"RequestThrottled", "RequestThrottledException", "SlowDown":
		return true
	}
	return false
}

// IsNotFound reports that the resource acted on no longer exists: for a
// delete, the work is already done.
func IsNotFound(err error) bool {
	c := Code(err)
	return strings.HasSuffix(c, ".NotFound") || strings.HasSuffix(c, "NotFound") ||
		c == "LoadBalancerNotFound" || c == "TargetGroupNotFound"
}

// IsUnsupportedSource reports that the source ENI cannot be mirrored, such
// as an ENI of an instance type that Traffic Mirroring does not support.
// Retrying soon would fail the same way.
func IsUnsupportedSource(err error) bool {
	c, m := Code(err), message(err)
	switch c {
	case "UnsupportedOperation", "InvalidParameterValue", "InvalidParameterCombination", "InvalidNetworkInterface.Unsupported":
		return strings.Contains(m, "not supported") || strings.Contains(m, "unsupported") ||
			strings.Contains(m, "does not support") || strings.Contains(m, "cannot be used as a traffic mirror source")
	}
	return false
}

// IsLimitExceeded reports a quota such as three sessions per ENI or
// 10,000 sessions per account (not API throttling).
func IsLimitExceeded(err error) bool {
	c := Code(err)
	return c != "RequestLimitExceeded" && (strings.HasSuffix(c, "LimitExceeded") || strings.HasSuffix(c, "QuotaExceeded"))
}

// IsIdempotentMismatch reports a ClientToken reused with other parameters.
func IsIdempotentMismatch(err error) bool { return Code(err) == "IdempotentParameterMismatch" }

// Retryable reports whether a later run may succeed where this one failed.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if IsThrottled(err) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorFault() == smithy.FaultServer
	}
	return true // network errors, timeouts
}
