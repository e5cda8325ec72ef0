package http1

import (
	"fmt"
	"strings"
	"testing"
)

// pathFilter drops requests to /drop*, keeps only the head of /head* and
// of responses with status 418, and counts what it was asked.
type pathFilter struct{ requests, responses int }

func (f *pathFilter) Request(_ int, req *Message) Verdict {
	f.requests++
	switch {
	case strings.HasPrefix(req.Target, "/drop"):
		return Drop
	case strings.HasPrefix(req.Target, "/head"):
		return KeepHead
	}
	return Keep
}

func (f *pathFilter) Response(_, resp *Message) Verdict {
	f.responses++
	switch resp.StatusCode {
	case 418:
		return KeepHead
	case 410:
		return Drop
	}
	return Keep
}

func TestFilter(t *testing.T) {
	reqs := []struct{ target, body string }{
		{"/a", "one"}, {"/drop", "two"}, {"/head", "three"}, {"/b", "four"}, {"/gone", "five"}, {"/c", "six"},
	}
	statuses := []int{200, 200, 200, 418, 410, 200}
	var client, server strings.Builder
	for i, r := range reqs {
		fmt.Fprintf(&client, "POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", r.target, len(r.body), r.body)
		body := fmt.Sprintf("resp-%d", i)
		fmt.Fprintf(&server, "HTTP/1.1 %d X\r\nContent-Length: %d\r\nX-Id: %d\r\n\r\n%s", statuses[i], len(body), i, body)
	}
	for _, pipelined := range []bool{false, true} {
		t.Run(fmt.Sprint("pipelined=", pipelined), func(t *testing.T) {
			var got []string
			var stats Stats
			budget := NewBudget(1 << 20)
			c := NewConn(&Config{EmitPending: true, Budget: budget}, &stats, func(x *Exchange) {
				got = append(got, fmt.Sprintf("%s %q omitted=%v -> %s %q omitted=%v", x.Request.Target, x.Request.Body, x.Request.BodyOmitted,
					x.Response.Headers[1].Value, x.Response.Body, x.Response.BodyOmitted))
			})
			f := &pathFilter{}
			c.SetFilter(f)
			c.Start(0)
			c.Start(1)
			if pipelined {
				c.Data(0, []byte(client.String()), t0)
				c.Data(1, []byte(server.String()), t0)
			} else {
				cs, ss := splitMessages(client.String(), "POST "), splitMessages(server.String(), "HTTP/1.1 ")
				for i := range cs {
					c.Data(0, []byte(cs[i]), t0)
					c.Data(1, []byte(ss[i]), t0)
				}
			}
			c.Close(t0)
			want := []string{
				`/a "one" omitted=false -> 0 "resp-0" omitted=false`,
				`/head "" omitted=true -> 2 "resp-2" omitted=false`,
				`/b "four" omitted=false -> 3 "" omitted=true`,
				`/c "six" omitted=false -> 5 "resp-5" omitted=false`,
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("emitted:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if f.requests != 6 || f.responses != 5 {
				t.Errorf("filter asked %d requests, %d responses; want 6, 5 (a dropped request's response is not asked)", f.requests, f.responses)
			}
			if n := stats.Pairs.Load(); n != 6 {
				t.Errorf("pairs = %d, want 6 (dropped exchanges are paired all the same)", n)
			}
			if u := budget.Used(); u != 0 {
				t.Errorf("body budget used after close = %d, want 0", u)
			}
		})
	}
}

// splitMessages cuts s before each occurrence of start.
func splitMessages(s, start string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.Index(s[1:], start)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}
