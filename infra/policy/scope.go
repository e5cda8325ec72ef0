package policy

import (
	"fmt"
	"sort"
)

// scope returns the ARNs a resource's own actions are granted on: its
// name where it has one (the stack names every resource it can), the
// stack's IAM path for roles and instance profiles, and the account's and
// region's resources of that type where AWS assigns the id.
func (g *generator) scope(id string, r resource) ([]string, error) {
	need := func(prop string) (string, error) {
		v, ok := r.Properties[prop].(string)
		if !ok || v == "" {
			return "", fmt.Errorf("policy: %s (%s) has no literal %s: name it in the stack so the policy can be scoped to it", id, r.Type, prop)
		}
		return v, nil
	}
	switch r.Type {
	case "AWS::IAM::Role":
		path, err := need("Path")
		if err != nil {
			return nil, err
		}
		return []string{g.iamARN("role" + path + "*")}, nil
	case "AWS::IAM::Policy":
		return g.rolePatterns(), nil
	case "AWS::IAM::InstanceProfile":
		path, err := need("Path")
		if err != nil {
			return nil, err
		}
		return append([]string{g.iamARN("instance-profile" + path + "*")}, g.rolePatterns()...), nil
	case "AWS::KMS::Key":
		return []string{g.arn("kms", "key/*")}, nil
	case "AWS::Lambda::Function":
		name, err := need("FunctionName")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("lambda", "function:"+name), g.arn("lambda", "function:"+name+":*")}, nil
	case "AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Permission":
		fn := g.functionName(r.Properties["FunctionName"])
		if fn == "" {
			return nil, fmt.Errorf("policy: %s (%s): its function is not a named function of the template", id, r.Type)
		}
		return []string{g.arn("lambda", "function:"+fn), g.arn("lambda", "function:"+fn+":*")}, nil
	case "AWS::Logs::LogGroup":
		name, err := need("LogGroupName")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("logs", "log-group:"+name), g.arn("logs", "log-group:"+name+":*")}, nil
	case "AWS::SQS::Queue":
		name, err := need("QueueName")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("sqs", name)}, nil
	case "AWS::DynamoDB::Table":
		name, err := need("TableName")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("dynamodb", "table/"+name), g.arn("dynamodb", "table/"+name+"/*")}, nil
	case "AWS::SQS::QueuePolicy":
		return g.refsNamed(id, r, "Queues", "AWS::SQS::Queue", "QueueName", func(n string) string { return g.arn("sqs", n) })
	case "AWS::SNS::Topic":
		name, err := need("TopicName")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("sns", name), g.arn("sns", name+":*")}, nil
	case "AWS::SNS::TopicPolicy":
		return g.refsNamed(id, r, "Topics", "AWS::SNS::Topic", "TopicName", func(n string) string { return g.arn("sns", n) })
	case "AWS::SNS::Subscription":
		topic := g.nameOf(r.Properties["TopicArn"], "AWS::SNS::Topic", "TopicName")
		if topic == "" {
			return nil, fmt.Errorf("policy: %s: its topic is not a named topic of the template", id)
		}
		return []string{g.arn("sns", topic), g.arn("sns", topic+":*")}, nil
	case "AWS::EC2::SecurityGroup":
		vpc, err := need("VpcId")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("ec2", "security-group/*"), g.arn("ec2", "vpc/"+vpc)}, nil
	case "AWS::EC2::LaunchTemplate":
		return []string{g.arn("ec2", "launch-template/*")}, nil
	case "AWS::EC2::TrafficMirrorTarget":
		return []string{g.arn("ec2", "traffic-mirror-target/*")}, nil
	case "AWS::EC2::TrafficMirrorFilter":
		return []string{g.arn("ec2", "traffic-mirror-filter/*")}, nil
	case "AWS::EC2::TrafficMirrorFilterRule":
		return []string{g.arn("ec2", "traffic-mirror-filter/*"), g.arn("ec2", "traffic-mirror-filter-rule/*")}, nil
	case "AWS::AutoScaling::AutoScalingGroup":
		name, err := need("AutoScalingGroupName")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/"+name)}, nil
	case "AWS::AutoScaling::ScalingPolicy":
		asg := g.nameOf(r.Properties["AutoScalingGroupName"], "AWS::AutoScaling::AutoScalingGroup", "AutoScalingGroupName")
		if asg == "" {
			return nil, fmt.Errorf("policy: %s: its group is not a named group of the template", id)
		}
		return []string{g.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/"+asg)}, nil
	case "AWS::CloudWatch::Alarm":
		if name, ok := r.Properties["AlarmName"].(string); ok {
			return []string{g.arn("cloudwatch", "alarm:"+name)}, nil
		}
		// CloudFormation names it <stack>-<logical id>-<suffix>.
		return []string{g.arn("cloudwatch", "alarm:"+g.p.StackName+"-*")}, nil
	case "AWS::CloudWatch::Dashboard":
		name, err := need("DashboardName")
		if err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("arn:%s:cloudwatch::%s:dashboard/%s", g.p.Partition, g.p.Account, name)}, nil
	case "AWS::ElasticLoadBalancingV2::LoadBalancer":
		name, err := need("Name")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("elasticloadbalancing", "loadbalancer/"+lbKind(r)+"/"+name+"/*")}, nil
	case "AWS::ElasticLoadBalancingV2::TargetGroup":
		name, err := need("Name")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("elasticloadbalancing", "targetgroup/"+name+"/*")}, nil
	case "AWS::ElasticLoadBalancingV2::Listener":
		lbID := refID(r.Properties["LoadBalancerArn"])
		lb, ok := g.t.Resources[lbID]
		name, _ := lb.Properties["Name"].(string)
		if !ok || name == "" {
			return nil, fmt.Errorf("policy: %s: its load balancer is not a named load balancer of the template", id)
		}
		out := []string{
			g.arn("elasticloadbalancing", "listener/"+lbKind(lb)+"/"+name+"/*"),
			g.arn("elasticloadbalancing", "loadbalancer/"+lbKind(lb)+"/"+name+"/*"),
		}
		for _, tg := range g.resourcesOfType("AWS::ElasticLoadBalancingV2::TargetGroup") {
			if n, ok := tg.Properties["Name"].(string); ok {
				out = append(out, g.arn("elasticloadbalancing", "targetgroup/"+n+"/*"))
			}
		}
		return out, nil
	case "AWS::Events::Rule":
		name, err := need("Name")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("events", "rule/"+name)}, nil
	case "AWS::S3::Bucket":
		name, err := need("BucketName")
		if err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("arn:%s:s3:::%s", g.p.Partition, name), fmt.Sprintf("arn:%s:s3:::%s/*", g.p.Partition, name)}, nil
	case "AWS::S3::BucketPolicy":
		b := g.nameOf(r.Properties["Bucket"], "AWS::S3::Bucket", "BucketName")
		if b == "" {
			return nil, fmt.Errorf("policy: %s: its bucket is not a named bucket of the template", id)
		}
		return []string{fmt.Sprintf("arn:%s:s3:::%s", g.p.Partition, b)}, nil
	case "AWS::CloudTrail::Trail":
		name, err := need("TrailName")
		if err != nil {
			return nil, err
		}
		return []string{g.arn("cloudtrail", "trail/"+name)}, nil
	}
	return nil, fmt.Errorf("policy: %s: resource type %s has no scope: add it to infra/policy/scope.go", id, r.Type)
}

