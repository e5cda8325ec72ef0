package awssim

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// IAM, as far as the operator commands read it: whether a role exists.
// The SDK's iam client (v1.68.0) speaks the Query protocol.
var iamService = service{
	name:    "iam",
	version: "2010-05-08",
	xmlns:   "https://iam.amazonaws.com/doc/2010-05-08/",
	actions: map[string]handler{
		"GetRole": getRole,
	},
}

// CodeNoSuchEntity is IAM's answer (HTTP 404) for a role that does not
// exist. AWS (GetRole's errors).
const CodeNoSuchEntity = "NoSuchEntity"

// Role is an IAM role of the account.
type Role struct {
	Name string
	// Path defaults to "/"; service-linked roles live under
	// /aws-service-role/<service principal>/.
	Path        string
	Description string
	// AssumeRolePolicyDocument is the trust policy as JSON; GetRole
	// returns it URL-encoded, as IAM does.
	AssumeRolePolicyDocument string
}

type role struct {
	Role
	id      string
	created time.Time
}

// AutoScalingServiceLinkedRole is the role Auto Scaling creates in an
// account the first time it is used.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html
var AutoScalingServiceLinkedRole = Role{
	Name:                     "AWSServiceRoleForAutoScaling",
	Path:                     "/aws-service-role/autoscaling.amazonaws.com/",
	Description:              "Default Service-Linked Role enables access to AWS Services and Resources used or managed by Auto Scaling",
	AssumeRolePolicyDocument: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"autoscaling.amazonaws.com"},"Action":"sts:AssumeRole"}]}`,
}

type xRole struct {
	Path                     string `xml:"Path"`
	RoleName                 string `xml:"RoleName"`
	RoleID                   string `xml:"RoleId"`
	Arn                      string `xml:"Arn"`
	CreateDate               string `xml:"CreateDate"`
	AssumeRolePolicyDocument string `xml:"AssumeRolePolicyDocument,omitempty"`
	Description              string `xml:"Description,omitempty"`
	MaxSessionDuration       int    `xml:"MaxSessionDuration"`
}

type getRoleOut struct {
	Role xRole `xml:"Role"`
}

// getRole answers with the role by name, or NoSuchEntity (HTTP 404, "The
// role with name X cannot be found.").
// https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html
func getRole(s *state, form url.Values) (any, error) {
	name := form.Get("RoleName")
	if name == "" {
		return nil, badRequest(CodeValidationError, "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null")
	}
	r, ok := s.roles[name]
	if !ok {
		return nil, errf(404, CodeNoSuchEntity, "The role with name %s cannot be found.", name)
	}
	return &getRoleOut{Role: xRole{
		Path: r.Path, RoleName: r.Name, RoleID: r.id,
		Arn:        fmt.Sprintf("arn:aws:iam::%s:role%s%s", s.a.opts.AccountID, r.Path, r.Name),
		CreateDate: awsTime(r.created), AssumeRolePolicyDocument: url.PathEscape(r.AssumeRolePolicyDocument),
		Description: r.Description, MaxSessionDuration: 3600,
	}}, nil
}

// AddRole creates or replaces a role. A new account has none.
func (a *Account) AddRole(r Role) error {
	if r.Name == "" {
		return fmt.Errorf("awssim: a role needs a name")
	}
	if r.Path == "" {
		r.Path = "/"
	}
	if !strings.HasPrefix(r.Path, "/") || !strings.HasSuffix(r.Path, "/") {
		return fmt.Errorf("awssim: role path %q must begin and end with /", r.Path)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Role ids start with AROA (IAM identifiers, unique ids).
	id := fmt.Sprintf("AROA%016X", len(a.st.roles)+1)
	if old, ok := a.st.roles[r.Name]; ok {
		id = old.id
	}
	a.st.roles[r.Name] = &role{Role: r, id: id, created: a.st.now()}
	return nil
}

// DeleteRole removes a role; removing one that does not exist is no error.
func (a *Account) DeleteRole(name string) {
	a.mu.Lock()
	delete(a.st.roles, name)
	a.mu.Unlock()
}
