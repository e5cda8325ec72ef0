// Package record builds the JSON message that apitap publishes for each HTTP
// request/response pair: Akto's ingestion format (docs/contracts.md §1).
//
// Every value is a JSON string, including numbers and the two header maps,
// because Akto's consumer drops messages whose fields are not strings. The
// encoder appends to a caller-owned buffer and uses only the standard library.
package record

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Sources accepted by Akto's consumer.
const (
	SourceMirroring = "MIRRORING"
	SourcePcap      = "PCAP"
)

// DefaultAccountID is Akto's default account.
const DefaultAccountID = "1000000"

// Mask replaces the value of a redacted header.
const Mask = "****"

// Record is one HTTP exchange, ready to encode. Payloads are decoded text;
// the encoder escapes them.
type Record struct {
	Method          string
	Path            string
	Proto           string
	RequestHeaders  []Header
	ResponseHeaders []Header
	RequestPayload  []byte
	ResponsePayload []byte
	ClientIP        netip.Addr
	ServerIP        netip.Addr
	Time            int64 // unix seconds of the request's first captured packet
	StatusCode      int
	Status          string // "200 OK"
	AccountID       string
	VNI             uint32
	Pending         bool
	Source          string
}

// Options shape how a Record is encoded.
type Options struct {
	// Redact lists header names (case-insensitive) whose values are replaced
	// by Mask in both header maps.
	Redact []string
	// MaxBytes is the largest encoded record allowed (the broker's message
	// limit); bodies are cut, response first, until the record fits.
	// Zero means no limit.
	MaxBytes int
}