func lbKind(r resource) string {
	switch r.Properties["Type"] {
	case "network":
		return "net"
	case "gateway":
		return "gwy"
	}
	return "app"
}

// rolePatterns are the ARN patterns of the template's roles (by IAM path).
func (g *generator) rolePatterns() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range g.resourcesOfType("AWS::IAM::Role") {
		if p, ok := r.Properties["Path"].(string); ok && !seen[p] {
			seen[p] = true
			out = append(out, g.iamARN("role"+p+"*"))
		}
	}
	sort.Strings(out)
	return out
}

func (g *generator) resourcesOfType(typ string) []resource {
	var out []resource
	for _, r := range g.t.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// functionName is the name of the template's function that v (a Ref, a
// GetAtt or a literal name) refers to.
func (g *generator) functionName(v any) string {
	return g.nameOf(v, "AWS::Lambda::Function", "FunctionName")
}

// nameOf resolves v, a literal name or a Ref or GetAtt of a resource of
// type typ, to that resource's literal name property.
func (g *generator) nameOf(v any, typ, prop string) string {
	if s, ok := v.(string); ok {
		return s
	}
	r, ok := g.t.Resources[refID(v)]
	if !ok || r.Type != typ {
		return ""
	}
	name, _ := r.Properties[prop].(string)
	return name
}

func (g *generator) refsNamed(id string, r resource, prop, typ, nameProp string, arn func(string) string) ([]string, error) {
	list, _ := r.Properties[prop].([]any)
	var out []string
	for _, v := range list {
		n := g.nameOf(v, typ, nameProp)
		if n == "" {
			return nil, fmt.Errorf("policy: %s (%s): %v is not a named %s of the template", id, r.Type, v, typ)
		}
		out = append(out, arn(n))
	}
	return out, nil
}

// refID is the logical id of {"Ref": id} or {"Fn::GetAtt": [id, attr]}.
func refID(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	if id, ok := m["Ref"].(string); ok {
		return id
	}
	if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
		id, _ := ga[0].(string)
		return id
	}
	return ""
}

// WildcardActions are the actions granted on every resource ("*").
func (d Document) WildcardActions() []string {
	var out []string
	for _, s := range d.Statement {
		for _, r := range s.Resource {
			if r == "*" {
				out = append(out, s.Action...)
			}
		}
	}
	sort.Strings(out)
	return out
}
