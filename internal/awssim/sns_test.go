package awssim

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

func TestSNSPublish(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	c := ctx(t)
	cfg := a.Config()
	cfg.Retryer = QuickRetryer(1)
	cl := sns.NewFromConfig(cfg)
	arn := a.AddTopic("apitap-alerts")
	if arn != "arn:aws:sns:us-east-1:123456789012:apitap-alerts" || a.AddTopic("apitap-alerts") != arn {
		t.Fatalf("topic %s", arn)
	}
	out, err := cl.Publish(c, &sns.PublishInput{
		TopicArn: aws.String(arn), Subject: aws.String("apitap: sessions failing"), Message: aws.String(`{"eni":"eni-1"}`),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"severity": {DataType: aws.String("String"), StringValue: aws.String("high")},
			"count":    {DataType: aws.String("Number"), StringValue: aws.String("3")},
			"blob":     {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Publish(c, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("second")}); err != nil {
		t.Fatal(err)
	}
	got := a.Published(arn)
	if len(got) != 2 || got[0].MessageID != aws.ToString(out.MessageId) || got[0].Subject != "apitap: sessions failing" ||
		got[0].Message != `{"eni":"eni-1"}` || got[1].Message != "second" || got[1].Subject != "" || got[0].Time.IsZero() {
		t.Fatalf("published %+v", got)
	}
	at := got[0].Attributes
	if at["severity"].DataType != "String" || at["severity"].StringValue != "high" || at["count"].StringValue != "3" ||
		string(at["blob"].BinaryValue) != "\x00\x01\x02" || len(at) != 3 {
		t.Fatalf("attributes %+v", at)
	}

	_, err = cl.Publish(c, &sns.PublishInput{TopicArn: aws.String(arn + "-nope"), Message: aws.String("x")})
	wantCode(t, err, "NotFound")
	var nf *snstypes.NotFoundException
	if !errors.As(err, &nf) || status(err) != 404 {
		t.Fatalf("not the SDK's NotFoundException with 404: %T %v", err, err)
	}
	_, err = cl.Publish(c, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("")})
	wantCode(t, err, "InvalidParameter")
	_, err = cl.Publish(c, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("x"), Subject: aws.String("two\nlines")})
	wantCode(t, err, "InvalidParameter")
	_, err = cl.Publish(c, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("x"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{"a": {DataType: aws.String("String")}}})
	wantCode(t, err, "ParameterValueInvalid")
	if len(a.Published(arn)) != 2 || a.Published("nope") != nil {
		t.Fatal("a refused publish was recorded")
	}

	if n := a.Calls().Get("sns", "Publish"); n != 6 {
		t.Errorf("%d Publish calls", n)
	}
	muts := a.Stats().Mutations
	if len(muts) != 6 || muts[0].Service != "sns" || muts[0].Params["TopicArn"][0] != arn || muts[2].ErrorCode != "NotFound" {
		t.Errorf("mutations %+v", muts)
	}

	a.SetFaults(Faults{ThrottleRate: 1})
	_, err = cl.Publish(c, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("x")})
	wantCode(t, err, "Throttled")
	a.SetFaults(Faults{Denied: []string{"Publish"}})
	_, err = cl.Publish(c, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("x")})
	wantCode(t, err, "AuthorizationError")
}
