// Package remedy reports diagnoses once and carries out remediations:
// the I/O around internal/diagnose. A diagnosis is published to the
// stack's SNS topic and logged once per cause (a conditional write to the
// diagnoses table decides, so concurrent functions publish it once), a
// cleared condition publishes "resolved", and an action of a class happens
// at most once per cooldown, recorded with what changed, why and how to
// undo it (docs/stack.md, "Diagnosis and remediation").
package remedy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/apitap/apitap/internal/contract"
)

// Table is the part of DynamoDB the reporter uses.
type Table interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Topic is the part of SNS the reporter uses.
type Topic interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Retention is how long a reported diagnosis is remembered when nothing
// clears it (a stack operation's failure never clears: the next operation
// is another cause).
const Retention = 30 * 24 * time.Hour

// Reporter publishes diagnoses once.
type Reporter struct {
	DB        Table
	TableName string
	Topic     Topic
	TopicARN  string
	Stack     string
	Log       *slog.Logger
	Now       func() time.Time
}

// Report is what is published: one JSON document.
type Report struct {
	Stack    string    `json:"stack"`
	State    string    `json:"state"` // "diagnosed", "resolved" or "remediated"
	Class    string    `json:"class"`
	Resource string    `json:"resource,omitempty"`
	Cause    string    `json:"cause,omitempty"`
	Evidence string    `json:"evidence,omitempty"`
	Fix      string    `json:"fix,omitempty"`
	Changed  string    `json:"changed,omitempty"` // remediated: what changed
	Undo     string    `json:"undo,omitempty"`    // remediated: how to undo it
	Key      string    `json:"key"`
	At       time.Time `json:"at"`
}

// Kinds of items in the table.
const (
	KindDiagnosis = "diagnosis" // a stack operation's or an event's failure: never resolved
	KindCondition = "condition" // a condition that clears (health): resolved when gone
	KindAction    = "action"    // a remediation's last time, per class
)

// Report publishes r unless its key was reported before; it says whether
// it published. kind is KindDiagnosis or KindCondition.
func (p *Reporter) Report(ctx context.Context, kind string, r Report) (bool, error) {
	now := p.Now()
	r.Stack, r.State, r.At = p.Stack, "diagnosed", now
	_, err := p.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(p.TableName),
		Item: map[string]ddbtypes.AttributeValue{
			contract.DiagnosisKey:     &ddbtypes.AttributeValueMemberS{Value: r.Key},
			"Kind":                    &ddbtypes.AttributeValueMemberS{Value: kind},
			"Class":                   &ddbtypes.AttributeValueMemberS{Value: r.Class},
			"Resource":                &ddbtypes.AttributeValueMemberS{Value: r.Resource},
			"Since":                   &ddbtypes.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339)},
			contract.DiagnosisExpires: &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(Retention).Unix(), 10)},
		},
		ConditionExpression: aws.String("attribute_not_exists(" + contract.DiagnosisKey + ")"),
	})
	var exists *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &exists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording diagnosis %s: %w", r.Key, err)
	}
	if err := p.publish(ctx, r); err != nil {
		// Forget it, so that the next look publishes it.
		_, _ = p.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(p.TableName),
			Key: map[string]ddbtypes.AttributeValue{contract.DiagnosisKey: &ddbtypes.AttributeValueMemberS{Value: r.Key}}})
		return false, err
	}
	return true, nil
}

// Active are the conditions reported and not yet resolved, by key, with
// when each was first reported.
func (p *Reporter) Active(ctx context.Context) (map[string]Condition, error) {
	out := map[string]Condition{}
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := p.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(p.TableName), ExclusiveStartKey: start})
		if err != nil {
			return nil, fmt.Errorf("listing active conditions: %w", err)
		}
		for _, it := range page.Items {
			if str(it["Kind"]) != KindCondition {
				continue
			}
			since, _ := time.Parse(time.RFC3339, str(it["Since"]))
			key := str(it[contract.DiagnosisKey])
			out[key] = Condition{Key: key, Class: str(it["Class"]), Resource: str(it["Resource"]), Since: since}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}

