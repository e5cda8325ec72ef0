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
	SourceECS            = "aws.ecs"
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
	DetailECSTaskStateChange    = "ECS Task State Change"
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

// ECS task statuses, as "ECS Task State Change" names them (lastStatus,
// desiredStatus). The functions act on RUNNING and STOPPED only.
const (
	TaskProvisioning = "PROVISIONING"
	TaskPending      = "PENDING"
	TaskActivating   = "ACTIVATING"
	TaskRunning      = "RUNNING"
	TaskDeactivating = "DEACTIVATING"
	TaskStopping     = "STOPPING"
	TaskDeprovision  = "DEPROVISIONING"
	TaskStopped      = "STOPPED"
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
	ECSTask             // aws.ecs task state change
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
	case ECSTask:
		return "ECSTask"
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
	case SourceECS:
		if e.DetailType == DetailECSTaskStateChange {
			return ECSTask
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

// ECSTaskStateChange is the detail of "ECS Task State Change" (source
// aws.ecs), reduced to what the functions read; other fields are ignored.
// ECS publishes it without a CloudTrail trail, unlike the load balancer
// calls (docs/aws.md, "EventBridge events"). A task in awsvpc mode (every
// Fargate task) has an attachment of type "eni" naming its network
// interface and addresses.
type ECSTaskStateChange struct {
	ClusterARN        string `json:"clusterArn"`
	TaskARN           string `json:"taskArn"`
	TaskDefinitionARN string `json:"taskDefinitionArn"`
	// Group is "service:NAME" for a task an ECS service started (and
	// registers with its load balancers), "family:NAME" for a standalone
	// task (RunTask).
	Group         string `json:"group"`
	StartedBy     string `json:"startedBy"`
	LaunchType    string `json:"launchType"` // FARGATE, EC2, EXTERNAL
	LastStatus    string `json:"lastStatus"`
	DesiredStatus string `json:"desiredStatus"`
	StopCode      string `json:"stopCode"`      // STOPPED only
	StoppedReason string `json:"stoppedReason"` // STOPPED only
	// Version orders the events of one task: a duplicate has the same
	// version. Nothing depends on it (handlers look at AWS's current
	// state), but logs show it.
	Version          int64           `json:"version"`
	AvailabilityZone string          `json:"availabilityZone"`
	Attachments      []ECSAttachment `json:"attachments"`
	Containers       []ECSContainer  `json:"containers"`
	// Times are kept as sent: nothing depends on them.
	CreatedAt string `json:"createdAt"`
	StartedAt string `json:"startedAt"`
	StoppedAt string `json:"stoppedAt"`
}

// ECSAttachment is one of a task's attachments; type "eni" for its network
// interface, whose details are name/value pairs.
type ECSAttachment struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Status  string         `json:"status"` // PRECREATED, CREATED, ATTACHING, ATTACHED, DETACHING, DETACHED, DELETED, FAILED
	Details []ECSNameValue `json:"details"`
}

// ECSNameValue is one attachment detail.
type ECSNameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Detail returns the value of the named detail, "" when there is none.
func (a ECSAttachment) Detail(name string) string {
	for _, d := range a.Details {
		if d.Name == name {
			return d.Value
		}
	}
	return ""
}

// ECSContainer is one of a task's containers.
type ECSContainer struct {
	Name              string `json:"name"`
	LastStatus        string `json:"lastStatus"`
	ExitCode          *int   `json:"exitCode"`
	NetworkInterfaces []struct {
		AttachmentID string `json:"attachmentId"`
		PrivateIPv4  string `json:"privateIpv4Address"`
		IPv6         string `json:"ipv6Address"`
	} `json:"networkInterfaces"`
}

// ECSTaskENI is a task's network interface, from its "eni" attachment.
type ECSTaskENI struct {
	ID               string // networkInterfaceId; "" before ECS created it
	AttachmentStatus string
	SubnetID         string
	MAC              string
	PrivateIPv4      string
	PrivateIPv6      string // only for a dual-stack task
}

// ECS attachment type and detail names of a task's network interface.
const (
	ECSAttachmentENI = "eni"
	ecsDetailENI     = "networkInterfaceId"
	ecsDetailSubnet  = "subnetId"
	ecsDetailMAC     = "macAddress"
	ecsDetailIPv4    = "privateIPv4Address"
	ecsDetailIPv6    = "privateIPv6Address"
	ecsServiceGroup  = "service:"
)

// ENIs returns the task's network interfaces, in the order of its
// attachments. Attachments with neither an interface id nor an address
// (a task still provisioning) are left out.
func (t ECSTaskStateChange) ENIs() []ECSTaskENI {
	var out []ECSTaskENI
	for _, a := range t.Attachments {
		if a.Type != ECSAttachmentENI {
			continue
		}
		e := ECSTaskENI{
			ID: a.Detail(ecsDetailENI), AttachmentStatus: a.Status, SubnetID: a.Detail(ecsDetailSubnet),
			MAC: a.Detail(ecsDetailMAC), PrivateIPv4: a.Detail(ecsDetailIPv4), PrivateIPv6: a.Detail(ecsDetailIPv6),
		}
		if e.ID == "" && e.PrivateIPv4 == "" && e.PrivateIPv6 == "" {
			continue
		}
		out = append(out, e)
	}
	return out
}

// ENIIDs returns the ids of the task's network interfaces.
func (t ECSTaskStateChange) ENIIDs() []string {
	var out []string
	for _, e := range t.ENIs() {
		if e.ID != "" {
			out = append(out, e.ID)
		}
	}
	return out
}

// IPs returns the private addresses of the task's network interfaces,
// IPv4 first, then IPv6: what an ip target group may have registered.
func (t ECSTaskStateChange) IPs() []string {
	var v4, v6 []string
	for _, e := range t.ENIs() {
		if e.PrivateIPv4 != "" {
			v4 = append(v4, e.PrivateIPv4)
		}
		if e.PrivateIPv6 != "" {
			v6 = append(v6, e.PrivateIPv6)
		}
	}
	return append(v4, v6...)
}

// Service is the name of the ECS service that started the task, "" for a
// standalone task. A service registers its tasks' addresses with its
// load balancers' target groups itself.
func (t ECSTaskStateChange) Service() string {
	name, ok := strings.CutPrefix(t.Group, ecsServiceGroup)
	if !ok {
		return ""
	}
	return name
}

// ECSTaskStateChange decodes e's detail. It fails when the detail is not
// a task (no taskArn or lastStatus) or not shaped as ECS sends it.
func (e Envelope) ECSTaskStateChange() (ECSTaskStateChange, error) {
	var d ECSTaskStateChange
	if err := e.decode(ECSTask, &d); err != nil {
		return ECSTaskStateChange{}, err
	}
	if d.TaskARN == "" || d.LastStatus == "" {
		return ECSTaskStateChange{}, fmt.Errorf("decoding ECSTask detail of event %s: missing taskArn or lastStatus", e.ID)
	}
	return d, nil
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
