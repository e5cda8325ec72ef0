package http1

import (
	"bytes"
	"strings"

	"github.com/apitap/apitap/internal/record"
)

// Line-level parsing. Every function here works on one complete line (LF
// removed, CR kept unless said otherwise) in borrowed bytes and allocates only
// the strings it returns.

const (
	maxMethodLen    = 24   // longest method accepted ("VERSION-CONTROL" is 15)
	maxChunkLineLen = 4096 // a chunk-size line with its extensions
)

// h2Preface is the first line of the HTTP/2 prior-knowledge preface
// ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); the first line alone is unambiguous.
var h2Preface = []byte("PRI * HTTP/2.0")

// trimCR removes the CR of a CRLF line ending.
func trimCR(l []byte) []byte {
	if len(l) > 0 && l[len(l)-1] == '\r' {
		return l[:len(l)-1]
	}
	return l
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isMethodChar accepts the characters of an upper-case token, the only kind
// of method treated as plausible while resynchronising (real methods are
// upper case; accepting any token there would make a line of body text look
// like a request).
func isMethodChar(c byte) bool { return isUpper(c) || isDigit(c) || c == '-' || c == '_' }

// methodOK reports whether m may be a method. Where a message is known to
// start (in step, or at a stream's first byte) any token is one (RFC 9110
// section 9.1: PURGE, QUERY, LINK, M-SEARCH, ...). Where the start is a
// guess (strict) only the upper-case methods knownMethod lists are.
func methodOK(m []byte, strict bool) bool {
	if len(m) == 0 || len(m) > maxMethodLen {
		return false
	}
	if strict {
		if !isUpper(m[0]) {
			return false
		}
		for _, c := range m {
			if !isMethodChar(c) {
				return false
			}
		}
		return knownMethod(m)
	}
	for _, c := range m {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// knownMethod lists the methods accepted when resynchronising after a gap or
// garbage, where a suffix of a lost line could otherwise pass for a request.
func knownMethod(m []byte) bool {
	switch string(m) { // no allocation: the compiler compares in place
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
		// WebDAV (RFC 4918, 3253, 3648, 4791, 5323, 5842)
		"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
		"SEARCH", "REPORT", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MERGE",
		"MKACTIVITY", "MKWORKSPACE", "VERSION-CONTROL", "BASELINE-CONTROL",
		"LABEL", "UPDATE", "ORDERPATCH", "MKCALENDAR", "ACL", "BIND", "UNBIND", "REBIND":
		return true
	}
	return false
}

// newRequest returns a request Message with the start line's parts, the
// common methods and versions as constants, the rest copied into it.
func newRequest(method, target, proto []byte) *Message {
	m := newMessage()
	m.Method, m.Target, m.Proto = methodString(method, m), m.text(target), protoString(proto, m)
	return m
}

// methodString returns the method as a string, a constant for the common
// ones, else copied into m.
func methodString(b []byte, m *Message) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "HEAD":
		return "HEAD"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	}
	return m.text(b)
}

// protoString returns "HTTP/1.1" or "HTTP/1.0" as constants, another
// version copied into m.
func protoString(p []byte, m *Message) string {
	switch string(p) {
	case "HTTP/1.1":
		return "HTTP/1.1"
	case "HTTP/1.0":
		return "HTTP/1.0"
	}
	return m.text(p)
}

// isHTTP1 reports whether p is exactly "HTTP/1.x" with x a digit.
func isHTTP1(p []byte) bool {
	return len(p) == 8 && string(p[:7]) == "HTTP/1." && isDigit(p[7])
}

// parseRequestLine parses "METHOD SP target SP HTTP/1.x" (CR already removed).
// strict is for resynchronisation: only known methods and the usual target
// forms are accepted there.
func parseRequestLine(l []byte, strict bool) (method, target, proto []byte, ok bool) {
	sp := bytes.IndexByte(l, ' ')
	if sp <= 0 || !methodOK(l[:sp], strict) {
		return nil, nil, nil, false
	}
	method = l[:sp]
	rest := l[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return nil, nil, nil, false
	}
	target, proto = rest[:sp], rest[sp+1:]
	if !isHTTP1(proto) {
		return nil, nil, nil, false
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return nil, nil, nil, false
		}
	}
	if strict {
		switch {
		case target[0] == '/':
		case len(target) == 1 && target[0] == '*':
		case hasPrefixFold(target, "http://"), hasPrefixFold(target, "https://"):
		case string(method) == "CONNECT":
		default:
			return nil, nil, nil, false
		}
	}
	return method, target, proto, true
}