// Condition is an active condition.
type Condition struct {
	Key, Class, Resource string
	Since                time.Time
}

// Resolve publishes "resolved" for the active conditions of class that
// are not in current, and forgets them.
func (p *Reporter) Resolve(ctx context.Context, class string, current map[string]bool) ([]string, error) {
	active, err := p.Active(ctx)
	if err != nil {
		return nil, err
	}
	var done []string
	for key, c := range active {
		if c.Class != class || current[key] {
			continue
		}
		_, err := p.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(p.TableName),
			Key:                 map[string]ddbtypes.AttributeValue{contract.DiagnosisKey: &ddbtypes.AttributeValueMemberS{Value: key}},
			ConditionExpression: aws.String("attribute_exists(" + contract.DiagnosisKey + ")")})
		var gone *ddbtypes.ConditionalCheckFailedException
		if errors.As(err, &gone) {
			continue // another function resolved it
		}
		if err != nil {
			return done, fmt.Errorf("resolving %s: %w", key, err)
		}
		r := Report{Stack: p.Stack, State: "resolved", Class: c.Class, Resource: c.Resource, Key: key, At: p.Now(),
			Cause: fmt.Sprintf("cleared after %s", p.Now().Sub(c.Since).Round(time.Second))}
		if err := p.publish(ctx, r); err != nil {
			return done, err
		}
		done = append(done, key)
	}
	return done, nil
}

// Acquire reports whether an action of class may happen now, at most one
// per cooldown, and records the time if so. Concurrent callers in the
// same window race on one conditional write: one wins.
func (p *Reporter) Acquire(ctx context.Context, class string, cooldown time.Duration) (bool, error) {
	now := p.Now()
	last, err := p.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(p.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{contract.DiagnosisKey: &ddbtypes.AttributeValueMemberS{Value: "action#" + class}}})
	if err != nil {
		return false, fmt.Errorf("reading the last %s action: %w", class, err)
	}
	if at, err := time.Parse(time.RFC3339, str(last.Item["Since"])); err == nil && now.Sub(at) < cooldown {
		return false, nil
	}
	window := now.Unix() / int64(cooldown/time.Second)
	_, err = p.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.TableName),
		Item: map[string]ddbtypes.AttributeValue{
			contract.DiagnosisKey:     &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("lock#%s#%d", class, window)},
			contract.DiagnosisExpires: &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(2*cooldown).Unix(), 10)},
		},
		ConditionExpression: aws.String("attribute_not_exists(" + contract.DiagnosisKey + ")")})
	var taken *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("taking the %s action's turn: %w", class, err)
	}
	_, err = p.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.TableName),
		Item: map[string]ddbtypes.AttributeValue{
			contract.DiagnosisKey: &ddbtypes.AttributeValueMemberS{Value: "action#" + class},
			"Kind":                &ddbtypes.AttributeValueMemberS{Value: KindAction},
			"Since":               &ddbtypes.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339)},
		}})
	if err != nil {
		return false, fmt.Errorf("recording the %s action: %w", class, err)
	}
	return true, nil
}

// Remediated publishes what an action changed and how to undo it.
func (p *Reporter) Remediated(ctx context.Context, r Report) error {
	r.Stack, r.State, r.At = p.Stack, "remediated", p.Now()
	return p.publish(ctx, r)
}

func (p *Reporter) publish(ctx context.Context, r Report) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	subject := fmt.Sprintf("apitap %s: %s %s", r.Stack, r.State, r.Class)
	if len(subject) > 100 { // SNS's limit for e-mail subjects
		subject = subject[:100]
	}
	if _, err := p.Topic.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(p.TopicARN), Subject: aws.String(subject), Message: aws.String(string(body))}); err != nil {
		return fmt.Errorf("publishing %s %s to %s: %w", r.State, r.Key, p.TopicARN, err)
	}
	p.Log.Warn("apitap "+r.State, "class", r.Class, "resource", r.Resource, "cause", r.Cause, "evidence", r.Evidence,
		"fix", r.Fix, "changed", r.Changed, "undo", r.Undo, "key", r.Key)
	return nil
}

func str(v ddbtypes.AttributeValue) string {
	if s, ok := v.(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
