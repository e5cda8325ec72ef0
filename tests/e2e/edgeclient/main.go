// Command edgeclient is the HTTP/1.x client of the end-to-end tests. It
// reads a script (JSON, see package clientscript) on stdin, performs its
// requests over raw TCP connections, so that the bytes on the wire are exactly the ones
// scripted (keep-alive reuse, pipelining, Expect: 100-continue, chunked and
// gzip request bodies, HTTP/1.0), and prints one clientscript.Result per request as a
// JSON array on stdout.
package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apitap/apitap/tests/e2e/clientscript"
)

func main() {
	var s clientscript.Script
	if err := json.NewDecoder(os.Stdin).Decode(&s); err != nil {
		fmt.Fprintln(os.Stderr, "edgeclient: reading script:", err)
		os.Exit(2)
	}
	results := Run(s)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "edgeclient:", err)
		os.Exit(1)
	}
}

// Run performs the script and returns the results in script order.
func Run(s clientscript.Script) []clientscript.Result {
	par := max(s.Parallel, 1)
	out := make([][]clientscript.Result, len(s.Conns))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, c := range s.Conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = runConn(c)
		}()
	}
	wg.Wait()
	var all []clientscript.Result
	for _, r := range out {
		all = append(all, r...)
	}
	return all
}

func runConn(c clientscript.Conn) []clientscript.Result {
	res := make([]clientscript.Result, len(c.Requests))
	for i, r := range c.Requests {
		res[i] = clientscript.Result{ID: r.ID, Method: r.Method, Path: r.Path, Proto: proto(r), RequestBody: r.Body}
	}
	fail := func(from int, err error) []clientscript.Result {
		for i := from; i < len(res); i++ {
			if res[i].Err == "" {
				res[i].Err = err.Error()
			}
		}
		return res
	}
	conn, err := net.DialTimeout("tcp", c.Addr, 5*time.Second)
	if err != nil {
		return fail(0, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	local := conn.LocalAddr().(*net.TCPAddr).IP.String()
	remote := conn.RemoteAddr().(*net.TCPAddr).IP.String()
	for i := range res {
		res[i].Local, res[i].Remote = local, remote
	}
	br := bufio.NewReader(conn)

	if c.Pipeline {
		var all bytes.Buffer
		for i, r := range c.Requests {
			if r.Expect100 {
				return fail(0, errors.New("expect100 is not allowed in a pipeline"))
			}
			head, body := encode(c, r)
			all.Write(head)
			all.Write(body)
			res[i].Start = time.Now().Unix()
		}
		if _, err := conn.Write(all.Bytes()); err != nil {
			return fail(0, err)
		}
		for i, r := range c.Requests {
			if err := readFinal(br, r, &res[i]); err != nil {
				return fail(i, err)
			}
		}
		return res
	}

	for i, r := range c.Requests {
		head, body := encode(c, r)
		res[i].Start = time.Now().Unix()
		if _, err := conn.Write(head); err != nil {
			return fail(i, err)
		}
		if r.Expect100 {
			// Wait for the interim response; send the body after it.
			resp, err := http.ReadResponse(br, &http.Request{Method: r.Method})
			if err != nil {
				return fail(i, fmt.Errorf("waiting for 100 Continue: %w", err))
			}
			if resp.StatusCode != http.StatusContinue {
				if err := fill(resp, &res[i]); err != nil {
					return fail(i, err)
				}
				res[i].Err = fmt.Sprintf("expected 100 Continue, got %s", resp.Status)
				return fail(i+1, errors.New("connection abandoned"))
			}
			res[i].Got100 = true
		}
		if len(body) > 0 {
			if _, err := conn.Write(body); err != nil {
				return fail(i, err)
			}
		}
		if err := readFinal(br, r, &res[i]); err != nil {
			return fail(i, err)
		}
	}
	return res
}

func proto(r clientscript.Request) string {
	if r.Proto == "" {
		return "HTTP/1.1"
	}
	return r.Proto
}

// encode returns the request's head and (encoded) body.
func encode(c clientscript.Conn, r clientscript.Request) (head, body []byte) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\r\n", r.Method, r.Path, proto(r))
	host := r.Host
	if host == "" {
		host = c.Addr
	}
	fmt.Fprintf(&b, "Host: %s\r\n", host)
	for _, h := range r.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	payload := []byte(r.Body)
	if r.Gzip {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(payload)
		zw.Close()
		payload = zb.Bytes()
		b.WriteString("Content-Encoding: gzip\r\n")
	}
	if r.Expect100 {
		b.WriteString("Expect: 100-continue\r\n")
	}
	switch {
	case r.Chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
		var cb bytes.Buffer
		for len(payload) > 0 {
			n := min(len(payload), 1000)
			fmt.Fprintf(&cb, "%x\r\n%s\r\n", n, payload[:n])
			payload = payload[n:]
		}
		cb.WriteString("0\r\n\r\n")
		payload = cb.Bytes()
	case len(payload) > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(payload))
	}
	b.WriteString("\r\n")
	return b.Bytes(), payload
}

// readFinal reads responses until a final (non-1xx) one and fills res.
func readFinal(br *bufio.Reader, r clientscript.Request, res *clientscript.Result) error {
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: r.Method})
		if err != nil {
			return fmt.Errorf("reading response: %w", err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusContinue {
				res.Got100 = true
			}
			continue
		}
		return fill(resp, res)
	}
}

func fill(resp *http.Response, res *clientscript.Result) error {
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	res.StatusCode = resp.StatusCode
	res.Status = strings.TrimSpace(resp.Status)
	res.Headers = resp.Header
	if len(resp.Trailer) > 0 {
		res.Trailers = resp.Trailer
	}
	body, err := decode(resp.Header.Get("Content-Encoding"), raw)
	if err != nil {
		return err
	}
	res.Body = string(body)
	return nil
}

func decode(enc string, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return b, nil
	}
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return b, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		return io.ReadAll(zr)
	case "deflate":
		if zr, err := zlib.NewReader(bytes.NewReader(b)); err == nil {
			return io.ReadAll(zr)
		}
		return io.ReadAll(flate.NewReader(bytes.NewReader(b)))
	default:
		return nil, errors.New("unknown Content-Encoding " + strconv.Quote(enc))
	}
}
