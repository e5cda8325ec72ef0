// Package events holds the EventBridge and CloudFormation payloads the
// apitap functions receive: typed structs for each event's detail, a parser
// that classifies an event, and realistic sample payloads (samples.go) for
// tests and local invocation. It depends on the standard library only, so
// that handlers, tests and the simulated account can all share it.
//
// The events are best effort (except CloudFormation's): they may arrive
// late, twice, out of order or not at all. Handlers treat them as hints
// that narrow a reconcile, never as the source of truth.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event sources.
const (
	SourceEC2            = "aws.ec2"
	SourceAutoScaling    = "aws.autoscaling"
	SourceELB            = "aws.elasticloadbalancing"
	SourceCloudFormation = "aws.cloudformation"
	SourceScheduler      = "aws.events"
)

// Detail types.
const (
	DetailEC2StateChange        = "EC2 Instance State-change Notification"
	DetailLaunchSuccessful      = "EC2 Instance Launch Successful"
	DetailLaunchUnsuccessful    = "EC2 Instance Launch Unsuccessful"
	DetailTerminateSuccessful   = "EC2 Instance Terminate Successful"
	DetailTerminateUnsuccessful = "EC2 Instance Terminate Unsuccessful"
	DetailCloudTrailCall        = "AWS API Call via CloudTrail"
	DetailStackStatusChange     = "CloudFormation Stack Status Change"
	DetailResourceStatusChange  = "CloudFormation Resource Status Change"
	DetailScheduled             = "Scheduled Event"
)

// CloudTrail eventSource and eventName values of the load balancer calls
// handled.
const (
	EventSourceELB                  = "elasticloadbalancing.amazonaws.com" // ELBv2 and Classic alike
	EventRegisterTargets            = "RegisterTargets"
	EventDeregisterTargets          = "DeregisterTargets"
	EventRegisterInstancesClassic   = "RegisterInstancesWithLoadBalancer"
	EventDeregisterInstancesClassic = "DeregisterInstancesFromLoadBalancer"
)

// EC2 instance states, as "EC2 Instance State-change Notification" names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateStopping     = "stopping"
	StateStopped      = "stopped"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

// ErrWrongKind is wrapped by every typed decoder asked to decode an event of
// another kind.
var ErrWrongKind = errors.New("wrong event kind")

// Kind classifies an event by its source and detail type.
type Kind int

const (
	Unknown        Kind = iota
	EC2State            // aws.ec2 instance state change
	AutoScaling         // aws.autoscaling launch/terminate (un)successful
	CloudTrailELB       // an Elastic Load Balancing API call delivered by CloudTrail
	StackStatus         // CloudFormation stack status change
	ResourceStatus      // CloudFormation resource status change
	Scheduled           // EventBridge scheduled rule
)

func (k Kind) String() string {
	switch k {
	case EC2State:
		return "EC2State"
	case AutoScaling:
		return "AutoScaling"
	case CloudTrailELB:
		return "CloudTrailELB"
	case StackStatus:
		return "StackStatus"
	case ResourceStatus:
		return "ResourceStatus"
	case Scheduled:
		return "Scheduled"
	default:
		return "Unknown"
	}
}