// refusedRequestLine recognises a request line that parseRequestLine
// refuses but a server would still take for one, and answer (with a 400):
// a method, then a target with spaces or control bytes in it, then the
// version.
func refusedRequestLine(l []byte) (method, target, proto []byte, ok bool) {
	sp := bytes.IndexByte(l, ' ')
	if sp <= 0 || !methodOK(l[:sp], false) || len(l) < sp+1+len(" HTTP/1.x") {
		return nil, nil, nil, false
	}
	method, proto = l[:sp], l[len(l)-len("HTTP/1.x"):]
	if !isHTTP1(proto) || l[len(l)-len(" HTTP/1.x")] != ' ' {
		return nil, nil, nil, false
	}
	return method, l[sp+1 : len(l)-len(" HTTP/1.x")], proto, true
}

// parseStatusLine parses "HTTP/1.x SP 3DIGIT [SP reason]" (CR already
// removed). status is the code and reason phrase as sent ("404 Not Found",
// or "200" without a reason). strict limits codes to 100-599.
func parseStatusLine(l []byte, strict bool) (proto, status []byte, code int, ok bool) {
	if len(l) < 12 || !isHTTP1(l[:8]) || l[8] != ' ' ||
		!isDigit(l[9]) || !isDigit(l[10]) || !isDigit(l[11]) {
		return nil, nil, 0, false
	}
	code = int(l[9]-'0')*100 + int(l[10]-'0')*10 + int(l[11]-'0')
	if code < 100 || strict && code > 599 {
		return nil, nil, 0, false
	}
	reason := l[12:]
	if len(reason) > 0 && reason[0] != ' ' {
		return nil, nil, 0, false
	}
	for _, c := range reason {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, 0, false
		}
	}
	return l[:8], bytes.TrimRight(l[9:], " \t"), code, true
}

// plausiblePrefix reports whether p, the start of a line not complete yet,
// could still become a request line (req) or a status line (resp). It looks
// at the first few bytes only, so checking after every piece stays cheap.
// strict is parseRequestLine's.
func plausiblePrefix(p []byte, req, resp, strict bool) bool {
	if len(p) == 1 && p[0] == '\r' {
		return true // maybe an empty line
	}
	return req && requestPrefix(p, strict) || resp && statusPrefix(p)
}

func requestPrefix(p []byte, strict bool) bool {
	for i, c := range p {
		switch {
		case c == ' ':
			return i > 0
		case i >= maxMethodLen, strict && (i == 0 && !isUpper(c) || !isMethodChar(c)), !isTchar(c):
			return false
		}
	}
	return true
}

func statusPrefix(p []byte) bool {
	const s = "HTTP/1.x 000"
	for i := 0; i < len(p) && i < len(s); i++ {
		switch s[i] {
		case 'x', '0':
			if !isDigit(p[i]) {
				return false
			}
		default:
			if p[i] != s[i] {
				return false
			}
		}
	}
	return true
}

// tchar marks the bytes that may appear in a header field name (RFC 9110 token).
var tchar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		t[c] = b >= 'a' && b <= 'z' || isUpper(b) || isDigit(b) || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
	}
	return t
}()

