package awssim

import (
	"fmt"
	"net/url"
)

// STS, as far as the operator commands read it: who is calling.
// The SDK's sts client (v1.53.0) speaks the Query protocol.
var stsService = service{
	name:    "sts",
	version: "2011-06-15",
	xmlns:   "https://sts.amazonaws.com/doc/2011-06-15/",
	actions: map[string]handler{
		"GetCallerIdentity": getCallerIdentity,
	},
}

type callerIdentity struct {
	arn, userID string
}

func defaultCaller(accountID string) callerIdentity {
	return callerIdentity{arn: fmt.Sprintf("arn:aws:iam::%s:user/awssim", accountID), userID: "AIDAAWSSIMULATOR0000"}
}

type getCallerIdentityOut struct {
	Account string `xml:"Account"`
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
}

// getCallerIdentity answers with the account id the account was built
// with and the caller set by SetCallerIdentity.
// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
func getCallerIdentity(s *state, _ url.Values) (any, error) {
	return &getCallerIdentityOut{Account: s.a.opts.AccountID, Arn: s.caller.arn, UserID: s.caller.userID}, nil
}

// SetCallerIdentity sets the Arn and UserId GetCallerIdentity answers
// with. The default is the IAM user arn:aws:iam::<account>:user/awssim
// with user id AIDAAWSSIMULATOR0000; an assumed role looks like
// arn:aws:sts::<account>:assumed-role/<role>/<session> with user id
// "<role id>:<session>".
func (a *Account) SetCallerIdentity(arn, userID string) {
	a.mu.Lock()
	a.st.caller = callerIdentity{arn: arn, userID: userID}
	a.mu.Unlock()
}
