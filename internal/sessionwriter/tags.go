package sessionwriter

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/mirror"
)

// The tag scheme (docs/contracts.md §3). Every session apitap
// creates carries, from the create call on:
//
//	apitap:stack     the owning stack's name: with the stack's mirror
//	                 target, what makes a session ours (mirror.Config.Owns)
//	apitap:lb        the load balancer ARN it mirrors for
//	apitap:vni       the VNI, decimal
//	apitap:instance  the source instance, when the ENI belongs to one: a
//	                 stop or terminate event finds its sessions by it
//	apitap:created   when it was created (RFC 3339): a session created
//	                 moments ago is not deleted because a Describe has not
//	                 caught up with the target it was created for
//
// Tags are read back from DescribeTrafficMirrorSessions and checked in code
// before any delete; the stack's IAM policy also lets the functions delete
// only sessions tagged with the stack.

// sessionTags are the tags of a new session for src, created at created.
func sessionTags(stack string, src mirror.Source, created string) []ec2types.Tag {
	tags := []ec2types.Tag{
		{Key: aws.String(contract.TagStack), Value: aws.String(stack)},
		{Key: aws.String(contract.TagLB), Value: aws.String(src.LB)},
		{Key: aws.String(contract.TagVNI), Value: aws.String(strconv.FormatUint(uint64(src.VNI), 10))},
		{Key: aws.String(contract.TagCreated), Value: aws.String(created)},
	}
	if src.InstanceID != "" {
		tags = append(tags, ec2types.Tag{Key: aws.String(contract.TagInstance), Value: aws.String(src.InstanceID)})
	}
	return tags
}

// description is the session's description, for people reading the
// console: which stack and load balancer.
func description(stack, lb string) string {
	return fmt.Sprintf("apitap %s: %s", stack, lb)
}

// mirrorsFor reports whether s is a session of ours that mirrors src as a
// create for it would: same ENI, filter, VNI and load balancer. The
// session number may differ (the planner keeps any number).
func mirrorsFor(cfg mirror.Config, s mirror.Session, src mirror.Source) bool {
	return cfg.Owns(s) && s.ENI == src.ENI && s.FilterID == cfg.FilterID &&
		s.VNI == src.VNI && s.Tags[contract.TagLB] == src.LB
}
