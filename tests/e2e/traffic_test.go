package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/tests/e2e/clientscript"
)

// The client's script and results (see ./clientscript).
type (
	Script  = clientscript.Script
	Conn    = clientscript.Conn
	Request = clientscript.Request
	Result  = clientscript.Result
)

var (
	nginxV4 = net.JoinHostPort(serverV4, "80")
	nginxV6 = net.JoinHostPort(serverV6, "80")
	edgeV4  = net.JoinHostPort(serverV4, "8080")
	edgeV6  = net.JoinHostPort(serverV6, "8080")
)

// scriptBuilder hands out request ids.
type scriptBuilder struct {
	s    Script
	next int
}

// conn adds a connection with the given requests; each request's path
// gets "id=N" appended to its query.
func (b *scriptBuilder) conn(addr string, pipeline bool, reqs ...Request) {
	c := Conn{Addr: addr, Pipeline: pipeline}
	for _, r := range reqs {
		b.next++
		r.ID = strconv.Itoa(b.next)
		sep := "?"
		if strings.Contains(r.Path, "?") {
			sep = "&"
		}
		r.Path += sep + "id=" + r.ID
		if r.Method == "" {
			r.Method = "GET"
		}
		c.Requests = append(c.Requests, r)
	}
	b.s.Conns = append(b.s.Conns, c)
}

func get(path string, headers ...[2]string) Request {
	return Request{Method: "GET", Path: path, Headers: headers}
}

var gzipOK = [2]string{"Accept-Encoding", "gzip"}

// text returns n bytes of readable text, different per seed.
func text(seed string, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s payload line %04d, some JSON-ish {\"k\":\"v\"} and a tab\t.\n", seed, i)
	}
	return b.String()[:n]
}

// cleanScript is the clean run's traffic: a few dozen requests that mix
// nginx and the edge cases of edgeserver. It is also what
// testdata/demo.pcap holds, so keep its bytes modest (the capture must stay
// well under 1 MB).
func cleanScript() Script {
	var b scriptBuilder
	b.s.Parallel = 3
	// nginx, one keep-alive connection: static files of several sizes,
	// gzip, HEAD, 404, 301, 304, 206, 405.
	b.conn(nginxV4, false,
		get("/index.html", gzipOK),
		get("/small.txt"),
		Request{Method: "HEAD", Path: "/big.dat"},
		get("/big.dat"),
		get("/medium.json", gzipOK),
		get("/missing.txt"),
		get("/dir"),
		get("/small.txt", [2]string{"If-Modified-Since", "Tue, 01 Jan 2036 00:00:00 GMT"}),
		get("/big.dat", [2]string{"Range", "bytes=100-299"}),
		Request{Method: "POST", Path: "/small.txt", Body: "a=1&b=2", Headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}},
	)
	// nginx, pipelined.
	b.conn(nginxV4, true,
		get("/small.txt"),
		get("/index.html"),
		Request{Method: "HEAD", Path: "/medium.json"},
		get("/missing.txt"),
	)
	// nginx over IPv6.
	b.conn(nginxV6, false, get("/index.html", gzipOK), get("/small.txt"))

	// edgeserver: response framing and content codings.
	b.conn(edgeV4, false,
		get("/chunked?n=6&size=300"),
		get("/gzip?size=3000"),
		get("/gzip-chunked?size=12000"),
		get("/deflate?size=2500"),
		Request{Method: "HEAD", Path: "/text?size=5000"},
		Request{Method: "DELETE", Path: "/nocontent"},
		get("/etag", [2]string{"If-None-Match", `"v1"`}),
		get("/etag"),
		get("/json"),
		get("/utf8"),
		Request{Method: "OPTIONS", Path: "/status?code=200"},
		get("/status?code=500"),
		get("/status?code=302"),
		get("/slow"),
	)
	// edgeserver: request bodies.
	b.conn(edgeV4, false,
		Request{Method: "POST", Path: "/echo", Body: text("chunked-req", 2500), Chunked: true, Headers: [][2]string{{"Content-Type", "text/plain"}}},
		Request{Method: "POST", Path: "/echo", Body: text("gzip-req", 1800), Gzip: true, Headers: [][2]string{{"Content-Type", "text/plain"}}},
		Request{Method: "PUT", Path: "/echo", Body: text("big-put", 30000), Headers: [][2]string{{"Content-Type", "text/plain"}}},
		Request{Method: "POST", Path: "/upload", Body: text("expect", 12000), Expect100: true},
		Request{Method: "PATCH", Path: "/echo", Body: `{"op":"replace","path":"/a","value":"ü"}`, Headers: [][2]string{{"Content-Type", "application/json"}}},
		Request{Method: "POST", Path: "/echo"}, // empty body, Content-Length: 0
	)
	// edgeserver, pipelined, with a body inside the pipeline.
	b.conn(edgeV4, true,
		get("/text?size=700"),
		Request{Method: "POST", Path: "/echo", Body: "pipelined body\n"},
		Request{Method: "HEAD", Path: "/text?size=900"},
		get("/chunked?n=3&size=50"),
		Request{Method: "DELETE", Path: "/nocontent"},
	)
	// HTTP/1.0 (the server closes after the response).
	b.conn(edgeV4, false, Request{Method: "GET", Path: "/text?size=400", Proto: "HTTP/1.0"})
	// A large response, then one delimited by the connection's close.
	b.conn(edgeV4, false, get("/text?size=40000"), get("/close?size=2500"))
	// 100-continue on a fresh connection, then keep-alive reuse.
	b.conn(edgeV4, false,
		Request{Method: "POST", Path: "/upload", Body: "small expect body", Expect100: true},
		get("/text?size=100"),
	)
	// edgeserver over IPv6.
	b.conn(edgeV6, false,
		get("/gzip?size=1500"),
		Request{Method: "POST", Path: "/echo", Body: "over ipv6"},
	)
	return b.s
}

