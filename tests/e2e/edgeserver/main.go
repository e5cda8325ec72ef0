// Command edgeserver is the HTTP/1.x server of the end-to-end tests: a Go
// net/http server with handlers for the cases a sniffer gets wrong
// (chunked with trailers, gzip and deflate, HEAD, 204, 304, 100-continue,
// large bodies, close-delimited bodies, echo). Every response carries the
// request's id query parameter back in an X-Req-Id header so that a test
// can tell which request a captured response answers.
//
//	edgeserver -listen 198.18.1.2:8080 -listen [2001:2:0:1::2]:8080
//
// It prints "ready" on stdout once every listener is bound and stops on
// SIGTERM or SIGINT.
package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type listenFlags []string

func (l *listenFlags) String() string     { return strings.Join(*l, ",") }
func (l *listenFlags) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var listen listenFlags
	flag.Var(&listen, "listen", "address to listen on (repeatable)")
	flag.Parse()
	if len(listen) == 0 {
		listen = listenFlags{"127.0.0.1:8080"}
	}
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	errc := make(chan error, len(listen))
	for _, a := range listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			log.Fatalf("listen %s: %v", a, err)
		}
		go func() { errc <- srv.Serve(ln) }()
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Printf("edgeserver: %v, stopping", s)
	case err := <-errc:
		log.Fatalf("serve: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// Text returns n bytes of deterministic, readable text that names the id,
// so a body can be checked byte for byte and tells whose it is.
func Text(id string, n int) string {
	var b strings.Builder
	line := 0
	for b.Len() < n {
		fmt.Fprintf(&b, "id=%s line %05d: the quick brown fox jumps over the lazy dog\n", id, line)
		line++
	}
	return b.String()[:n]
}

// Handler returns the server's routes.
func Handler() http.Handler {
	mux := http.NewServeMux()

	// /text?size=N: a text body with Content-Length (HEAD gets the length only).
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		body := Text(id(r), intArg(r, "size", 64))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		io.WriteString(w, body)
	})

	// /utf8: non-ASCII text.
	mux.HandleFunc("/utf8", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "id=%s héllo wörld ✓ 日本語 \"quoted\" back\\slash\ttab\n", id(r))
	})

	// /json: a JSON body.
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"items":[1,2,3],"nested":{"ok":true}}`, id(r))
	})

	// /chunked?n=N&size=S: N flushed chunks of S bytes and two trailers.
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		n, size := intArg(r, "n", 5), intArg(r, "size", 100)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Trailer", "X-Checksum, X-Chunks")
		body := Text(id(r), n*size)
		f := w.(http.Flusher)
		for i := 0; i < n; i++ {
			io.WriteString(w, body[i*size:(i+1)*size])
			f.Flush()
		}
		w.Header().Set("X-Checksum", strconv.Itoa(len(body)))
		w.Header().Set("X-Chunks", strconv.Itoa(n))
	})

	// /gzip?size=N: gzip-encoded text with Content-Length.
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		io.WriteString(zw, Text(id(r), intArg(r, "size", 2000)))
		zw.Close()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	})

	// /gzip-chunked?size=N: gzip-encoded text sent chunked.
	mux.HandleFunc("/gzip-chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		body := Text(id(r), intArg(r, "size", 20000))
		f := w.(http.Flusher)
		for len(body) > 0 {
			k := min(len(body), 4000)
			io.WriteString(zw, body[:k])
			zw.Flush()
			f.Flush()
			body = body[k:]
		}
		zw.Close()
	})

	// /deflate: zlib-wrapped deflate (HTTP's "deflate").
	mux.HandleFunc("/deflate", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		io.WriteString(zw, Text(id(r), intArg(r, "size", 3000)))
		zw.Close()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "deflate")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	})

	// /nocontent: 204.
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})

	// /etag: 200 with an ETag, 304 when If-None-Match matches.
	mux.HandleFunc("/etag", func(w http.ResponseWriter, r *http.Request) {
		const tag = `"v1"`
		w.Header().Set("ETag", tag)
		if r.Header.Get("If-None-Match") == tag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "etag body id="+id(r)+"\n")
	})

	// /echo: the request body back, with the request's Content-Type and
	// Content-Encoding (so a gzip request body comes back gzip-encoded).
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if ce := r.Header.Get("Content-Encoding"); ce != "" {
			w.Header().Set("Content-Encoding", ce)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})

	// /upload: reads the body (net/http answers Expect: 100-continue when
	// the body is first read) and reports its length.
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q,"received":%d}`, id(r), n)
	})

	// /status?code=N: any status with a small body (none for 1xx/204/304).
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		code := intArg(r, "code", 200)
		if code == http.StatusFound || code == http.StatusMovedPermanently {
			w.Header().Set("Location", "/text?id="+id(r))
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d id=%s\n", code, id(r))
	})

	// /close: a response without Content-Length or chunking, delimited by
	// the server closing the connection.
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		body := Text(id(r), intArg(r, "size", 3000))
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Req-Id: %s\r\nConnection: close\r\n\r\n%s", id(r), body)
		bw.Flush()
	})

	// /slow: headers first, the body after a pause.
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "12")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "slow body.\r\n")
	})

	return withID(mux)
}

// withID copies the id query parameter into an X-Req-Id response header.
func withID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("id"); v != "" {
			w.Header().Set("X-Req-Id", v)
		}
		h.ServeHTTP(w, r)
	})
}

func id(r *http.Request) string { return r.URL.Query().Get("id") }

func intArg(r *http.Request, name string, def int) int {
	if v, err := strconv.Atoi(r.URL.Query().Get(name)); err == nil {
		return v
	}
	return def
}
