package awssim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// KMS, as far as remediation uses it: reading and replacing a key's
// policy. The SDK's kms client (v1.63.0) speaks awsJson1_1 with
// X-Amz-Target TrentService.<Action>. Keys are made from Go
// (Account.AddKey); CreateKey, aliases, grants, key states and
// cryptographic operations are not modelled.
var kmsService = service{
	name:     "kms",
	protocol: protoJSON,
	target:   "TrentService",
	bodyActions: map[string]bodyHandler{
		"GetKeyPolicy": getKeyPolicy,
		"PutKeyPolicy": putKeyPolicy,
	},
	mutating: map[string]bool{"PutKeyPolicy": true},
	// KMS's common errors, ThrottlingException and AccessDeniedException
	// (HTTP 400): https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html
	throttle: errf(400, "ThrottlingException", "Rate exceeded"),
	denied:   errf(400, "AccessDeniedException", ""),
}

// KMS error codes (GetKeyPolicy's and PutKeyPolicy's errors).
const (
	// CodeKMSNotFound: no such key. HTTP 400.
	CodeKMSNotFound = "NotFoundException"
	// CodeKMSInvalidArn: a KeyId that starts like an ARN but is not a
	// KMS key ARN. HTTP 400.
	CodeKMSInvalidArn = "InvalidArnException"
	// CodeKMSMalformedPolicy: a policy that is not valid JSON or not a
	// valid key policy. HTTP 400.
	CodeKMSMalformedPolicy = "MalformedPolicyDocumentException"
	// CodeKMSValidation is KMS's common ValidationException (HTTP 400).
	CodeKMSValidation = "ValidationException"
)

type kmsKey struct {
	id, arn string
	policy  string
}

func (s *state) kmsKeyARN(id string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", s.a.opts.Region, s.a.opts.AccountID, id)
}

// findKey takes a key id or key ARN, the two forms GetKeyPolicy and
// PutKeyPolicy accept ("Specify the key ID or key ARN of the KMS key").
// An alias is not a key id for these calls; the reference does not say
// how KMS answers one, and the account answers NotFoundException.
func (s *state) findKey(keyID string) (*kmsKey, error) {
	if keyID == "" {
		return nil, badRequest(CodeKMSValidation, "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	id := keyID
	if strings.HasPrefix(keyID, "arn:") {
		parts := strings.SplitN(keyID, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" || !strings.HasPrefix(parts[5], "key/") && !strings.HasPrefix(parts[5], "alias/") {
			return nil, badRequest(CodeKMSInvalidArn, "ARN %s is not a valid KMS key ARN", keyID)
		}
		if keyID != s.kmsKeyARN(strings.TrimPrefix(parts[5], "key/")) {
			return nil, badRequest(CodeKMSNotFound, "Key '%s' does not exist", keyID)
		}
		id = strings.TrimPrefix(parts[5], "key/")
	}
	k, ok := s.kmsKeys.get(id)
	if !ok {
		return nil, badRequest(CodeKMSNotFound, "Key '%s' does not exist", s.kmsKeyARN(id))
	}
	return k, nil
}

// checkPolicyName: "The only valid name is default", and an empty name
// means default (GetKeyPolicy's and PutKeyPolicy's PolicyName). AWS does
// not document the error for another name; the account answers
// ValidationException.
func checkPolicyName(name string) error {
	if name != "" && name != "default" {
		return badRequest(CodeKMSValidation, "awssim: the only valid key policy name is default, not %s", name)
	}
	return nil
}

type keyPolicyIn struct {
	KeyID                          string `json:"KeyId"`
	PolicyName                     string `json:"PolicyName"`
	Policy                         string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool   `json:"BypassPolicyLockoutSafetyCheck"`
}

type getKeyPolicyOut struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName"`
}

// getKeyPolicy answers with the key's policy and the name "default".
// https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
func getKeyPolicy(s *state, body []byte) (any, error) {
	var in keyPolicyIn
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	k, err := s.findKey(in.KeyID)
	if err != nil {
		return nil, err
	}
	return &getKeyPolicyOut{Policy: k.policy, PolicyName: "default"}, nil
}

// putKeyPolicy replaces the key's policy after checking it as KMS does,
// as far as the account can: the policy is a JSON object with a Statement
// (one or a list), each statement names one or more principals
// (Principal or NotPrincipal), and each IAM role of this account it names
// by ARN exists. The reference (Policy parameter) says "Each statement in
// the key policy must contain one or more principals. The principals in
// the key policy must exist and be visible to KMS"; a policy that fails is
// refused with MalformedPolicyDocumentException.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html
//
// Not modelled: the lockout safety check (the policy must let the caller
// call PutKeyPolicy again; BypassPolicyLockoutSafetyCheck is accepted and
// ignored), users, and principals of other accounts, which the account
// cannot know and accepts. A role's ARN matches when its name and path
// are the role's (arn:aws:iam::<account>:role<path><name>).
func putKeyPolicy(s *state, body []byte) (any, error) {
	var in keyPolicyIn
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	k, err := s.findKey(in.KeyID)
	if err != nil {
		return nil, err
	}
	if in.Policy == "" {
		return nil, badRequest(CodeKMSValidation, "1 validation error detected: Value null at 'policy' failed to satisfy constraint: Member must not be null")
	}
	if err := s.checkKeyPolicy(in.Policy); err != nil {
		return nil, err
	}
	k.policy = in.Policy
	return nil, nil
}

func malformed(format string, args ...any) error {
	return badRequest(CodeKMSMalformedPolicy, format, args...)
}

func (s *state) checkKeyPolicy(policy string) error {
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return malformed("awssim: the policy is not valid JSON: %v", err)
	}
	var stmts []map[string]json.RawMessage
	if err := json.Unmarshal(doc.Statement, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(doc.Statement, &one); err != nil || one == nil {
			return malformed("Policy has no statements.")
		}
		stmts = append(stmts, one)
	}
	if len(stmts) == 0 {
		return malformed("Policy has no statements.")
	}
	for _, st := range stmts {
		raw, ok := st["Principal"]
		if !ok {
			raw, ok = st["NotPrincipal"]
		}
		if !ok {
			return malformed("Policy contains a statement with no principal.")
		}
		arns, err := principalARNs(raw)
		if err != nil {
			return err
		}
		for _, arn := range arns {
			if !s.principalExists(arn) {
				return malformed("Policy contains a statement with one or more invalid principals.")
			}
		}
	}
	return nil
}

