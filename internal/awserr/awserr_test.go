package awserr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"
)

func api(code, msg string) error {
	return fmt.Errorf("operation error EC2: CreateTrafficMirrorSession: %w", &smithy.GenericAPIError{Code: code, Message: msg})
}

func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		err                                          error
		throttled, notFound, unsupported, limit, idm bool
	}{
		{err: api("RequestLimitExceeded", "Request limit exceeded."), throttled: true},
		{err: api("Throttling", "Rate exceeded"), throttled: true},
		{err: api("InvalidTrafficMirrorSessionId.NotFound", "The traffic mirror session 'tms-1' does not exist."), notFound: true},
		{err: api("InvalidParameterValue", "The instance type t2.micro is not supported as a traffic mirror source."), unsupported: true},
		{err: api("InvalidParameterValue", "Session number 0 is out of range."), unsupported: false},
		{err: api("UnsupportedOperation", "Traffic mirroring is not supported for this instance type."), unsupported: true},
		{err: api("TrafficMirrorSessionLimitExceeded", "The maximum number of sessions has been reached."), limit: true},
		{err: api("IdempotentParameterMismatch", "token reused"), idm: true},
		{err: errors.New("dial tcp: connection refused")},
	} {
		if got := IsThrottled(tc.err); got != tc.throttled {
			t.Errorf("IsThrottled(%v) = %v", tc.err, got)
		}
		if got := IsNotFound(tc.err); got != tc.notFound {
			t.Errorf("IsNotFound(%v) = %v", tc.err, got)
		}
		if got := IsUnsupportedSource(tc.err); got != tc.unsupported {
			t.Errorf("IsUnsupportedSource(%v) = %v", tc.err, got)
		}
		if got := IsLimitExceeded(tc.err); got != tc.limit {
			t.Errorf("IsLimitExceeded(%v) = %v", tc.err, got)
		}
		if got := IsIdempotentMismatch(tc.err); got != tc.idm {
			t.Errorf("IsIdempotentMismatch(%v) = %v", tc.err, got)
		}
	}
	if !Retryable(errors.New("timeout")) || Retryable(api("IdempotentParameterMismatch", "")) || !Retryable(api("RequestLimitExceeded", "")) {
		t.Error("Retryable")
	}
}
