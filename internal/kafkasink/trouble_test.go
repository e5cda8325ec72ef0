package kafkasink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestTrouble: a wrong SASL password and a broker certificate the sink does
// not trust are settings to fix, not "broker unreachable".
func TestTrouble(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("kafka: probing brokers b:9096: %w", kafka.SASLAuthenticationFailed):                                       "SASL authentication failed",
		fmt.Errorf("kafka: probing brokers b:9096: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}): "broker's TLS certificate not trusted",
		fmt.Errorf("kafka: probing brokers b:9096: %w", x509.HostnameError{}):                                                 "broker's TLS certificate not trusted",
		fmt.Errorf("kafka: probing brokers b:9096: %w", io.ErrUnexpectedEOF):                                                  "broker unreachable",
	} {
		if got := trouble(err); got != want {
			t.Errorf("trouble(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestReadyUntrustedCertificate: against a broker whose certificate it does
// not trust, Ready and the log say so. (The SASL case needs a real broker:
// kfake closes the connection instead of answering the failed
// authentication; tests/e2e/saslssl covers it.)
func TestReadyUntrustedCertificate(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	logs := &lockedBuffer{}
	s := newSink(t, Config{Brokers: c.ListenAddrs(), TLS: true,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs, tWriter{t}), nil))})
	defer s.Close(t.Context())
	const want = "kafka: broker's TLS certificate not trusted: kafka: probing brokers "
	waitFor(t, "Ready to fail", 10*time.Second, func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), want)
	})
	waitFor(t, "the log line", 5*time.Second, func() bool {
		return strings.Contains(logs.String(), `msg="kafka broker's TLS certificate not trusted"`)
	})
}

// lockedBuffer collects log output written from the sink's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// selfSigned is a certificate for 127.0.0.1 that nothing trusts.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "broker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