// principalARNs returns the AWS principals of a Principal element: "*",
// or an object whose AWS, Service, Federated or CanonicalUser member is a
// string or a list of strings.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
func principalARNs(raw json.RawMessage) ([]string, error) {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, malformed("Policy contains a statement with one or more invalid principals.")
		}
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return nil, malformed("Policy contains a statement with one or more invalid principals.")
	}
	var arns []string
	for kind, v := range m {
		var list []string
		var one string
		switch {
		case json.Unmarshal(v, &one) == nil:
			list = []string{one}
		case json.Unmarshal(v, &list) == nil && len(list) > 0:
		default:
			return nil, malformed("Policy contains a statement with one or more invalid principals.")
		}
		if kind == "AWS" {
			arns = append(arns, list...)
		}
	}
	return arns, nil
}

// principalExists is false only for an IAM role ARN of this account that
// names no role of the account.
func (s *state) principalExists(arn string) bool {
	prefix := fmt.Sprintf("arn:aws:iam::%s:role/", s.a.opts.AccountID)
	rest, ok := strings.CutPrefix(arn, prefix)
	if !ok {
		return true
	}
	i := strings.LastIndex(rest, "/")
	path, name := "/"+rest[:i+1], rest[i+1:]
	r, ok := s.roles[name]
	return ok && r.Path == path
}

// DefaultKeyPolicy is the policy KMS gives a key created without one: the
// account's root may do everything with the key, which lets IAM policies
// grant access.
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
func DefaultKeyPolicy(accountID string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"kms:*","Resource":"*"}]}`, accountID)
}

// AddKey creates a KMS key with the given policy (DefaultKeyPolicy when
// empty; not checked, so that a test can start from any policy) and
// returns its key id and ARN.
func (a *Account) AddKey(policy string) (keyID, arn string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if policy == "" {
		policy = DefaultKeyPolicy(a.opts.AccountID)
	}
	a.st.seq["kms-key"]++
	n := a.st.seq["kms-key"]
	keyID = fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n)
	arn = a.st.kmsKeyARN(keyID)
	a.st.kmsKeys.put(keyID, &kmsKey{id: keyID, arn: arn, policy: policy})
	return keyID, arn
}

// KeyPolicy returns the policy of a key, by id or ARN; "" for an unknown
// key.
func (a *Account) KeyPolicy(keyID string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	k, err := a.st.findKey(keyID)
	if err != nil {
		return ""
	}
	return k.policy
}
