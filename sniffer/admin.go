package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/histogram"
	"github.com/apitap/apitap/internal/vnicount"
)

// admin serves the load balancer's TCP health check and the HTTP admin
// endpoints.
type admin struct {
	health net.Listener
	http   net.Listener
	srv    *http.Server
}

// addr is the admin HTTP address, nil when disabled.
func (a *admin) addr() net.Addr {
	if a.http == nil {
		return nil
	}
	return a.http.Addr()
}

func (s *sniffer) startAdmin() (*admin, error) {
	a := &admin{}
	if s.o.healthAddr != "" {
		l, err := net.Listen("tcp", s.o.healthAddr)
		if err != nil {
			return nil, fmt.Errorf("listening for health checks on %s: %w", s.o.healthAddr, err)
		}
		a.health = l
		go func() {
			// The NLB's TCP health check only needs the handshake.
			for {
				c, err := l.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				c.Close()
			}
		}()
	}
	if s.o.adminAddr != "" {
		l, err := net.Listen("tcp", s.o.adminAddr)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("listening for admin HTTP on %s: %w", s.o.adminAddr, err)
		}
		a.http = l
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg.MustRegister(s.collector())
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, "ok")
		})
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if err := s.ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /inventory", s.serveInventory)
		a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go a.srv.Serve(l)
	}
	return a, nil
}

func (a *admin) close() {
	if a.health != nil {
		a.health.Close()
	}
	if a.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.srv.Shutdown(ctx)
	}
}

// serveInventory answers the API inventory as JSON (README, "Health and
// metrics", describes it).
func (s *sniffer) serveInventory(w http.ResponseWriter, _ *http.Request) {
	if s.inventory == nil {
		http.Error(w, "no inventory: -inventory-max-endpoints is 0", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := s.inventory.Snapshot().WriteJSON(w); err != nil {
		s.log.Debug("writing /inventory", "err", err)
	}
}

// ready is nil when records can flow: the broker answers and no queue is
// overflowing.
func (s *sniffer) ready() error {
	var errs []error
	if s.sink != nil {
		if err := s.sink.Ready(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// collector exports every package's counters. Names are
// apitap_sniffer_<stage>_<counter>; decode outcomes carry a reason label.
type collector struct{ s *sniffer }

func (s *sniffer) collector() prometheus.Collector { return collector{s} }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	// Unchecked collector: the set of metrics is fixed but built from the
	// packages' Each methods.
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	counter := func(stage string) func(string, uint64) {
		return func(name string, v uint64) {
			if stage == "capture" && strings.HasPrefix(name, "decode_") {
				desc := prometheus.NewDesc("apitap_sniffer_decode_total", "Frames by decode outcome (ok or the reason they were skipped).", []string{"reason"}, nil)
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), strings.TrimPrefix(name, "decode_"))
				return
			}
			kind, full := prometheus.CounterValue, "apitap_sniffer_"+stage+"_"+name+"_total"
			if stage == "kafka" && strings.HasPrefix(name, "queue_") {
				kind, full = prometheus.GaugeValue, "apitap_sniffer_"+stage+"_"+name
			}
			desc := prometheus.NewDesc(full, helpFor(stage, name), nil, nil)
			ch <- prometheus.MustNewConstMetric(desc, kind, float64(v))
		}
	}
	s.captureStats.Each(counter("capture"))
	if l := s.listener; l != nil {
		if n, err := l.KernelDrops(); err == nil {
			ch <- prometheus.MustNewConstMetric(kernelDropsDesc, prometheus.CounterValue, float64(n))
		} else {
			ch <- prometheus.NewInvalidMetric(kernelDropsDesc, err)
		}
	}
	s.flowStats.Each(counter("flow"))
	s.flowStats.Gauges(func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("apitap_sniffer_flow_"+name, helpFor("flow", name), nil, nil), prometheus.GaugeValue, v)
	})
	s.httpStats.Each(counter("http"))
	if b := s.o.recorder.HTTP.Budget; b != nil {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("apitap_sniffer_http_body_memory_bytes", "Body bytes held by all connections (see -max-body-memory).", nil, nil), prometheus.GaugeValue, float64(b.Used()))
	}
	s.recorderStats.Each(counter("recorder"))
	if sink := s.sink; sink != nil {
		sink.Stats().Each(counter("kafka"))
		ch <- latencyHistogram(kafkaDeliveryLatencyDesc, sink.DeliveryLatency())
	}
	c.collectVNIs(ch)
	if inv := s.inventory; inv != nil {
		st := inv.Stats()
		ch <- prometheus.MustNewConstMetric(inventoryEndpointsDesc, prometheus.GaugeValue, float64(st.Endpoints))
		ch <- prometheus.MustNewConstMetric(inventoryDroppedDesc, prometheus.CounterValue, float64(st.Dropped))
	}
}

