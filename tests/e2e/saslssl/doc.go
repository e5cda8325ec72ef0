// Package saslssl is the end-to-end test of the Kafka settings the stack
// writes for a broker as production runs it: TLS with a private CA and
// SASL/SCRAM-SHA-512. A real broker (tests/kafkatest) and the sniffer run
// in network namespaces of their own; the sniffer gets exactly the
// environment that the stack's user data writes to /etc/apitap/sniffer.env,
// read the way systemd reads an EnvironmentFile.
package saslssl
