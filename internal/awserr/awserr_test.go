package awserr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func api(code, msg string) error {
	return fmt.Errorf("operation error EC2: CreateTrafficMirrorSession: %w", &smithy.GenericAPIError{Code: code, Message: msg})
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err      error
		kind     Kind
		quota    string
		fallback bool
	}{
		// Documented codes.
		{err: api("NetworkInterfaceNotSupported", "The network interface is not supported for Traffic Mirroring."), kind: UnsupportedSource},
		{err: api("InvalidTrafficMirrorSessionNotFound", "The specified Traffic Mirror session does not exist."), kind: NotFound},
		{err: api("InvalidTrafficMirrorSessionId.NotFound", "The traffic mirror session 'tms-1' does not exist."), kind: NotFound},
		{err: api("InvalidInstanceID.NotFound", "The instance IDs 'i-1' do not exist"), kind: NotFound},
		{err: api("TargetGroupNotFound", "One or more target groups not found"), kind: NotFound},
		{err: api("TrafficMirrorSessionsPerInterfaceLimitExceeded", "x"), kind: Quota, quota: "3 sessions per source network interface"},
		{err: api("TrafficMirrorSessionLimitExceeded", "x"), kind: Quota, quota: "10,000 sessions per account and Region"},
		{err: api("TrafficMirrorSourcesPerTargetLimitExceeded", "x"), kind: Quota, quota: "sources per mirror target"},
		{err: api("TrafficMirrorFilterRuleLimitExceeded", "x"), kind: Quota, quota: "10 rules per mirror filter"},
		{err: api("RequestLimitExceeded", "Request limit exceeded."), kind: Throttled},
		{err: api("Throttling", "Rate exceeded"), kind: Throttled},
		{err: api("InternalError", "An internal error has occurred."), kind: ServerError},
		{err: api("Unavailable", "The server is overloaded"), kind: ServerError},
		{err: &smithy.GenericAPIError{Code: "Whatever", Fault: smithy.FaultServer}, kind: ServerError},
		{err: api("IdempotentParameterMismatch", "token reused"), kind: IdempotentMismatch},
		{err: api("InvalidFilter", "The filter 'tag:apitap:stack' is invalid"), kind: BadFilter},
		{err: api("FilterLimitExceeded", "The maximum number of filter values specified on a single call is 200"), kind: BadFilter},
		{err: api("UnauthorizedOperation", "You are not authorized"), kind: AccessDenied},
		// Fallbacks: undocumented answers, recognised and flagged.
		{err: api("InvalidParameterValue", "The instance type t2.micro is not supported as a traffic mirror source."), kind: UnsupportedSource, fallback: true},
		{err: api("UnsupportedOperation", "Traffic mirroring is not supported for this instance type."), kind: UnsupportedSource, fallback: true},
		{err: api("InvalidParameterValue", "The filter 'tag:apitap:stack' is invalid"), kind: BadFilter, fallback: true},
		{err: api("TrafficMirrorSomethingNewLimitExceeded", "x"), kind: Quota, quota: "TrafficMirrorSomethingNewLimitExceeded", fallback: true},
		// Not ours to act on.
		{err: api("InvalidParameterValue", "Session number 0 is out of range."), kind: Other},
		{err: errors.New("dial tcp: connection refused"), kind: Other},
		{err: nil, kind: Other},
	} {
		c := Classify(tc.err)
		if c.Kind != tc.kind || c.Quota != tc.quota || c.Fallback != tc.fallback {
			t.Errorf("Classify(%v) = %+v (%s), want kind %s quota %q fallback %v", tc.err, c, c.Kind, tc.kind, tc.quota, tc.fallback)
		}
	}
}

func TestServerErrorWithoutCode(t *testing.T) {
	err := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 502}}, Err: errors.New("bad gateway")}
	if k := Classify(err).Kind; k != ServerError || !Retryable(err) {
		t.Errorf("a 502 without a code: %s, retryable %v", k, Retryable(err))
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("timeout"), true},
		{context.DeadlineExceeded, true},
		{api("RequestLimitExceeded", ""), true},
		{api("InternalError", ""), true},
		{api("IdempotentParameterMismatch", ""), false},
		{api("NetworkInterfaceNotSupported", ""), false},
		{api("TrafficMirrorSessionLimitExceeded", ""), false},
		{api("InvalidParameterValue", "bad"), false},
		{nil, false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