var (
	vniRecordsDesc = prometheus.NewDesc(contract.PromVNIRecords, "Records published, per VNI (at most -max-vnis VNIs, the rest as vni=\"other\").", []string{contract.PromLabelVNI}, nil)
	vniPairsDesc   = prometheus.NewDesc(contract.PromVNIPairs, "Records published that pair a request with its response (not pending), per VNI.", []string{contract.PromLabelVNI}, nil)
	vniBytesDesc   = prometheus.NewDesc(contract.PromVNIBytes, "Bytes of the records published (encoded JSON), per VNI.", []string{contract.PromLabelVNI}, nil)
	// vniRateLimitedDesc: apitap_sniffer_recorder_records_rate_limited_total
	// is the sum over VNIs.
	vniRateLimitedDesc = prometheus.NewDesc("apitap_sniffer_vni_rate_limited_total", "Records dropped by -vni-rate-limit, per VNI (at most -max-vnis VNIs, the rest as vni=\"other\").", []string{contract.PromLabelVNI}, nil)

	// kafkaDeliveryLatencyDesc: the live benchmark reads it by this name.
	kafkaDeliveryLatencyDesc = prometheus.NewDesc("apitap_sniffer_kafka_delivery_latency_seconds", "Time from the capture of an exchange's last packet to the broker's acknowledgement of its record.", nil, nil)

	kernelDropsDesc = prometheus.NewDesc("apitap_sniffer_capture_kernel_drops_total", "Datagrams the kernel dropped because a capture socket's receive buffer was full (-rcvbuf): the sniffer fell behind for longer than the buffer lasts.", nil, nil)

	inventoryEndpointsDesc = prometheus.NewDesc("apitap_sniffer_inventory_endpoints", "Endpoints kept in the API inventory (at most -inventory-max-endpoints).", nil, nil)
	inventoryDroppedDesc   = prometheus.NewDesc("apitap_sniffer_inventory_dropped_total", "Records of endpoints the API inventory did not keep because it was full.", nil, nil)
)

// collectVNIs exports the per-VNI counters (names in internal/contract:
// the fleet's metrics timer reads them).
func (c collector) collectVNIs(ch chan<- prometheus.Metric) {
	c.s.vnis.Each(func(vni uint32, other bool, n vnicount.Counts) {
		label := vniLabel(vni, other)
		ch <- prometheus.MustNewConstMetric(vniRecordsDesc, prometheus.CounterValue, float64(n.Records), label)
		ch <- prometheus.MustNewConstMetric(vniPairsDesc, prometheus.CounterValue, float64(n.Pairs), label)
		ch <- prometheus.MustNewConstMetric(vniBytesDesc, prometheus.CounterValue, float64(n.Bytes), label)
	})
	c.s.rec.EachRateLimited(func(vni uint32, other bool, n uint64) {
		ch <- prometheus.MustNewConstMetric(vniRateLimitedDesc, prometheus.CounterValue, float64(n), vniLabel(vni, other))
	})
}

// latencyHistogram turns a histogram snapshot into a Prometheus histogram.
func latencyHistogram(desc *prometheus.Desc, h histogram.Snapshot) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b.Seconds()] = h.Cumulative[i]
	}
	return prometheus.MustNewConstHistogram(desc, h.Count, h.Sum.Seconds(), buckets)
}

func vniLabel(vni uint32, other bool) string {
	if other {
		return contract.PromVNIOther
	}
	return strconv.FormatUint(uint64(vni), 10)
}

func helpFor(stage, name string) string {
	return fmt.Sprintf("apitap sniffer %s: %s (see README, Metrics).", stage, strings.ReplaceAll(name, "_", " "))
}
