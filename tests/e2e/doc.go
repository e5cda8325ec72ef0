// Package e2e holds apitap's end-to-end tests: real HTTP traffic between
// two network namespaces is mirrored by the kernel (tc mirred into a VXLAN
// device, the encapsulation AWS VPC Traffic Mirroring produces) to the
// sniffer in a third namespace, which publishes to a real Kafka broker;
// the records read back with kcat are compared with what the client sent
// and received.
//
// Topology (all addresses in 198.18.0.0/15 and 2001:2::/48):
//
//	client ns                server ns                          sniffer ns
//	eth0 198.18.1.1  <-veth-> cli0 198.18.1.2                     lo: kafka 127.0.0.1:9092
//	     2001:2:0:1::1        2001:2:0:1::2
//	                          nginx :80, edgeserver :8080
//	                          tc clsact on cli0, ingress+egress:
//	                          mirred mirror -> vx0 (VNI 4242)
//	                          mir0 198.18.2.1  <-veth, mtu 9000-> eth0 198.18.2.2
//	                                                              sniffer :4789 (clean run)
//	                                                              relay :4789 -> sniffer 127.0.0.1:4799 (impaired run)
//
// The tests need root and the tools of scripts/test-deps.sh; they skip
// without root and fail when a tool is missing. Set APITAP_RECORD_CAPTURE
// to a path to keep the clean run's capture of the mirror path there (that
// is how testdata/demo.pcap is made).
package e2e