func isTchar(c byte) bool { return tchar[c] }

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// parseField parses "name: value" (CR already removed) into a Header. Name and
// value share one string, copied into m.
func parseField(l []byte, m *Message) (record.Header, bool) {
	colon := bytes.IndexByte(l, ':')
	if colon <= 0 {
		return record.Header{}, false
	}
	for _, c := range l[:colon] {
		if !isTchar(c) {
			return record.Header{}, false
		}
	}
	if !validValue(l[colon+1:]) {
		return record.Header{}, false
	}
	vs, ve := colon+1, len(l)
	for vs < ve && isOWS(l[vs]) {
		vs++
	}
	for ve > vs && isOWS(l[ve-1]) {
		ve--
	}
	s := m.text(l[:ve])
	return record.Header{Name: s[:colon], Value: s[vs:]}, true
}

// validValue rejects a field value with a CR (a bare one: the line's CRLF
// is gone), LF or NUL. RFC 9110 section 5.5 lets a recipient reject such a
// value or replace those bytes with SP; servers differ, and one that
// rejects answers a 400 for a message that would otherwise look fine.
func validValue(v []byte) bool {
	for _, c := range v {
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// isFramingField reports whether a field decides where a body ends.
func isFramingField(name string) bool {
	return len(name) == len("Content-Length") && strings.EqualFold(name, "Content-Length") ||
		len(name) == len("Transfer-Encoding") && strings.EqualFold(name, "Transfer-Encoding")
}

// parseChunkSize parses the hex size of a chunk-size line (CR removed) and
// ignores chunk extensions.
func parseChunkSize(l []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(l); i++ {
		c := l[i]
		var v byte
		switch {
		case isDigit(c):
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			goto rest
		}
		if n > 1<<55 {
			return 0, false // absurd size: garbage rather than overflow
		}
		n = n<<4 | int64(v)
	}
rest:
	if i == 0 {
		return 0, false
	}
	for i < len(l) && isOWS(l[i]) {
		i++
	}
	if i < len(l) && l[i] != ';' {
		return 0, false
	}
	return n, true
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// encoding is a Content-Encoding this package can decode.
type encoding uint8

const (
	encNone  encoding = iota // identity, or no Content-Encoding
	encGzip                  // gzip, x-gzip
	encFlate                 // deflate: zlib-wrapped or raw
	encOther                 // anything else, or several codings: left as is
)

// framing is what the header fields say about a message's body.
type framing struct {
	hasCL   bool
	badCL   bool // unparseable, negative or conflicting Content-Length
	cl      int64
	hasTE   bool
	chunked bool // the last transfer coding is chunked
	enc     encoding
}

func framingOf(hs []record.Header) framing {
	var f framing
	for _, h := range hs {
		switch {
		case len(h.Name) == len("Content-Length") && strings.EqualFold(h.Name, "Content-Length"):
			for v := range strings.SplitSeq(h.Value, ",") {
				n, ok := parseLength(strings.TrimSpace(v))
				if !ok || f.hasCL && n != f.cl {
					f.badCL = true
				}
				f.hasCL, f.cl = true, n
			}
		case len(h.Name) == len("Transfer-Encoding") && strings.EqualFold(h.Name, "Transfer-Encoding"):
			f.hasTE = true
			// Codings are applied in order, across repeated fields; only the
			// last one decides whether the body is chunked.
			for v := range strings.SplitSeq(h.Value, ",") {
				if v = strings.TrimSpace(v); v != "" {
					f.chunked = strings.EqualFold(v, "chunked")
				}
			}
		case len(h.Name) == len("Content-Encoding") && strings.EqualFold(h.Name, "Content-Encoding"):
			for v := range strings.SplitSeq(h.Value, ",") {
				v = strings.TrimSpace(v)
				var e encoding
				switch {
				case v == "", strings.EqualFold(v, "identity"):
					continue
				case strings.EqualFold(v, "gzip"), strings.EqualFold(v, "x-gzip"):
					e = encGzip
				case strings.EqualFold(v, "deflate"):
					e = encFlate
				default:
					e = encOther
				}
				if f.enc != encNone {
					e = encOther // stacked codings: not worth decoding
				}
				f.enc = e
			}
		}
	}
	return f
}

// parseLength parses a Content-Length value: decimal digits only, small
// enough never to overflow.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
