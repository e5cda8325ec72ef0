package inventory

// AWS's numeric limits on the calls the reader makes, in one place
// (docs/aws.md cites each one's page). Where AWS documents no maximum the
// constant is apitap's own batch size, and says so.
const (
	// MaxFilterValues is the most filter values one EC2 Describe call may
	// carry, all filters together: beyond, EC2 answers FilterLimitExceeded
	// ("The maximum number of filter values specified on a single call is
	// 200").
	MaxFilterValues = 200
	// MaxResults is the largest page of an EC2 Describe call (MaxResults
	// 5–1000 on DescribeInstances, DescribeNetworkInterfaces and
	// DescribeTrafficMirrorSessions).
	MaxResults = 1000
	// MaxInstanceIDs is how many instance ids one DescribeInstances call
	// names. AWS documents no maximum; 1,000 is apitap's batch, the size
	// of a page.
	MaxInstanceIDs = 1000
	// MaxTagResources is the most load balancers one DescribeTags call
	// names: ResourceArns (ELBv2) and LoadBalancerNames (Classic), 20 each.
	MaxTagResources = 20
	// MaxTargetGroupARNs is how many target group ARNs one
	// DescribeTargetGroups call names (apitap's batch, as for tags).
	MaxTargetGroupARNs = 20
	// MaxELBPageSize is the largest page of the Elastic Load Balancing
	// Describe calls (PageSize 1–400).
	MaxELBPageSize = 400
)
