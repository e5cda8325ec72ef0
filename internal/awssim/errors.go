package awssim

import "fmt"

// Error codes the account returns. Those marked "AWS" are documented in the
// EC2 API error-code reference or modelled in the SDK; those marked
// "assumed" are our choice where AWS does not document the code, so callers
// should classify them loosely (see the notes).
const (
	// CodeSessionsPerENILimit: a fourth session on one source ENI. AWS.
	CodeSessionsPerENILimit = "TrafficMirrorSessionsPerInterfaceLimitExceeded"
	// CodeSessionLimit: the account's 10,000 sessions. AWS.
	CodeSessionLimit = "TrafficMirrorSessionLimitExceeded"
	// CodeIdempotentMismatch: a ClientToken reused with other parameters. AWS.
	CodeIdempotentMismatch = "IdempotentParameterMismatch"
	// CodeSessionNotFound: no such (live, visible) session. AWS answers
	// with this spelling; the error-code reference lists it as
	// InvalidTrafficMirrorSessionNotFound.
	CodeSessionNotFound = "InvalidTrafficMirrorSessionId.NotFound"
	// CodeTargetNotFound and CodeFilterNotFound: unknown mirror target or
	// filter. AWS.
	CodeTargetNotFound = "InvalidTrafficMirrorTargetId.NotFound"
	CodeFilterNotFound = "InvalidTrafficMirrorFilterId.NotFound"
	// CodeENINotFound, CodeInstanceNotFound: unknown ENI or instance. AWS.
	CodeENINotFound      = "InvalidNetworkInterfaceID.NotFound"
	CodeInstanceNotFound = "InvalidInstanceID.NotFound"
	// CodeVpcNotFound, CodeSubnetNotFound: unknown VPC or subnet. AWS.
	CodeVpcNotFound    = "InvalidVpcID.NotFound"
	CodeSubnetNotFound = "InvalidSubnetID.NotFound"
	// CodeNetworkInterfaceNotSupported: a source ENI Traffic Mirroring
	// cannot use (its instance type, or an ENI that is not of type
	// "interface"): "The network interface is not supported for Traffic
	// Mirroring." AWS (EC2 API error codes, client errors for specific
	// actions).
	CodeNetworkInterfaceNotSupported = "NetworkInterfaceNotSupported"
	// CodeInvalidParameterValue is AWS's generic validation error. The
	// account also uses it (assumed) for a session number out of 1–32766
	// and for a session number already used on the ENI (unless
	// Options.AllowDuplicateNumbers): AWS documents no code for these.
	CodeInvalidParameterValue = "InvalidParameterValue"
	// CodeInvalidFilter: "The specified filter is not valid." AWS.
	CodeInvalidFilter = "InvalidFilter"
	// CodeInvalidParameterCombination: MaxResults together with ids. AWS.
	CodeInvalidParameterCombination = "InvalidParameterCombination"
	// CodeInvalidPaginationToken: a NextToken this account did not issue. AWS.
	CodeInvalidPaginationToken = "InvalidPaginationToken"
	// CodeInvalidID: CreateTags on an id of an unknown kind. AWS.
	CodeInvalidID = "InvalidID"
	// CodeIncorrectInstanceState: a state change a terminated instance
	// cannot make. AWS.
	CodeIncorrectInstanceState = "IncorrectInstanceState"
	// CodeRequestLimitExceeded is EC2 throttling (HTTP 503). AWS.
	CodeRequestLimitExceeded = "RequestLimitExceeded"
	// CodeThrottling is ELB and CloudFormation throttling (HTTP 400). AWS.
	CodeThrottling = "Throttling"
	// CodeDryRun answers a DryRun request that would have succeeded. AWS.
	CodeDryRun = "DryRunOperation"

	// ELBv2 and Classic ELB (modelled in the SDK).
	CodeLoadBalancerNotFound = "LoadBalancerNotFound"
	CodeTargetGroupNotFound  = "TargetGroupNotFound"
	CodeInvalidTarget        = "InvalidTarget"
	// CodeValidationError is ELB's and CloudFormation's generic
	// validation error, also "Stack with id X does not exist". AWS.
	CodeValidationError = "ValidationError"
)

// apiError is an error answered over HTTP.
type apiError struct {
	status  int
	code    string
	message string
	// fields are further members of the error shape, for the JSON
	// protocols (e.g. DynamoDB's ConditionalCheckFailedException.Item).
	fields map[string]any
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// badRequest is the common case: a client error, HTTP 400.
func badRequest(code, format string, args ...any) *apiError {
	return errf(400, code, format, args...)
}
