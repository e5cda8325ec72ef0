package awssim

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func newDDB(t *testing.T) (*Account, *dynamodb.Client) {
	t.Helper()
	a := New(Options{})
	t.Cleanup(a.Close)
	if err := a.AddTable("diagnoses", "id"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddTable("diagnoses", "id"); err == nil {
		t.Fatal("a table added twice")
	}
	cfg := a.Config()
	cfg.Retryer = QuickRetryer(1)
	return a, dynamodb.NewFromConfig(cfg)
}

func s(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }

func TestDynamoDBItems(t *testing.T) {
	a, cl := newDDB(t)
	c := ctx(t)
	item := map[string]ddbtypes.AttributeValue{
		"id":    s("eni-1#no-sessions"),
		"count": &ddbtypes.AttributeValueMemberN{Value: "3"},
		"open":  &ddbtypes.AttributeValueMemberBOOL{Value: true},
		"ctx": &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{
			"lb": s("web"), "ports": &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{
				&ddbtypes.AttributeValueMemberN{Value: "80"}, &ddbtypes.AttributeValueMemberNULL{Value: true}}},
		}},
		"tags": &ddbtypes.AttributeValueMemberSS{Value: []string{"a", "b"}},
	}
	first := &dynamodb.PutItemInput{TableName: aws.String("diagnoses"), Item: item, ConditionExpression: aws.String("attribute_not_exists(id)")}
	if _, err := cl.PutItem(c, first); err != nil {
		t.Fatal(err)
	}
	// The same key again: the condition fails, with the stored item on request.
	first.ReturnValuesOnConditionCheckFailure = ddbtypes.ReturnValuesOnConditionCheckFailureAllOld
	_, err := cl.PutItem(c, first)
	wantCode(t, err, "ConditionalCheckFailedException")
	var ccf *ddbtypes.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || ccf.Item["count"].(*ddbtypes.AttributeValueMemberN).Value != "3" {
		t.Fatalf("condition failure %T %+v", err, err)
	}
	// With a placeholder name.
	_, err = cl.PutItem(c, &dynamodb.PutItemInput{TableName: aws.String("diagnoses"), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(#k)"), ExpressionAttributeNames: map[string]string{"#k": "id"}})
	wantCode(t, err, "ConditionalCheckFailedException")

	got, err := cl.GetItem(c, &dynamodb.GetItemInput{TableName: aws.String("diagnoses"), Key: map[string]ddbtypes.AttributeValue{"id": s("eni-1#no-sessions")}})
	if err != nil {
		t.Fatal(err)
	}
	m := got.Item["ctx"].(*ddbtypes.AttributeValueMemberM).Value
	if got.Item["open"].(*ddbtypes.AttributeValueMemberBOOL).Value != true || m["lb"].(*ddbtypes.AttributeValueMemberS).Value != "web" ||
		len(m["ports"].(*ddbtypes.AttributeValueMemberL).Value) != 2 || len(got.Item["tags"].(*ddbtypes.AttributeValueMemberSS).Value) != 2 {
		t.Fatalf("item %+v", got.Item)
	}
	got, err = cl.GetItem(c, &dynamodb.GetItemInput{TableName: aws.String("diagnoses"), Key: map[string]ddbtypes.AttributeValue{"id": s("none")}})
	if err != nil || got.Item != nil {
		t.Fatalf("missing item: %+v %v", got.Item, err)
	}

	// Delete under attribute_exists: once, then the condition fails.
	del := &dynamodb.DeleteItemInput{TableName: aws.String("diagnoses"), Key: map[string]ddbtypes.AttributeValue{"id": s("eni-1#no-sessions")},
		ConditionExpression: aws.String("attribute_exists(id)"), ReturnValues: ddbtypes.ReturnValueAllOld}
	d, err := cl.DeleteItem(c, del)
	if err != nil || d.Attributes["id"].(*ddbtypes.AttributeValueMemberS).Value != "eni-1#no-sessions" {
		t.Fatalf("delete: %+v %v", d, err)
	}
	_, err = cl.DeleteItem(c, del)
	wantCode(t, err, "ConditionalCheckFailedException")
	del.ConditionExpression = nil
	if _, err := cl.DeleteItem(c, del); err != nil {
		t.Fatalf("unconditional delete of a missing item: %v", err)
	}
	if len(a.ItemKeys("diagnoses")) != 0 {
		t.Fatalf("left %v", a.ItemKeys("diagnoses"))
	}

	// What the account refuses.
	for name, in := range map[string]*dynamodb.PutItemInput{
		"other expression":   {TableName: aws.String("diagnoses"), Item: item, ConditionExpression: aws.String("attribute_not_exists(id) AND #n < :v")},
		"unused name":        {TableName: aws.String("diagnoses"), Item: item, ConditionExpression: aws.String("attribute_not_exists(id)"), ExpressionAttributeNames: map[string]string{"#x": "x"}},
		"undefined name":     {TableName: aws.String("diagnoses"), Item: item, ConditionExpression: aws.String("attribute_not_exists(#k)")},
		"names without expr": {TableName: aws.String("diagnoses"), Item: item, ExpressionAttributeNames: map[string]string{"#k": "id"}},
		"missing key":        {TableName: aws.String("diagnoses"), Item: map[string]ddbtypes.AttributeValue{"x": s("y")}},
		"number key":         {TableName: aws.String("diagnoses"), Item: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberN{Value: "1"}}},
		"empty key":          {TableName: aws.String("diagnoses"), Item: map[string]ddbtypes.AttributeValue{"id": s("")}},
		"bad number":         {TableName: aws.String("diagnoses"), Item: map[string]ddbtypes.AttributeValue{"id": s("a"), "n": &ddbtypes.AttributeValueMemberN{Value: "x"}}},
		"legacy Expected":    {TableName: aws.String("diagnoses"), Item: item, Expected: map[string]ddbtypes.ExpectedAttributeValue{"id": {Exists: aws.Bool(false)}}},
		"ReturnValues":       {TableName: aws.String("diagnoses"), Item: item, ReturnValues: ddbtypes.ReturnValueAllNew},
	} {
		_, err := cl.PutItem(c, in)
		if code(t, err) != "ValidationException" {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err = cl.PutItem(c, &dynamodb.PutItemInput{TableName: aws.String("nope"), Item: item})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = cl.GetItem(c, &dynamodb.GetItemInput{TableName: aws.String("nope"), Key: map[string]ddbtypes.AttributeValue{"id": s("x")}})
	var rnf *ddbtypes.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Fatalf("unknown table: %T %v", err, err)
	}
	_, err = cl.GetItem(c, &dynamodb.GetItemInput{TableName: aws.String("diagnoses"), Key: map[string]ddbtypes.AttributeValue{"id": s("x"), "y": s("z")}})
	wantCode(t, err, "ValidationException")
	// A table ARN is a TableName.
	if _, err := cl.GetItem(c, &dynamodb.GetItemInput{TableName: aws.String("arn:aws:dynamodb:us-east-1:123456789012:table/diagnoses"),
		Key: map[string]ddbtypes.AttributeValue{"id": s("x")}}); err != nil {
		t.Fatal(err)
	}

	muts := a.Stats().Mutations
	if len(muts) == 0 || muts[0].Service != "dynamodb" || muts[0].Action != "PutItem" || len(muts[0].Params["Body"]) != 1 {
		t.Fatalf("mutations %+v", muts)
	}
	a.SetFaults(Faults{ThrottleRate: 1})
	_, err = cl.GetItem(c, &dynamodb.GetItemInput{TableName: aws.String("diagnoses"), Key: map[string]ddbtypes.AttributeValue{"id": s("x")}})
	wantCode(t, err, "ThrottlingException")
}

func TestDynamoDBScanPages(t *testing.T) {
	a, cl := newDDB(t)
	c := ctx(t)
	for i := range 7 {
		if _, err := cl.PutItem(c, &dynamodb.PutItemInput{TableName: aws.String("diagnoses"),
			Item: map[string]ddbtypes.AttributeValue{"id": s(fmt.Sprintf("k%d", i)), "n": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	a.ResetCalls()
	var keys []string
	p := dynamodb.NewScanPaginator(cl, &dynamodb.ScanInput{TableName: aws.String("diagnoses"), Limit: aws.Int32(3)})
	for p.HasMorePages() {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		if out.Count != int32(len(out.Items)) || out.ScannedCount != out.Count {
			t.Fatalf("counts %d %d %d", out.Count, out.ScannedCount, len(out.Items))
		}
		for _, it := range out.Items {
			keys = append(keys, it["id"].(*ddbtypes.AttributeValueMemberS).Value)
		}
	}
	if fmt.Sprint(keys) != "[k0 k1 k2 k3 k4 k5 k6]" || a.Calls().Get("dynamodb", "Scan") != 3 {
		t.Fatalf("keys %v in %d pages", keys, a.Calls().Get("dynamodb", "Scan"))
	}
	// A page that ends at the limit carries LastEvaluatedKey even when
	// nothing follows; the next page is empty and has none.
	out, err := cl.Scan(c, &dynamodb.ScanInput{TableName: aws.String("diagnoses"), Limit: aws.Int32(2),
		ExclusiveStartKey: map[string]ddbtypes.AttributeValue{"id": s("k4")}})
	if err != nil || len(out.Items) != 2 || out.LastEvaluatedKey["id"].(*ddbtypes.AttributeValueMemberS).Value != "k6" {
		t.Fatalf("last page %+v %v", out, err)
	}
	out, err = cl.Scan(c, &dynamodb.ScanInput{TableName: aws.String("diagnoses"), ExclusiveStartKey: out.LastEvaluatedKey})
	if err != nil || len(out.Items) != 0 || out.LastEvaluatedKey != nil || out.Count != 0 {
		t.Fatalf("after the end %+v %v", out, err)
	}
	out, err = cl.Scan(c, &dynamodb.ScanInput{TableName: aws.String("diagnoses"), Select: ddbtypes.SelectCount})
	if err != nil || out.Count != 7 || out.Items != nil {
		t.Fatalf("count %+v %v", out, err)
	}
	_, err = cl.Scan(c, &dynamodb.ScanInput{TableName: aws.String("diagnoses"), FilterExpression: aws.String("n > :v"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": &ddbtypes.AttributeValueMemberN{Value: "1"}}})
	wantCode(t, err, "ValidationException")
	_, err = cl.Scan(c, &dynamodb.ScanInput{TableName: aws.String("diagnoses"), ExclusiveStartKey: map[string]ddbtypes.AttributeValue{"other": s("x")}})
	wantCode(t, err, "ValidationException")
	_, err = cl.Scan(c, &dynamodb.ScanInput{TableName: aws.String("nope")})
	wantCode(t, err, "ResourceNotFoundException")
	if items := a.Items("diagnoses"); len(items) != 7 || string(items[3]["n"]) != `{"N":"3"}` {
		t.Fatalf("items %s", items)
	}
}

// The wire: awsJson1_0's content type and DynamoDB's CRC32 header, on
// answers and errors.
func TestDynamoDBWire(t *testing.T) {
	a, _ := newDDB(t)
	for _, body := range []string{`{"TableName":"diagnoses"}`, `{"TableName":"nope"}`} {
		req, _ := http.NewRequest("POST", a.URL(), strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.Scan")
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		resp, err := a.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Type") != "application/x-amz-json-1.0" ||
			resp.Header.Get("X-Amz-Crc32") != fmt.Sprint(crc32.ChecksumIEEE(b)) {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, b)
		}
	}
}