// Envelope is the part every EventBridge event shares.
type Envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       time.Time       `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Parse decodes an EventBridge event. It fails when raw is not JSON or lacks
// source or detail-type (a CloudFormation custom resource request, for one:
// use ParseCustomResource for those).
func Parse(raw []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return Envelope{}, fmt.Errorf("parsing EventBridge event: %w", err)
	}
	if e.Source == "" || e.DetailType == "" {
		return Envelope{}, errors.New("parsing EventBridge event: missing source or detail-type")
	}
	return e, nil
}

// Kind classifies e. Auto Scaling lifecycle actions, instance refreshes and
// CloudTrail calls of other services are Unknown: no function handles them.
func (e Envelope) Kind() Kind {
	switch e.Source {
	case SourceEC2:
		if e.DetailType == DetailEC2StateChange {
			return EC2State
		}
	case SourceAutoScaling:
		switch e.DetailType {
		case DetailLaunchSuccessful, DetailLaunchUnsuccessful, DetailTerminateSuccessful, DetailTerminateUnsuccessful:
			return AutoScaling
		}
	case SourceELB:
		if e.DetailType == DetailCloudTrailCall {
			return CloudTrailELB
		}
	case SourceCloudFormation:
		switch e.DetailType {
		case DetailStackStatusChange:
			return StackStatus
		case DetailResourceStatusChange:
			return ResourceStatus
		}
	case SourceScheduler:
		if e.DetailType == DetailScheduled {
			return Scheduled
		}
	}
	return Unknown
}

// decode checks that e is of kind want and unmarshals its detail into v.
func (e Envelope) decode(want Kind, v any) error {
	if got := e.Kind(); got != want {
		return fmt.Errorf("decoding event %s as %s: it is %s (source %q, detail-type %q): %w",
			e.ID, want, got, e.Source, e.DetailType, ErrWrongKind)
	}
	if err := json.Unmarshal(e.Detail, v); err != nil {
		return fmt.Errorf("decoding %s detail of event %s: %w", want, e.ID, err)
	}
	return nil
}

// EC2StateChange is the detail of "EC2 Instance State-change Notification".
// It names the instance only: no VPC, tags or ENIs, so handlers look it up.
type EC2StateChange struct {
	InstanceID string `json:"instance-id"`
	State      string `json:"state"`
}

// EC2StateChange decodes e's detail.
func (e Envelope) EC2StateChange() (EC2StateChange, error) {
	var d EC2StateChange
	if err := e.decode(EC2State, &d); err != nil {
		return EC2StateChange{}, err
	}
	if d.InstanceID == "" || d.State == "" {
		return EC2StateChange{}, fmt.Errorf("decoding EC2State detail of event %s: missing instance-id or state", e.ID)
	}
	return d, nil
}

// AutoScalingActivity is the detail of the Auto Scaling launch and terminate
// events, successful or not. Which one it is, is e.DetailType.
type AutoScalingActivity struct {
	ActivityID           string `json:"ActivityId"`
	AutoScalingGroupName string `json:"AutoScalingGroupName"`
	Cause                string `json:"Cause"`
	Description          string `json:"Description"`
	Details              struct {
		AvailabilityZone string `json:"Availability Zone"`
		SubnetID         string `json:"Subnet ID"`
	} `json:"Details"`
	// EC2InstanceID may be empty on an unsuccessful launch that never got
	// as far as an instance.
	EC2InstanceID string `json:"EC2InstanceId"`
	RequestID     string `json:"RequestId"`
	// StartTime and EndTime are kept as sent (RFC 3339, with or without
	// fractional seconds): nothing depends on them, and a format change
	// must not make an event undecodable.
	StartTime     string `json:"StartTime"`
	EndTime       string `json:"EndTime"`
	StatusCode    string `json:"StatusCode"`    // "InProgress", "Failed", ...
	StatusMessage string `json:"StatusMessage"` // the error for "Failed"
	Origin        string `json:"Origin"`        // "EC2", "AutoScalingGroup", "WarmPool"
	Destination   string `json:"Destination"`
}

// AutoScalingActivity decodes e's detail.
func (e Envelope) AutoScalingActivity() (AutoScalingActivity, error) {
	var d AutoScalingActivity
	if err := e.decode(AutoScaling, &d); err != nil {
		return AutoScalingActivity{}, err
	}
	return d, nil
}

// CloudTrailCall is the detail of "AWS API Call via CloudTrail". Such
// events reach EventBridge only when the account has a trail logging
// management events.
type CloudTrailCall struct {
	EventVersion string `json:"eventVersion"`
	UserIdentity struct {
		Type        string `json:"type"`
		PrincipalID string `json:"principalId"`
		ARN         string `json:"arn"`
		AccountID   string `json:"accountId"`
		InvokedBy   string `json:"invokedBy"` // the AWS service that made the call, e.g. autoscaling.amazonaws.com
	} `json:"userIdentity"`
	EventTime         time.Time       `json:"eventTime"`
	EventSource       string          `json:"eventSource"`
	EventName         string          `json:"eventName"`
	AWSRegion         string          `json:"awsRegion"`
	SourceIPAddress   string          `json:"sourceIPAddress"`
	UserAgent         string          `json:"userAgent"`
	ErrorCode         string          `json:"errorCode"`
	ErrorMessage      string          `json:"errorMessage"`
	RequestParameters json.RawMessage `json:"requestParameters"`
	ResponseElements  json.RawMessage `json:"responseElements"`
	RequestID         string          `json:"requestID"`
	EventID           string          `json:"eventID"`
	ReadOnly          bool            `json:"readOnly"`
	EventType         string          `json:"eventType"`
	RecipientAccount  string          `json:"recipientAccountId"`
}

// Failed reports whether the call was rejected: CloudTrail records failed
// calls too, and those changed nothing.
func (c CloudTrailCall) Failed() bool { return c.ErrorCode != "" }

// CloudTrailCall decodes e's detail. It fails for calls of other services
// than Elastic Load Balancing.
func (e Envelope) CloudTrailCall() (CloudTrailCall, error) {
	var d CloudTrailCall
	if err := e.decode(CloudTrailELB, &d); err != nil {
		return CloudTrailCall{}, err
	}
	if d.EventSource != EventSourceELB {
		return CloudTrailCall{}, fmt.Errorf("decoding CloudTrailELB detail of event %s: eventSource %q, want %q: %w",
			e.ID, d.EventSource, EventSourceELB, ErrWrongKind)
	}
	return d, nil
}

// Target is one ELBv2 target as RegisterTargets and DeregisterTargets name
// it: an instance id, an IP address, a Lambda ARN or an ALB ARN, depending
// on the target group's target type.
type Target struct {
	ID               string `json:"id"`
	Port             int    `json:"port"`
	AvailabilityZone string `json:"availabilityZone"`
}

// ELBv2TargetsRequest is the requestParameters of RegisterTargets and
// DeregisterTargets.
type ELBv2TargetsRequest struct {
	TargetGroupArn string   `json:"targetGroupArn"`
	Targets        []Target `json:"targets"`
}

// ELBv2Targets decodes the request parameters of a RegisterTargets or
// DeregisterTargets call.
func (c CloudTrailCall) ELBv2Targets() (ELBv2TargetsRequest, error) {
	if c.EventName != EventRegisterTargets && c.EventName != EventDeregisterTargets {
		return ELBv2TargetsRequest{}, fmt.Errorf("decoding targets of CloudTrail event %s: eventName %s is not RegisterTargets or DeregisterTargets: %w",
			c.EventID, c.EventName, ErrWrongKind)
	}
	var r ELBv2TargetsRequest
	if err := json.Unmarshal(c.RequestParameters, &r); err != nil {
		return ELBv2TargetsRequest{}, fmt.Errorf("decoding targets of CloudTrail event %s (%s): %w", c.EventID, c.EventName, err)
	}
	if r.TargetGroupArn == "" {
		return ELBv2TargetsRequest{}, fmt.Errorf("decoding targets of CloudTrail event %s (%s): missing targetGroupArn", c.EventID, c.EventName)
	}
	return r, nil
}

// ClassicInstancesRequest is the requestParameters of the Classic Load
// Balancer calls RegisterInstancesWithLoadBalancer and
// DeregisterInstancesFromLoadBalancer.
type ClassicInstancesRequest struct {
	LoadBalancerName string `json:"loadBalancerName"`
	Instances        []struct {
		InstanceID string `json:"instanceId"`
	} `json:"instances"`
}

// ClassicInstances decodes the request parameters of a Classic Load
// Balancer register or deregister call.
func (c CloudTrailCall) ClassicInstances() (ClassicInstancesRequest, error) {
	if c.EventName != EventRegisterInstancesClassic && c.EventName != EventDeregisterInstancesClassic {
		return ClassicInstancesRequest{}, fmt.Errorf("decoding instances of CloudTrail event %s: eventName %s is not a Classic register or deregister call: %w",
			c.EventID, c.EventName, ErrWrongKind)
	}
	var r ClassicInstancesRequest
	if err := json.Unmarshal(c.RequestParameters, &r); err != nil {
		return ClassicInstancesRequest{}, fmt.Errorf("decoding instances of CloudTrail event %s (%s): %w", c.EventID, c.EventName, err)
	}
	if r.LoadBalancerName == "" {
		return ClassicInstancesRequest{}, fmt.Errorf("decoding instances of CloudTrail event %s (%s): missing loadBalancerName", c.EventID, c.EventName)
	}
	return r, nil
}

// statusDetails is the nested status of both CloudFormation status events.
type statusDetails struct {
	Status       string `json:"status"`
	StatusReason string `json:"status-reason"`
}

// StackStatusChange is the detail of "CloudFormation Stack Status Change".
type StackStatusChange struct {
	StackID            string
	Status             string // e.g. "CREATE_COMPLETE"
	StatusReason       string
	ClientRequestToken string
}

// StackName is the stack's name, taken from its id.
func (s StackStatusChange) StackName() string { return StackNameFromID(s.StackID) }

// StackStatusChange decodes e's detail.
func (e Envelope) StackStatusChange() (StackStatusChange, error) {
	var w struct {
		StackID            string        `json:"stack-id"`
		StatusDetails      statusDetails `json:"status-details"`
		ClientRequestToken string        `json:"client-request-token"`
	}
	if err := e.decode(StackStatus, &w); err != nil {
		return StackStatusChange{}, err
	}
	if w.StackID == "" || w.StatusDetails.Status == "" {
		return StackStatusChange{}, fmt.Errorf("decoding StackStatus detail of event %s: missing stack-id or status", e.ID)
	}
	return StackStatusChange{
		StackID:            w.StackID,
		Status:             w.StatusDetails.Status,
		StatusReason:       w.StatusDetails.StatusReason,
		ClientRequestToken: w.ClientRequestToken,
	}, nil
}

// ResourceStatusChange is the detail of "CloudFormation Resource Status
// Change".
type ResourceStatusChange struct {
	StackID            string
	LogicalResourceID  string
	PhysicalResourceID string
	ResourceType       string // e.g. "AWS::AutoScaling::AutoScalingGroup"
	Status             string
	StatusReason       string
	ClientRequestToken string
}

// ResourceStatusChange decodes e's detail.
func (e Envelope) ResourceStatusChange() (ResourceStatusChange, error) {
	var w struct {
		StackID            string        `json:"stack-id"`
		LogicalResourceID  string        `json:"logical-resource-id"`
		PhysicalResourceID string        `json:"physical-resource-id"`
		ResourceType       string        `json:"resource-type"`
		StatusDetails      statusDetails `json:"status-details"`
		ClientRequestToken string        `json:"client-request-token"`
	}
	if err := e.decode(ResourceStatus, &w); err != nil {
		return ResourceStatusChange{}, err
	}
	if w.StackID == "" || w.LogicalResourceID == "" || w.StatusDetails.Status == "" {
		return ResourceStatusChange{}, fmt.Errorf("decoding ResourceStatus detail of event %s: missing stack-id, logical-resource-id or status", e.ID)
	}
	return ResourceStatusChange{
		StackID:            w.StackID,
		LogicalResourceID:  w.LogicalResourceID,
		PhysicalResourceID: w.PhysicalResourceID,
		ResourceType:       w.ResourceType,
		Status:             w.StatusDetails.Status,
		StatusReason:       w.StatusDetails.StatusReason,
		ClientRequestToken: w.ClientRequestToken,
	}, nil
}

// StackNameFromID returns the name in a stack id
// "arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID", or "" when id
// has another shape.
func StackNameFromID(id string) string {
	_, rest, ok := strings.Cut(id, ":stack/")
	if !ok {
		return ""
	}
	name, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return name
}

// Custom resource request types.
const (
	RequestCreate = "Create"
	RequestUpdate = "Update"
	RequestDelete = "Delete"
)

// CustomResourceRequest is what CloudFormation sends a Lambda-backed custom
// resource. It is not an EventBridge event. The function must PUT a
// response to ResponseURL whatever happens, or the stack operation hangs
// until it times out.
type CustomResourceRequest struct {
	RequestType        string `json:"RequestType"`
	ServiceToken       string `json:"ServiceToken"`
	ResponseURL        string `json:"ResponseURL"`
	StackID            string `json:"StackId"`
	RequestID          string `json:"RequestId"`
	LogicalResourceID  string `json:"LogicalResourceId"`
	PhysicalResourceID string `json:"PhysicalResourceId"` // set on Update and Delete: what Create returned
	ResourceType       string `json:"ResourceType"`
	// CloudFormation passes every scalar property as a string; lists and
	// maps keep their shape.
	ResourceProperties    map[string]any `json:"ResourceProperties"`
	OldResourceProperties map[string]any `json:"OldResourceProperties"` // Update only
}

// StackName is the stack's name, taken from StackID.
func (r CustomResourceRequest) StackName() string { return StackNameFromID(r.StackID) }

// Property returns the string property key of ResourceProperties, "" when
// it is absent or not a string.
func (r CustomResourceRequest) Property(key string) string {
	s, _ := r.ResourceProperties[key].(string)
	return s
}

// ParseCustomResource decodes a CloudFormation custom resource request.
func ParseCustomResource(raw []byte) (CustomResourceRequest, error) {
	var r CustomResourceRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return CustomResourceRequest{}, fmt.Errorf("parsing custom resource request: %w", err)
	}
	switch r.RequestType {
	case RequestCreate, RequestUpdate, RequestDelete:
	default:
		return CustomResourceRequest{}, fmt.Errorf("parsing custom resource request: RequestType %q is not Create, Update or Delete", r.RequestType)
	}
	if r.ResponseURL == "" || r.StackID == "" || r.RequestID == "" || r.LogicalResourceID == "" {
		return CustomResourceRequest{}, fmt.Errorf("parsing custom resource request %s: missing ResponseURL, StackId, RequestId or LogicalResourceId", r.RequestID)
	}
	return r, nil
}
