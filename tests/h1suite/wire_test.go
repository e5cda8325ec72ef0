package h1suite

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The wire: a strict server (Go's net/http, in process, on 127.0.0.1) and a
// client that sends a case's bytes and records both directions exactly as
// they crossed the socket, in the order it saw them.

// served is one request the server read completely and answered with an
// echo id.
type served struct {
	method, target string
	body           []byte
}

// echoServer answers every request it can read with 200 and X-Echo-Id: n,
// n counting the requests served on the connection from 1, and remembers
// what it read, so that a pair can be checked against the request the
// response was really for. Requests it cannot read get the 4xx/5xx that
// net/http sends by itself.
type echoServer struct {
	addr string

	mu    sync.Mutex
	conns map[string][]served // by the client's address
}

func startEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1 for the echo server: %v", err)
	}
	s := &echoServer{addr: ln.Addr().String(), conns: make(map[string][]served)}
	srv := &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		ReadHeaderTimeout: 5 * time.Second,
		// "OPTIONS *" is a request like any other here: it gets an echo id.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     log.New(io.Discard, "", 0), // refusing bad requests is what it is here for
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *echoServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// A body that cannot be read (a bad chunk): refused like a bad head,
		// and the connection ends, since where the next request starts is
		// not known.
		w.Header().Set("Connection", "close")
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	list := append(s.conns[r.RemoteAddr], served{method: r.Method, target: r.RequestURI, body: body})
	s.conns[r.RemoteAddr] = list
	s.mu.Unlock()
	w.Header().Set("X-Echo-Id", strconv.Itoa(len(list)))
	w.Write([]byte("ok\n"))
}

// servedOn returns what the server served on the connection from client.
func (s *echoServer) servedOn(client string) []served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[client]
}

// event is one thing seen on the socket: bytes of a direction (0: client to
// server, 1: server to client) or the end of a direction (a FIN).
type event struct {
	dir  int
	data []byte
	end  bool
}

// recordingConn logs what the client writes and reads. It wraps the
// connection instead of embedding it so that nothing (bufio's WriteTo,
// io.Copy's ReaderFrom) can reach the socket around Read and Write.
type recordingConn struct {
	conn   *net.TCPConn
	events []event
}

func (c *recordingConn) Write(b []byte) (int, error) {
	n, err := c.conn.Write(b)
	if n > 0 {
		c.events = append(c.events, event{dir: 0, data: bytes.Clone(b[:n])})
	}
	return n, err
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.conn.Read(b)
	if n > 0 {
		c.events = append(c.events, event{dir: 1, data: bytes.Clone(b[:n])})
	}
	if errors.Is(err, io.EOF) {
		c.events = append(c.events, event{dir: 1, end: true})
	}
	return n, err
}

// piece is a part of a case's client bytes written at once; method is the
// method net/http reads in it, "" when it reads no complete request there.
type piece struct {
	data   []byte
	method string
}

// splitRequests cuts input where net/http's request reader (the server's)
// sees requests end. What follows the first request it cannot read is one
// last piece.
func splitRequests(input []byte) []piece {
	var pieces []piece
	rest := input
	for len(rest) > 0 {
		src := bytes.NewReader(rest)
		br := bufio.NewReader(src)
		req, err := http.ReadRequest(br)
		if err == nil {
			_, err = io.Copy(io.Discard, req.Body)
		}
		if err != nil {
			return append(pieces, piece{data: rest})
		}
		n := len(rest) - src.Len() - br.Buffered()
		pieces = append(pieces, piece{data: rest[:n], method: req.Method})
		rest = rest[n:]
	}
	return pieces
}

// conversation is what one connection carried, as the client saw it.
type conversation struct {
	events  []event
	served  []served // what the server served, in order
	sentAll bool     // every byte of the input was written
}

// converse sends pieces to the server on a new connection. Sequentially it
// writes a piece and, if net/http reads a request there, waits for its
// final response before the next; pipelined it writes everything at once.
// Then it waits for the responses of the requests written, half-closes (the
// client's FIN) and reads until the server closes.
func converse(s *echoServer, pieces []piece, pipelined bool) (conversation, error) {
	raw, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return conversation{}, fmt.Errorf("dial the echo server at %s: %w", s.addr, err)
	}
	defer raw.Close()
	c := &recordingConn{conn: raw.(*net.TCPConn)}
	// A bound on a case that makes a peer wait for bytes that never come.
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)

	if pipelined {
		var all []byte
		var methods []string
		for _, p := range pieces {
			all = append(all, p.data...)
			if p.method != "" {
				methods = append(methods, p.method)
			}
		}
		pieces = []piece{{data: all}}
		_, err := c.Write(all)
		if err == nil {
			for _, m := range methods {
				if readFinalResponse(br, m) != nil {
					break
				}
			}
		}
	} else {
		for _, p := range pieces {
			if _, err := c.Write(p.data); err != nil {
				break
			}
			if p.method != "" && readFinalResponse(br, p.method) != nil {
				break // the server closed: what is left cannot be sent
			}
		}
	}
	conv := conversation{sentAll: sentBytes(c.events) == totalLen(pieces)}
	if err := c.conn.CloseWrite(); err == nil {
		c.events = append(c.events, event{dir: 0, end: true})
	}
	io.Copy(io.Discard, br) // until the server closes (or the deadline)
	conv.events = c.events
	conv.served = s.servedOn(raw.LocalAddr().String())
	return conv, nil
}

// readFinalResponse reads one response to a request with method, skipping
// interim (1xx) ones.
func readFinalResponse(br *bufio.Reader, method string) error {
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return nil
		}
	}
}

func sentBytes(events []event) int {
	n := 0
	for _, e := range events {
		if e.dir == 0 {
			n += len(e.data)
		}
	}
	return n
}

func totalLen(pieces []piece) int {
	n := 0
	for _, p := range pieces {
		n += len(p.data)
	}
	return n
}
