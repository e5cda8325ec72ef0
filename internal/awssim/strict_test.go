package awssim

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestUndocumentedFilters: DescribeTrafficMirrorSessions documents no tag
// filters; each mode answers one differently, documented filters work in
// every mode, and the 200-value limit counts every filter.
func TestUndocumentedFilters(t *testing.T) {
	for _, tc := range []struct {
		mode FilterMode
		code string
		// what a tag:apitap:stack=a filter returns, of sessions tagged a and b
		want []string
	}{
		{mode: FiltersApply, want: []string{"a"}},
		{mode: FiltersIgnore, want: []string{"a", "b"}},
		{mode: FiltersReject, code: CodeInvalidFilter},
		{mode: FiltersReject, code: CodeInvalidParameterValue},
	} {
		t.Run(string(tc.mode)+tc.code, func(t *testing.T) {
			f := newFixture(t, Options{UndocumentedFilters: tc.mode, RejectFilterCode: tc.code})
			c := ctx(t)
			_, eniA := f.instance(t, "m5.large")
			_, eniB := f.instance(t, "m5.large")
			if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eniA, 1, "a")); err != nil {
				t.Fatal(err)
			}
			if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eniB, 1, "b")); err != nil {
				t.Fatal(err)
			}
			stacks := func(fs ...ec2types.Filter) ([]string, error) {
				out, err := f.ec2.DescribeTrafficMirrorSessions(c, &ec2.DescribeTrafficMirrorSessionsInput{Filters: fs})
				if err != nil {
					return nil, err
				}
				var got []string
				for _, s := range out.TrafficMirrorSessions {
					for _, tag := range s.Tags {
						if aws.ToString(tag.Key) == "apitap:stack" {
							got = append(got, aws.ToString(tag.Value))
						}
					}
				}
				slices.Sort(got)
				return got, nil
			}
			got, err := stacks(ec2types.Filter{Name: aws.String("tag:apitap:stack"), Values: []string{"a"}})
			if tc.code != "" {
				wantCode(t, err, tc.code)
			} else if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("tag filter: %v, %v; want %v", got, err, tc.want)
			}
			// Documented filters hold in every mode.
			got, err = stacks(ec2types.Filter{Name: aws.String("network-interface-id"), Values: []string{eniB}},
				ec2types.Filter{Name: aws.String("owner-id"), Values: []string{DefaultAccountID}})
			if err != nil || !slices.Equal(got, []string{"b"}) {
				t.Fatalf("documented filters: %v, %v", got, err)
			}
			// Tag filters stay documented on instances.
			out, err := f.ec2.DescribeInstances(c, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:none"), Values: []string{"x"}}}})
			if err != nil || len(out.Reservations) != 0 {
				t.Fatalf("tag filter on instances: %d reservations, %v", len(out.Reservations), err)
			}
			// 200 values in all, whatever becomes of them.
			many := make([]string, 200)
			for i := range many {
				many[i] = "eni-x"
			}
			_, err = stacks(ec2types.Filter{Name: aws.String("network-interface-id"), Values: many},
				ec2types.Filter{Name: aws.String("tag:apitap:stack"), Values: []string{"a"}})
			wantCode(t, err, "FilterLimitExceeded")
		})
	}
}

// TestDuplicateNumbersAllowed: with AllowDuplicateNumbers a second session
// with the same number on one ENI is created, and counted as a duplicate
// when it carries the same stack, target and VNI.
func TestDuplicateNumbersAllowed(t *testing.T) {
	f := newFixture(t, Options{AllowDuplicateNumbers: true})
	c := ctx(t)
	_, eni := f.instance(t, "m5.large")
	for i := 0; i < 2; i++ {
		if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, "a")); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.acct.Sessions()); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	if d := f.acct.Stats().Duplicates; len(d) != 1 || d[0].ENI != eni {
		t.Fatalf("duplicates = %+v", d)
	}
	// The per-ENI quota still holds.
	if _, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, "")); err != nil {
		t.Fatal(err)
	}
	_, err := f.ec2.CreateTrafficMirrorSession(c, f.createInput(eni, 1, ""))
	wantCode(t, err, CodeSessionsPerENILimit)
}