func (o *Options) redacted(name string) bool {
	for _, r := range o.Redact {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// Encode appends r as JSON to dst. When the record does not fit
// opts.MaxBytes, bodies are cut (response first, then request) and cut is
// true; a record still too big once both bodies are empty is returned as is
// and the caller must drop it.
func Encode(dst []byte, r *Record, opts *Options) (out []byte, cut bool) {
	start := len(dst)
	out = appendRecord(dst, r, opts, r.RequestPayload, r.ResponsePayload)
	if opts == nil || opts.MaxBytes <= 0 || len(out)-start <= opts.MaxBytes {
		return out, false
	}
	over := len(out) - start - opts.MaxBytes
	req, resp := r.RequestPayload, r.ResponsePayload
	// Escaping can make a body byte cost up to 6 encoded bytes, so cutting
	// "over" raw bytes may not be enough: loop, cutting at least that much.
	for over > 0 && (len(resp) > 0 || len(req) > 0) {
		if len(resp) > 0 {
			resp = cutText(resp, over)
		} else {
			req = cutText(req, over)
		}
		out = appendRecord(dst[:start], r, opts, req, resp)
		over = len(out) - start - opts.MaxBytes
	}
	return out, true
}

// cutText drops at least n bytes from the end of b without splitting a UTF-8
// sequence.
func cutText(b []byte, n int) []byte {
	keep := len(b) - n
	if keep <= 0 {
		return b[:0]
	}
	for keep > 0 && !utf8.RuneStart(b[keep]) {
		keep--
	}
	return b[:keep]
}

func appendRecord(b []byte, r *Record, opts *Options, reqBody, respBody []byte) []byte {
	b = append(b, '{')
	b = appendField(b, "method", r.Method, false)
	b = appendField(b, "path", r.Path, true)
	b = appendField(b, "type", r.Proto, true)
	b = appendKey(b, "requestHeaders", true)
	b = appendHeaders(b, r.RequestHeaders, opts)
	b = appendKey(b, "responseHeaders", true)
	b = appendHeaders(b, r.ResponseHeaders, opts)
	b = appendKey(b, "requestPayload", true)
	b = appendString(b, reqBody)
	b = appendKey(b, "responsePayload", true)
	b = appendString(b, respBody)
	b = appendKey(b, "ip", true)
	b = appendAddr(b, r.ClientIP)
	b = appendKey(b, "destIp", true)
	b = appendAddr(b, r.ServerIP)
	b = appendKey(b, "time", true)
	b = append(b, '"')
	b = strconv.AppendInt(b, r.Time, 10)
	b = append(b, '"')
	b = appendKey(b, "statusCode", true)
	// A pending record has status code "0": Akto parses the field as an
	// integer and would drop the message on an empty string.
	b = append(b, '"')
	b = strconv.AppendInt(b, int64(r.StatusCode), 10)
	b = append(b, '"')
	b = appendField(b, "status", r.Status, true)
	account := r.AccountID
	if account == "" {
		account = DefaultAccountID
	}
	b = appendField(b, "akto_account_id", account, true)
	b = appendKey(b, "akto_vxlan_id", true)
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(r.VNI), 10)
	b = append(b, '"')
	if r.Pending {
		b = appendField(b, "is_pending", "true", true)
	} else {
		b = appendField(b, "is_pending", "false", true)
	}
	b = appendField(b, "source", r.Source, true)
	return append(b, '}')
}

func appendKey(b []byte, k string, comma bool) []byte {
	if comma {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func appendField(b []byte, k, v string, comma bool) []byte {
	b = appendKey(b, k, comma)
	return appendString(b, v)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	b = append(b, '"')
	if a.IsValid() {
		b = a.Unmap().AppendTo(b)
	}
	return append(b, '"')
}

// appendHeaders writes the headers as a JSON object serialized into a JSON
// string: repeated names are joined in the order sent, under the first
// spelling of the name, with the separator joinSep gives. The object is
// written escaped twice in one pass (appendEscaped2) instead of being built
// and then escaped: headers are a third of a typical record.
func appendHeaders(b []byte, hs []Header, opts *Options) []byte {
	b = append(b, `"{`...)
	first := true
	for i, h := range hs {
		if seenBefore(hs[:i], h.Name) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '\\', '"')
		b = appendEscaped2(b, h.Name)
		b = append(b, `\":\"`...)
		if opts != nil && opts.redacted(h.Name) {
			b = append(b, Mask...)
		} else {
			b = appendEscaped2(b, h.Value)
			sep := joinSep(h.Name)
			for _, more := range hs[i+1:] {
				if len(more.Name) == len(h.Name) && strings.EqualFold(more.Name, h.Name) {
					b = append(b, sep...)
					b = appendEscaped2(b, more.Value)
				}
			}
		}
		b = append(b, '\\', '"')
	}
	return append(b, `}"`...)
}

// joinSep is the separator of a repeated header's values. Cookie pairs are
// separated by "; " (RFC 6265 section 5.4), and Akto's cookie parser splits
// the Cookie value on ';' only: joined with ", " two cookies would read as
// one whose value runs into the next. Every other field is a list joined
// with ", " (RFC 9110 section 5.3).
func joinSep(name string) string {
	if len(name) == len("Cookie") && strings.EqualFold(name, "Cookie") {
		return "; "
	}
	return ", "
}

func seenBefore(hs []Header, name string) bool {
	for _, h := range hs {
		if len(h.Name) == len(name) && strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// appendString appends s as a quoted JSON string.
func appendString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

const hex = "0123456789abcdef"

// SWAR constants: one byte's pattern repeated in each byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 flags the bytes of x (8 bytes, little-endian) that need a look:
// control bytes (< 0x20), '"', '\\' and non-ASCII bytes. The lowest flagged
// byte is always one of them (bytes above it may be flagged falsely, which
// costs a look and nothing else). Checking 8 bytes at a time is what makes
// escaping bodies cheap.
func special8(x uint64) uint64 {
	const quote, backslash = '"' * ones, '\\' * ones
	ctl := (x - 0x20*ones) &^ x
	q := x ^ quote
	q = (q - ones) &^ q
	bs := x ^ backslash
	bs = (bs - ones) &^ bs
	return (ctl | q | bs | x) & highs
}

// class says what a byte needs inside a JSON string: nothing (plain),
// an escape (control bytes, '"', '\\') or a look at its UTF-8 sequence.
var class = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c < 0x20 || c == '"' || c == '\\':
			t[c] = clEscape
		case c >= utf8.RuneSelf:
			t[c] = clUTF8
		}
	}
	return t
}()

const (
	clPlain uint8 = iota
	clEscape
	clUTF8
)

// appendEscaped appends s escaped for the inside of a JSON string. Invalid
// UTF-8 becomes U+FFFD so the output is always valid JSON.
func appendEscaped[T string | []byte](b []byte, s T) []byte {
	return appendEscapedN(b, bytesOf(s), false)
}

// appendEscaped2 appends s escaped twice: as a string inside a JSON text
// that is itself inside a JSON string (the header maps).
func appendEscaped2[T string | []byte](b []byte, s T) []byte {
	return appendEscapedN(b, bytesOf(s), true)
}

// bytesOf views s as bytes without copying; the escaper only reads them.
func bytesOf[T string | []byte](s T) []byte {
	switch v := any(s).(type) {
	case []byte:
		return v
	case string:
		return unsafe.Slice(unsafe.StringData(v), len(v))
	}
	return nil
}

// appendEscapedN escapes s onto b (twice when twice is set). It works in
// place in b's spare capacity on 8 bytes at a time: a word without a byte
// that needs a look is stored as is; in one with some, each flagged byte
// is visited through the word's mask, the plain bytes before it stored
// with one shifted store, so that JSON bodies (a quote every few bytes)
// cost a few operations per quote and no copy call.
func appendEscapedN(b, s []byte, twice bool) []byte {
	const slack = 64 // a word of 8 escapes of at most 7 bytes, and an 8-byte store
	j := len(b)
	dst := b[:cap(b)]
	i := 0
	for i < len(s) {
		if len(dst)-j < slack {
			dst = slices.Grow(dst[:j], len(s)-i+len(s)/8+slack)
			dst = dst[:cap(dst)]
		}
		if i+8 > len(s) {
			// The tail, a byte at a time.
			c := s[i]
			switch class[c] {
			case clPlain:
				dst[j] = c
				i, j = i+1, j+1
			case clEscape:
				j = putEscape(dst, j, c, twice)
				i++
			default:
				i, j = putRune(dst, j, s, i, twice)
			}
			continue
		}
		x := binary.LittleEndian.Uint64(s[i:])
		m := special8(x)
		p := uint(0) // the word's bytes before p are done
		for ; m != 0; m &= m - 1 {
			k := uint(bits.TrailingZeros64(m) >> 3)
			c := byte(x >> (8 * k))
			cl := class[c]
			if cl == clPlain {
				continue // flagged by a borrow from the byte below: plain
			}
			binary.LittleEndian.PutUint64(dst[j:], x>>(8*p))
			j += int(k - p)
			if c == '"' && !twice { // the common escape of JSON bodies, inline
				dst[j], dst[j+1] = '\\', '"'
				j += 2
				p = k + 1
				continue
			}
			if cl == clEscape {
				j = putEscape(dst, j, c, twice)
				p = k + 1
				continue
			}
			// A UTF-8 sequence may run past the word: go on after it.
			i, j = putRune(dst, j, s, i+int(k), twice)
			p = 8
			break
		}
		if p < 8 {
			binary.LittleEndian.PutUint64(dst[j:], x>>(8*p))
			j += int(8 - p)
			i += 8
		} else if m == 0 {
			i += 8 // the word ended with an escape
		}
	}
	return dst[:j]
}

// putEscape stores the escape of an ASCII byte that needs one at dst[j:]
// and returns the end.
func putEscape(dst []byte, j int, c byte, twice bool) int {
	if c == '"' || c == '\\' { // the common ones, stored directly
		if twice {
			dst[j], dst[j+1], dst[j+2], dst[j+3] = '\\', '\\', '\\', c
			return j + 4
		}
		dst[j], dst[j+1] = '\\', c
		return j + 2
	}
	return j + copy(dst[j:], escape(c, twice))
}

// putRune stores the UTF-8 sequences starting at s[i:] at dst[j:], as
// they are when valid, else escaped, up to the next ASCII byte or until
// dst's slack is used; it returns the ends in s and dst.
func putRune(dst []byte, j int, s []byte, i int, twice bool) (int, int) {
	for end := len(dst) - 16; i < len(s) && s[i] >= utf8.RuneSelf && j < end; {
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			j += copy(dst[j:], pick(twice, `\\ufffd`, `\ufffd`)) // invalid UTF-8
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but they break JavaScript consumers.
			j += copy(dst[j:], pick(twice, `\\u202`, `\u202`))
			dst[j] = hex[r&0xf]
			j++
		case i+4 <= len(s):
			// Valid UTF-8 is kept as is: one 4-byte store, size bytes kept.
			binary.LittleEndian.PutUint32(dst[j:], binary.LittleEndian.Uint32(s[i:]))
			j += size
		default:
			j += copy(dst[j:], s[i:i+size])
		}
		i += size
	}
	return i, j
}

func pick(twice bool, two, one string) string {
	if twice {
		return two
	}
	return one
}

// escapes holds the escape of each ASCII byte that needs one ([0]), and
// that escape escaped again ([1]).
var escapes = func() (t [2][0x80]string) {
	for c := range 0x80 {
		if class[c] != clEscape {
			continue
		}
		var e string
		switch c {
		case '"', '\\':
			e = `\` + string(rune(c))
		case '\n':
			e = `\n`
		case '\r':
			e = `\r`
		case '\t':
			e = `\t`
		default:
			e = `\u00` + string(hex[c>>4]) + string(hex[c&0xf])
		}
		t[0][c] = e
		t[1][c] = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(e)
	}
	return t
}()

func escape(c byte, twice bool) string {
	if twice {
		return escapes[1][c&0x7f]
	}
	return escapes[0][c&0x7f]
}

// AppendKey appends the Kafka message key of a connection: the VNI and the
// client and server endpoints, so that one connection's records stay ordered
// within one partition.
func AppendKey(b []byte, vni uint32, client, server netip.AddrPort) []byte {
	b = strconv.AppendUint(b, uint64(vni), 10)
	b = append(b, '/')
	b = client.AppendTo(b)
	b = append(b, '>')
	return server.AppendTo(b)
}
