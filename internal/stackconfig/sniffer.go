package stackconfig

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apitap/apitap/internal/contract"
)

// Ports of the sniffer (README "Health and metrics").
const (
	VXLANPort  = 4789
	HealthPort = 8081
	AdminPort  = 9090
)

// SASLMechanism is the sniffer's -kafka-sasl value for an authentication
// choice ("" for none).
func SASLMechanism(a KafkaAuth) string {
	switch a {
	case KafkaAuthSCRAMSHA512:
		return "SCRAM-SHA-512"
	case KafkaAuthSCRAMSHA256:
		return "SCRAM-SHA-256"
	case KafkaAuthIAM:
		return "AWS_MSK_IAM"
	}
	return ""
}

// SnifferEnvLines are the content of /etc/apitap/sniffer.env, one KEY=value a
// line, sorted (SASL/SCRAM credentials are appended at boot from Secrets
// Manager, never stored in the template).
func (c Config) SnifferEnvLines() []string {
	env := map[string]string{
		contract.SnifferEnv(contract.SnifferFlagKafka):      strings.Join(c.KafkaBrokers, ","),
		contract.SnifferEnv(contract.SnifferFlagTopic):      c.KafkaTopic,
		contract.SnifferEnv(contract.SnifferFlagKafkaTLS):   fmt.Sprint(c.KafkaTLS),
		contract.SnifferEnv(contract.SnifferFlagAccountID):  c.AktoAccountID,
		contract.SnifferEnv(contract.SnifferFlagListen):     fmt.Sprintf(":%d", VXLANPort),
		contract.SnifferEnv(contract.SnifferFlagHealthAddr): fmt.Sprintf(":%d", HealthPort),
		contract.SnifferEnv(contract.SnifferFlagAdminAddr):  fmt.Sprintf("127.0.0.1:%d", AdminPort),
		contract.SnifferEnv(contract.SnifferFlagLogFormat):  "json",
		// For MSK IAM request signing (the SDK's default configuration).
		contract.EnvRegion: c.Region,
	}
	if m := SASLMechanism(c.KafkaAuth); m != "" {
		env[contract.SnifferEnv(contract.SnifferFlagKafkaSASL)] = m
	}
	c.volumeEnv(env)
	for k, v := range c.SnifferEnv {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	var lines []string
	for k, v := range env {
		lines = append(lines, k+"="+v)
	}
	sort.Strings(lines)
	return lines
}