// impairedScript is the impaired run's traffic: many small requests on
// short keep-alive connections, made one connection at a time so that the
// sequence of datagrams, and with it what the seeded relay does to each,
// is nearly the same from run to run. After a gap in a connection the
// sniffer drops the requests it was waiting to pair (it cannot be sure
// which response answers which), so a lost datagram costs the requests
// around it, and short connections bound that cost.
func impairedScript() Script {
	var b scriptBuilder
	b.s.Parallel = 1
	for i := range 30 {
		var reqs []Request
		for j := range 3 {
			switch (i + j) % 6 {
			case 0:
				reqs = append(reqs, get("/text?size=300"))
			case 1:
				reqs = append(reqs, Request{Method: "POST", Path: "/echo", Body: text(fmt.Sprintf("c%dr%d", i, j), 200)})
			case 2:
				reqs = append(reqs, get("/chunked?n=2&size=80"))
			case 3:
				reqs = append(reqs, get("/gzip?size=600"))
			case 4:
				reqs = append(reqs, Request{Method: "DELETE", Path: "/nocontent"})
			case 5:
				reqs = append(reqs, get("/json"))
			}
		}
		b.conn(edgeV4, i%5 == 4, reqs...)
	}
	for range 4 {
		b.conn(nginxV4, false, get("/small.txt"), get("/index.html", gzipOK), get("/missing.txt"), Request{Method: "HEAD", Path: "/small.txt"})
	}
	b.conn(edgeV4, false, get("/text?size=6000"), Request{Method: "PUT", Path: "/echo", Body: text("imp-put", 5000)})
	b.conn(edgeV6, false, get("/utf8"), Request{Method: "POST", Path: "/echo", Body: "v6"})
	return b.s
}

// nginx writes the nginx configuration and document root into dir and
// returns the configuration's path.
func writeNginx(t *testing.T, dir string) string {
	t.Helper()
	www := filepath.Join(dir, "www")
	files := map[string]string{
		"index.html":     "<!doctype html>\n<html><head><title>apitap e2e</title></head><body>\n" + text("index", 1200) + "</body></html>\n",
		"small.txt":      "small static file served by nginx\n",
		"medium.json":    "{\"data\":\"" + strings.ReplaceAll(text("medium", 6000), "\n", " ") + "\"}\n",
		"big.dat":        text("big-static", 50000),
		"dir/index.html": "<html><body>dir index</body></html>\n",
	}
	for name, content := range files {
		p := filepath.Join(www, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		// A fixed past mtime: If-Modified-Since in 2036 gives a 304.
		old := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
		_ = os.Chtimes(p, old, old)
	}
	for _, d := range []string{"tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	types {
		text/html html;
		text/plain txt;
		application/json json;
		application/octet-stream dat;
	}
	default_type application/octet-stream;
	keepalive_timeout 60;
	keepalive_requests 10000;
	if_modified_since before;
	gzip on;
	gzip_min_length 20;
	gzip_types text/plain application/json;
	server {
		listen %[2]s:80;
		listen [%[3]s]:80;
		server_name _;
		root %[4]s;
		add_header X-Req-Id $arg_id always;
	}
}
`, dir, serverV4, serverV6, www)
	p := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
