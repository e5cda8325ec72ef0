package awssim

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestKMSKeyPolicy(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	c := ctx(t)
	cfg := a.Config()
	cfg.Retryer = QuickRetryer(1)
	cl := kms.NewFromConfig(cfg)
	id, arn := a.AddKey("")
	if !strings.HasSuffix(arn, ":key/"+id) || !strings.Contains(a.KeyPolicy(id), "arn:aws:iam::123456789012:root") {
		t.Fatalf("key %s %s %s", id, arn, a.KeyPolicy(id))
	}
	for _, k := range []string{id, arn} {
		out, err := cl.GetKeyPolicy(c, &kms.GetKeyPolicyInput{KeyId: aws.String(k), PolicyName: aws.String("default")})
		if err != nil || aws.ToString(out.Policy) != a.KeyPolicy(id) || aws.ToString(out.PolicyName) != "default" {
			t.Fatalf("get by %s: %+v %v", k, out, err)
		}
	}

	if err := a.AddRole(Role{Name: "sniffer", Path: "/apitap/"}); err != nil {
		t.Fatal(err)
	}
	policy := func(principal string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"},` +
			`{"Effect":"Allow","Principal":{"AWS":["` + principal + `"]},"Action":"kms:Decrypt","Resource":"*"}]}`
	}
	good := policy("arn:aws:iam::123456789012:role/apitap/sniffer")
	if _, err := cl.PutKeyPolicy(c, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(good)}); err != nil {
		t.Fatal(err)
	}
	if a.KeyPolicy(arn) != good {
		t.Fatalf("policy %s", a.KeyPolicy(arn))
	}
	for name, p := range map[string]string{
		"missing role":    policy("arn:aws:iam::123456789012:role/gone"),
		"wrong path":      policy("arn:aws:iam::123456789012:role/sniffer"),
		"not JSON":        `{"Statement":`,
		"no statement":    `{"Version":"2012-10-17"}`,
		"no principal":    `{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`,
		"bad principal":   `{"Statement":{"Effect":"Allow","Principal":"me","Action":"kms:*","Resource":"*"}}`,
		"empty principal": `{"Statement":{"Effect":"Allow","Principal":{},"Action":"kms:*","Resource":"*"}}`,
	} {
		_, err := cl.PutKeyPolicy(c, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(p)})
		var mp *kmstypes.MalformedPolicyDocumentException
		if !errors.As(err, &mp) {
			t.Errorf("%s: %T %v", name, err, err)
		}
	}
	// Roles of other accounts and service principals are accepted.
	other := `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:role/x","Service":"sns.amazonaws.com"},"Action":"kms:*","Resource":"*"}}`
	if _, err := cl.PutKeyPolicy(c, &kms.PutKeyPolicyInput{KeyId: aws.String(arn), Policy: aws.String(other), PolicyName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	if a.KeyPolicy(id) != other {
		t.Fatal("refused policy was kept")
	}

	_, err := cl.GetKeyPolicy(c, &kms.GetKeyPolicyInput{KeyId: aws.String("11111111-2222-3333-4444-555555555555")})
	var nf *kmstypes.NotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unknown key: %T %v", err, err)
	}
	_, err = cl.PutKeyPolicy(c, &kms.PutKeyPolicyInput{KeyId: aws.String("arn:aws:kms:us-east-1:123456789012:key/nope"), Policy: aws.String(good)})
	wantCode(t, err, "NotFoundException")
	_, err = cl.GetKeyPolicy(c, &kms.GetKeyPolicyInput{KeyId: aws.String("arn:aws:s3:::bucket")})
	wantCode(t, err, "InvalidArnException")
	_, err = cl.GetKeyPolicy(c, &kms.GetKeyPolicyInput{KeyId: aws.String(id), PolicyName: aws.String("other")})
	wantCode(t, err, "ValidationException")

	if a.Calls().Get("kms", "PutKeyPolicy") != 10 {
		t.Errorf("calls %v", a.Calls().ByAction)
	}
	a.SetFaults(Faults{Denied: []string{"PutKeyPolicy"}})
	_, err = cl.PutKeyPolicy(c, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(good)})
	wantCode(t, err, "AccessDeniedException")
}
