package stack

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/jsii-runtime-go"

	"github.com/apitap/apitap/internal/contract"
)

// Paths on the sniffer instances.
const (
	SnifferPath    = "/usr/local/bin/apitap-sniffer"
	SnifferEnvFile = "/etc/apitap/sniffer.env"
	SysctlFile     = "/etc/sysctl.d/90-apitap.conf"
	UnitPath       = "/etc/systemd/system/apitap-sniffer.service"
	MetricsScript  = "/usr/local/bin/apitap-sniffer-metrics"
)

// Socket-buffer sysctls: the sniffer asks for 64 MiB receive buffers
// (README "The sniffer"), which the kernel caps at net.core.rmem_max.
var Sysctls = [][2]string{
	{"net.core.rmem_max", "67108864"},
	{"net.core.rmem_default", "67108864"},
	{"net.core.netdev_max_backlog", "30000"},
}

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

// userData installs and starts the sniffer on first boot. Every value in
// it was validated by Config.Validate (no quotes, newlines or '$'), and
// every here-document is quoted, so nothing in it is expanded by the
// shell.
func (s *Stack) userData(binary awss3assets.Asset, unit string) awsec2.UserData {
	cfg := s.Config
	ud := awsec2.UserData_ForLinux(&awsec2.LinuxUserDataOptions{Shebang: jsii.String("#!/bin/bash")})
	ud.AddCommands(jsii.String("set -euo pipefail"),
		jsii.String("# apitap sniffer, stack "+cfg.StackName))

	var sysctl strings.Builder
	for _, kv := range Sysctls {
		fmt.Fprintf(&sysctl, "%s=%s\n", kv[0], kv[1])
	}
	ud.AddCommands(jsii.String(heredoc(SysctlFile, "0644", sysctl.String())), jsii.String("sysctl --system >/dev/null"))

	local := "/tmp/apitap-sniffer"
	ud.AddS3DownloadCommand(&awsec2.S3DownloadOptions{
		Bucket:    binary.Bucket(),
		BucketKey: binary.S3ObjectKey(),
		LocalFile: jsii.String(local),
		Region:    jsii.String(cfg.Region),
	})
	ud.AddCommands(jsii.String(fmt.Sprintf("install -m 0755 %s %s && rm -f %s", local, SnifferPath, local)))

	ud.AddCommands(jsii.String("install -d -m 0755 /etc/apitap"),
		jsii.String(heredoc(SnifferEnvFile, "0600", strings.Join(cfg.SnifferEnvLines(), "\n")+"\n")))
	if cfg.KafkaAuth == KafkaAuthSCRAMSHA256 || cfg.KafkaAuth == KafkaAuthSCRAMSHA512 {
		// The password never enters the template: it is read at boot and
		// appended to the root-only environment file.
		ud.AddCommands(jsii.String(fmt.Sprintf(
			`aws secretsmanager get-secret-value --region %s --secret-id '%s' --query SecretString --output text | python3 -c %s >>%s`,
			cfg.Region, cfg.KafkaSecretARN, shellQuote(SecretToEnv), SnifferEnvFile)))
	}

	ud.AddCommands(jsii.String(heredoc(UnitPath, "0644", unit)))
	ud.AddCommands(jsii.String(heredoc(MetricsScript, "0755", s.metricsScript())),
		jsii.String(heredoc("/etc/systemd/system/apitap-sniffer-metrics.service", "0644", metricsService)),
		jsii.String(heredoc("/etc/systemd/system/apitap-sniffer-metrics.timer", "0644", metricsTimer)))
	ud.AddCommands(jsii.String("systemctl daemon-reload"),
		jsii.String("systemctl enable --now apitap-sniffer.service apitap-sniffer-metrics.timer"))
	return ud
}

// SecretToEnv is the Python program the user data runs at boot: it turns the Secrets Manager secret {"username","password"}
// (Amazon MSK's SASL/SCRAM format) into quoted systemd environment lines.
var SecretToEnv = fmt.Sprintf(`import json, sys
s = json.load(sys.stdin)
q = lambda v: chr(34) + v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)) + chr(34)
print("%s=" + q(s["username"]))
print("%s=" + q(s["password"]))`, contract.SnifferEnv(contract.SnifferFlagUsername), contract.SnifferEnv(contract.SnifferFlagPassword))

// DropMetrics are the sniffer counters whose increase is published as the
// CloudWatch metric Drops: records or packets lost inside the sniffer.
var DropMetrics = []string{
	"apitap_sniffer_kafka_dropped_queue_full_total",
	"apitap_sniffer_kafka_dropped_too_large_total",
	"apitap_sniffer_kafka_dropped_on_close_total",
	"apitap_sniffer_kafka_failed_total",
	"apitap_sniffer_flow_queue_drops_total",
	"apitap_sniffer_flow_conn_table_full_total",
	"apitap_sniffer_recorder_records_refused_total",
	"apitap_sniffer_recorder_records_too_large_total",
}

// metricsScript publishes, once a minute, how much the drop counters grew
// since the last run.
func (s *Stack) metricsScript() string {
	return fmt.Sprintf(`#!/bin/bash
# Publishes the growth of the apitap sniffer's drop counters since the last
# run as the CloudWatch metric %[1]s/Drops (dimension Stack), for the
# stack's "sniffer drops" alarm.
set -euo pipefail
state=/var/lib/apitap-metrics/drops
mkdir -p "${state%%/*}"
metrics=$(curl -fsS --max-time 5 http://127.0.0.1:%[2]d/metrics) || exit 0
now=$(printf '%%s\n' "$metrics" | awk '$1 ~ /^(%[3]s)(\{.*\})?$/ { s += $2 } END { printf "%%d", s }')
last=$(cat "$state" 2>/dev/null || echo "$now")
echo "$now" >"$state"
delta=$((now - last))
if [ "$delta" -lt 0 ]; then delta=$now; fi # the sniffer restarted
aws cloudwatch put-metric-data --region %[4]s --namespace %[1]s --metric-name Drops --unit Count \
	--value "$delta" --dimensions Stack=%[5]s
`, s.Names.MetricsNamespace, AdminPort, strings.Join(DropMetrics, "|"), s.Config.Region, s.Config.StackName)
}

const metricsService = `[Unit]
Description=apitap: publish the sniffer's drop counters to CloudWatch
After=apitap-sniffer.service

[Service]
Type=oneshot
ExecStart=/usr/local/bin/apitap-sniffer-metrics
`

const metricsTimer = `[Unit]
Description=apitap: publish the sniffer's drop counters every minute

[Timer]
OnBootSec=2min
OnUnitActiveSec=1min

[Install]
WantedBy=timers.target
`

// heredoc writes content to path with mode, unexpanded.
func heredoc(path, mode, content string) string {
	const eof = "APITAP_EOF"
	if !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return fmt.Sprintf("install -m %s /dev/null %s\ncat >%s <<'%s'\n%s%s", mode, path, path, eof, content, eof)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
