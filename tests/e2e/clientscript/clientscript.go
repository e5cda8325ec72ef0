// Package clientscript is the JSON contract between the end-to-end test
// and ./edgeclient: the scripted requests in, what was sent and received out.
package clientscript

// Script is the client's input.
type Script struct {
	// Parallel is how many connections run at once (default 1).
	Parallel int    `json:"parallel"`
	Conns    []Conn `json:"conns"`
}

// Conn is one TCP connection and the requests made on it, in order.
type Conn struct {
	// Addr is the server's host:port.
	Addr string `json:"addr"`
	// Pipeline writes every request before reading the first response.
	Pipeline bool      `json:"pipeline,omitempty"`
	Requests []Request `json:"requests"`
}

// Request is one scripted request.
type Request struct {
	ID     string `json:"id"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Proto defaults to HTTP/1.1.
	Proto string `json:"proto,omitempty"`
	// Host defaults to the connection's Addr.
	Host    string      `json:"host,omitempty"`
	Headers [][2]string `json:"headers,omitempty"`
	Body    string      `json:"body,omitempty"`
	// Chunked sends the body with Transfer-Encoding: chunked.
	Chunked bool `json:"chunked,omitempty"`
	// Gzip sends the body gzip-compressed with Content-Encoding: gzip.
	Gzip bool `json:"gzip,omitempty"`
	// Expect100 sends the headers with Expect: 100-continue and the body
	// only after the server's 100 Continue.
	Expect100 bool `json:"expect100,omitempty"`
}

// Result is what the client sent and received for one request.
type Result struct {
	ID     string `json:"id"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Proto  string `json:"proto"`
	// RequestBody is the body before any encoding.
	RequestBody string `json:"requestBody"`
	Local       string `json:"local"`
	Remote      string `json:"remote"`
	// Start is the unix time in seconds when the request was written.
	Start      int64               `json:"start"`
	StatusCode int                 `json:"statusCode"`
	Status     string              `json:"status"`
	Headers    map[string][]string `json:"headers"`
	Trailers   map[string][]string `json:"trailers,omitempty"`
	// Body is the response body after transfer and content decoding.
	Body   string `json:"body"`
	Got100 bool   `json:"got100,omitempty"`
	Err    string `json:"err,omitempty"`

	// ConnIndex is the index of the request's connection in the script;
	// the test fills it in, the client does not send it.
	ConnIndex int `json:"-"`
}
