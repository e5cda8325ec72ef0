package diagnose

import (
	"fmt"
	"reflect"
	"testing"
)

// Messages as AWS writes them (docs/aws.md, "Diagnosis"), bare and wrapped
// the ways they reach apitap: a CloudFormation resource handler's message,
// an Auto Scaling activity, an older resource's "API: service:Action"
// prefix, the SDKs' error strings.
func TestClassify(t *testing.T) {
	const (
		capacityMsg = "We currently do not have sufficient c7g.large capacity in the Availability Zone you requested (us-east-1a). " +
			"Our system will be working on provisioning additional capacity. You can currently get c7g.large capacity by not " +
			"specifying an Availability Zone in your request or choosing us-east-1b, us-east-1c, us-east-1d, us-east-1f."
		notInZone = "Your requested instance type (c7g.large) is not supported in your requested Availability Zone (us-east-1e). " +
			"Please retry your request by not specifying an Availability Zone or choosing us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1f."
		handler = `Resource handler returned message: "%s" (RequestToken: 0c4e8a2f-3b1d-9e5a-7c6b-2f8d1e4a9b3c, HandlerErrorCode: %s)`
		cfnRole = "arn:aws:sts::123456789012:assumed-role/cdk-hnb659fds-cfn-exec-role-123456789012-us-east-1/AWSCloudFormation"
	)
	zones := []string{"us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"}
	for _, tc := range []struct {
		name, code, msg string
		want            Classification
	}{
		// Capacity.
		{name: "capacity, activity", code: "Failed", msg: capacityMsg + " Launching EC2 instance failed.",
			want: Classification{Class: InsufficientCapacity, Code: "InsufficientInstanceCapacity", InstanceType: "c7g.large", Zone: "us-east-1a", OtherZones: zones}},
		{name: "capacity, stack event", msg: sprintf(handler, "Group did not stabilize. {current/minSize/maxSize} group size = {0/2/6}. Failed Scaling Activity: "+capacityMsg+" Launching EC2 instance failed.", "NotStabilized"),
			want: Classification{Class: InsufficientCapacity, Code: "InsufficientInstanceCapacity", InstanceType: "c7g.large", Zone: "us-east-1a", OtherZones: zones}},
		{name: "capacity, EC2 state reason", msg: "Server.InsufficientInstanceCapacity: " + capacityMsg,
			want: Classification{Class: InsufficientCapacity, Code: "Server.InsufficientInstanceCapacity", InstanceType: "c7g.large", Zone: "us-east-1a", OtherZones: zones}},
		{name: "capacity, SDK v2 error", msg: "operation error EC2: RunInstances, https response error StatusCode: 500, RequestID: 1, api error InsufficientInstanceCapacity: " + capacityMsg,
			want: Classification{Class: InsufficientCapacity, Code: "InsufficientInstanceCapacity", InstanceType: "c7g.large", Zone: "us-east-1a", OtherZones: zones}},
		{name: "capacity, code only", code: "InsufficientInstanceCapacity", msg: "Insufficient capacity.",
			want: Classification{Class: InsufficientCapacity, Code: "InsufficientInstanceCapacity"}},

		// Type not offered.
		{name: "type not in zone, activity", code: "Failed", msg: notInZone + " Launching EC2 instance failed.",
			want: Classification{Class: TypeNotOffered, Code: "Unsupported", InstanceType: "c7g.large", Zone: "us-east-1e",
				OtherZones: []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"}}},
		{name: "type not in zone, SDK v1 in a stack event", msg: notInZone + " (Service: AmazonEC2; Status Code: 400; Error Code: Unsupported; Request ID: 7d1f3a2b-9c4e-4b8a-a6f0-2e5d7c9b1a38; Proxy: null)",
			want: Classification{Class: TypeNotOffered, Code: "Unsupported", InstanceType: "c7g.large", Zone: "us-east-1e",
				OtherZones: []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"}}},
		{name: "configuration not supported", code: "Failed", msg: "The requested configuration is currently not supported. Please check the documentation for supported configurations. Launching EC2 instance failed.",
			want: Classification{Class: TypeNotOffered, Code: "Unsupported"}},

		// Encrypted volume, key not usable by the service-linked role.
		{name: "client error on launch, activity", code: "Failed", msg: "Client.InternalError: Client error on launch",
			want: Classification{Class: KMSLaunch, Code: "Client.InternalError"}},
		{name: "client error on launch, stack event", msg: sprintf(handler, "Group did not stabilize. {current/minSize/maxSize} group size = {0/2/6}. Failed Scaling Activity: Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: Client.InternalError: Client error on launch", "NotStabilized"),
			want: Classification{Class: KMSLaunch, Code: "Client.InternalError"}},
		{name: "another internal error is not the key", msg: "Server.InternalError: Internal error on launch",
			want: Classification{Class: Unknown, Code: "Server.InternalError"}},

		// Traffic Mirroring quotas.
		{name: "mirror target quota, code", code: "TrafficMirrorTargetLimitExceeded", msg: "The maximum number of traffic mirror targets has been reached.",
			want: Classification{Class: MirrorQuota, Code: "TrafficMirrorTargetLimitExceeded", Quota: "targets per account and Region (10,000)"}},
		{name: "mirror rule quota, SDK v1 in a stack event", msg: sprintf(handler, "The maximum number of rules per traffic mirror filter has been reached. (Service: AmazonEC2; Status Code: 400; Error Code: TrafficMirrorFilterRuleLimitExceeded; Request ID: 4f2a; Proxy: null)", "ServiceLimitExceeded"),
			want: Classification{Class: MirrorQuota, Code: "TrafficMirrorFilterRuleLimitExceeded", Quota: "rules per filter (10)"}},
		{name: "mirror quota in words", msg: sprintf(handler, "Traffic mirror filter limit exceeded. (Service: Ec2, Status Code: 400, Request ID: 5b1e)", "ServiceLimitExceeded"),
			want: Classification{Class: MirrorQuota, Code: "ServiceLimitExceeded", Quota: "filters per account and Region (10,000)"}},
		{name: "sessions per interface", code: "TrafficMirrorSessionsPerInterfaceLimitExceeded", msg: "",
			want: Classification{Class: MirrorQuota, Code: "TrafficMirrorSessionsPerInterfaceLimitExceeded", Quota: "sessions per source network interface (3)"}},

		// Access denied.
		{name: "not authorized, identity policy", msg: sprintf(handler, "User: "+cfnRole+" is not authorized to perform: ec2:CreateTrafficMirrorTarget on resource: arn:aws:ec2:us-east-1:123456789012:traffic-mirror-target/* because no identity-based policy allows the ec2:CreateTrafficMirrorTarget action (Service: Ec2, Status Code: 403, Request ID: 8e2c)", "AccessDenied"),
			want: Classification{Class: AccessDenied, Code: "AccessDenied", Action: "ec2:CreateTrafficMirrorTarget", Principal: cfnRole,
				Resource: "arn:aws:ec2:us-east-1:123456789012:traffic-mirror-target/*"}},
		{name: "not authorized, explicit deny by SCP, no resource", code: "AccessDeniedException",
			msg:  "User: arn:aws:iam::123456789012:user/deployer is not authorized to perform: iam:CreateServiceLinkedRole with an explicit deny in a service control policy",
			want: Classification{Class: AccessDenied, Code: "AccessDeniedException", Action: "iam:CreateServiceLinkedRole", Principal: "arn:aws:iam::123456789012:user/deployer", DeniedBy: "service control policy"}},
		{name: "EC2 UnauthorizedOperation with the encoded message", code: "UnauthorizedOperation",
			msg:  "You are not authorized to perform this operation. User: " + cfnRole + " is not authorized to perform: ec2:CreateTrafficMirrorFilterRule on resource: arn:aws:ec2:us-east-1:123456789012:traffic-mirror-filter-rule/* because no identity-based policy allows the ec2:CreateTrafficMirrorFilterRule action. Encoded authorization failure message: Q1x2",
			want: Classification{Class: AccessDenied, Code: "UnauthorizedOperation", Action: "ec2:CreateTrafficMirrorFilterRule", Principal: cfnRole, Resource: "arn:aws:ec2:us-east-1:123456789012:traffic-mirror-filter-rule/*"}},
		{name: "older resource, API prefix", msg: "API: ec2:CreateTrafficMirrorTarget You are not authorized to perform this operation.",
			want: Classification{Class: AccessDenied, Code: "AccessDenied", Action: "ec2:CreateTrafficMirrorTarget"}},
		{name: "activity", code: "Failed", msg: "Client.UnauthorizedOperation: You are not authorized to perform this operation.",
			want: Classification{Class: AccessDenied, Code: "Client.UnauthorizedOperation"}},

		// The service-linked role.
		{name: "invalid principals on the key", msg: sprintf(handler, "Policy contains a statement with one or more invalid principals. (Service: Kms, Status Code: 400, Request ID: 1c7e)", "InvalidRequest"),
			want: Classification{Class: ServiceLinkedRoleMissing, Code: "InvalidRequest"}},
		{name: "invalid principals, SDK v2", msg: "api error MalformedPolicyDocumentException: Policy contains a statement with one or more invalid principals.",
			want: Classification{Class: ServiceLinkedRoleMissing, Code: "MalformedPolicyDocumentException"}},
		{name: "Auto Scaling's own", code: "ValidationError", msg: "ARN specified for Service-Linked Role does not exist.",
			want: Classification{Class: ServiceLinkedRoleMissing, Code: "ValidationError"}},

		// Other limits.
		{name: "vCPU limit, activity", code: "Failed", msg: "You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit. Launching EC2 instance failed.",
			want: Classification{Class: ResourceLimit, Quota: "VcpuLimitExceeded"}},
		{name: "vCPU limit code", code: "VcpuLimitExceeded", msg: "You have requested more vCPU capacity than your current vCPU limit of 32 allows.",
			want: Classification{Class: ResourceLimit, Code: "VcpuLimitExceeded", Quota: "VcpuLimitExceeded"}},
		{name: "addresses", msg: "The maximum number of addresses has been reached. (Service: AmazonEC2; Status Code: 400; Error Code: AddressLimitExceeded; Request ID: 9a)",
			want: Classification{Class: ResourceLimit, Code: "AddressLimitExceeded", Quota: "AddressLimitExceeded"}},
		{name: "Lambda reserved concurrency", msg: sprintf(handler, "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]. (Service: Lambda, Status Code: 400, Request ID: 2b)", "InvalidRequest"),
			want: Classification{Class: ResourceLimit, Code: "InvalidRequest", Quota: "Lambda unreserved concurrency (at least 100 kept)"}},
		{name: "throttling is no limit", code: "RequestLimitExceeded", msg: "Request limit exceeded.",
			want: Classification{Class: Unknown, Code: "RequestLimitExceeded"}},

		{name: "unknown", msg: "Resource timed out waiting for completion", want: Classification{Class: Unknown}},
		{name: "empty", want: Classification{Class: Unknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.code, tc.msg); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Classify(%q, %q)\n got %+v\nwant %+v", tc.code, tc.msg, got, tc.want)
			}
		})
	}
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
