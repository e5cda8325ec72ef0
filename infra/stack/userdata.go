package stack

import (
	"encoding/json"
	"fmt"
	"path"
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

// Boot of a sniffer instance.
const (
	// SignalTimeoutMins is how long CloudFormation waits for a new
	// sniffer's signal, in a stack create and in each step of a rolling
	// update; BootReadyWaitS is how long the boot script waits for the
	// sniffer to be ready (Kafka reachable) before it signals failure.
	SignalTimeoutMins = 20
	BootReadyWaitS    = 600
	// BootTries is how often the boot script tries each download or
	// install before it gives up: waits of 2, 4, ... 60 seconds between
	// tries, about five minutes in all.
	BootTries = 8
	// AutoScalingGroupID is the logical id of the fleet's Auto Scaling
	// group, which the boot script signals.
	AutoScalingGroupID = "SnifferGroup"
	LogDir             = "/var/log/apitap"
	SnifferLog         = LogDir + "/sniffer.log"
	AgentConfig        = "/opt/aws/amazon-cloudwatch-agent/etc/apitap.json"
)

// userData installs and starts the sniffer on first boot, ships its logs
// to the stack's log group, and signals CloudFormation once the sniffer
// is ready, or that the boot failed. Every value in it was validated by
// Config.Validate (no quotes, newlines or '$'), and every here-document is
// quoted, so nothing in it is expanded by the shell.
func (s *Stack) userData(binary awss3assets.Asset, unit, logGroup string) awsec2.UserData {
	cfg := s.Config
	ud := awsec2.UserData_ForLinux(&awsec2.LinuxUserDataOptions{Shebang: jsii.String("#!/bin/bash")})
	add := func(lines ...string) {
		for _, l := range lines {
			ud.AddCommands(jsii.String(l))
		}
	}
	add("set -euo pipefail", "umask 022", "# apitap sniffer, stack "+cfg.StackName)
	add(fmt.Sprintf("region=%s stack=%s resource=%s", cfg.Region, cfg.StackName, AutoScalingGroupID))
	add(bootFunctions)
	add(`instance=$(retry imds instance-id)`,
		`trap 'rc=$?; if [ -z "$signalled" ]; then echo "apitap: boot failed (exit $rc), see the boot log" >&2; signal FAILURE; fi' EXIT`)

	var sysctl strings.Builder
	for _, kv := range Sysctls {
		fmt.Fprintf(&sysctl, "%s=%s\n", kv[0], kv[1])
	}
	add(heredoc(SysctlFile, "0644", sysctl.String()), "sysctl -q -p "+SysctlFile)

	local := "/tmp/apitap-sniffer"
	add(fmt.Sprintf("retry aws s3 cp --only-show-errors --region %s 's3://%s/%s' %s", cfg.Region, *binary.S3BucketName(), *binary.S3ObjectKey(), local),
		fmt.Sprintf("install -m 0755 %s %s && rm -f %s", local, SnifferPath, local))

	add("install -d -m 0755 /etc/apitap", heredoc(SnifferEnvFile, "0600", strings.Join(cfg.SnifferEnvLines(), "\n")+"\n"))
	if cfg.KafkaAuth == KafkaAuthSCRAMSHA256 || cfg.KafkaAuth == KafkaAuthSCRAMSHA512 {
		// The password never enters the template: it is read at boot and
		// appended to the root-only environment file.
		add(fmt.Sprintf(`secret() { (umask 077; aws secretsmanager get-secret-value --region %s --secret-id '%s' --query SecretString --output text | python3 -c %s >%s.secret); }`,
			cfg.Region, cfg.KafkaSecretARN, shellQuote(SecretToEnv), SnifferEnvFile),
			"retry secret",
			fmt.Sprintf("cat %[1]s.secret >>%[1]s && rm -f %[1]s.secret", SnifferEnvFile))
	}

	// The sniffer's memory budget follows the instance: half its memory
	// (the sniffer is the host's one workload; the page cache, the agent
	// and the kernel's socket buffers take the rest), unless the
	// configuration set one (apitap:snifferEnv).
	add(fmt.Sprintf(`grep -q '^%[1]s=' %[2]s || echo "%[1]s=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 2048 ))MiB" >>%[2]s`,
		contract.SnifferEnv(contract.SnifferFlagMemoryLimit), SnifferEnvFile))

	add(heredoc(UnitPath, "0644", unit))
	// The sniffer's output goes to a file the CloudWatch agent ships
	// (the agent reads files, not the journal); logrotate keeps it small.
	add("install -d -m 0755 "+LogDir+" "+UnitPath+".d",
		heredoc(UnitPath+".d/logs.conf", "0644", "[Service]\nStandardOutput=append:"+SnifferLog+"\nStandardError=append:"+SnifferLog+"\n"),
		heredoc("/etc/logrotate.d/apitap-sniffer", "0644", logrotateConfig),
		heredoc("/etc/systemd/system/apitap-logrotate.service", "0644", logrotateService),
		heredoc("/etc/systemd/system/apitap-logrotate.timer", "0644", logrotateTimer),
		"command -v logrotate >/dev/null || retry dnf install -y -q logrotate",
		"retry dnf install -y -q amazon-cloudwatch-agent",
		"install -d -m 0755 "+path.Dir(AgentConfig),
		heredoc(AgentConfig, "0644", agentConfig(logGroup)),
		"retry /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:"+AgentConfig+" >/dev/null")

	add(heredoc(MetricsScript, "0755", s.metricsScript()),
		heredoc("/etc/systemd/system/apitap-sniffer-metrics.service", "0644", metricsService),
		heredoc("/etc/systemd/system/apitap-sniffer-metrics.timer", "0644", metricsTimer))
	add("systemctl daemon-reload",
		"systemctl enable --now apitap-sniffer.service apitap-sniffer-metrics.timer apitap-logrotate.timer")

	// The health gate: a new sniffer counts only once it is ready (its
	// Kafka producer connected). A rolling update replaces the next
	// sniffer only after this one signals success; a failure, or no
	// signal within SignalTimeoutMins, rolls the update back.
	add(fmt.Sprintf(`for _ in $(seq %d); do
	if curl -fsS -m 5 -o /dev/null http://127.0.0.1:%d/readyz; then signal SUCCESS; exit 0; fi
	sleep 5
done
echo "apitap: the sniffer is not ready after %d s: $(curl -sS -m 5 http://127.0.0.1:%d/readyz 2>&1 || true)" >&2
exit 1`, BootReadyWaitS/5, AdminPort, BootReadyWaitS, AdminPort))
	return ud
}

// bootFunctions are the boot script's helpers. signal tells
// CloudFormation how the boot went; outside a stack create or update no
// signal is awaited and the call fails, which does not matter.
var bootFunctions = fmt.Sprintf(`signalled=
retry() {
	local try=1 wait=2
	until "$@"; do
		if [ "$try" -ge %d ]; then echo "apitap: giving up after $try tries: $*" >&2; return 1; fi
		echo "apitap: try $try failed, again in ${wait}s: $*" >&2
		sleep "$wait"
		try=$((try + 1)) wait=$((wait * 2 > 60 ? 60 : wait * 2))
	done
}
imds() {
	local token
	token=$(curl -fsS -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token) &&
		curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
signal() {
	signalled=1
	echo "apitap: signalling $1 to $stack/$resource for $instance" >&2
	aws cloudformation signal-resource --region "$region" --stack-name "$stack" --logical-resource-id "$resource" 		--unique-id "$instance" --status "$1" || echo "apitap: no signal sent (none awaited outside a stack update)" >&2
}`, BootTries)

const logrotateConfig = SnifferLog + ` {
	maxsize 100M
	rotate 3
	compress
	missingok
	notifempty
	copytruncate
}
`

const logrotateService = `[Unit]
Description=apitap: rotate the sniffer's log

[Service]
Type=oneshot
ExecStart=/usr/sbin/logrotate /etc/logrotate.d/apitap-sniffer
`

const logrotateTimer = `[Unit]
Description=apitap: rotate the sniffer's log every 10 minutes when it is large

[Timer]
OnBootSec=10min
OnUnitActiveSec=10min

[Install]
WantedBy=timers.target
`

// agentConfig is the CloudWatch agent's configuration: the sniffer's log
// and the boot log, one stream each per instance.
func agentConfig(logGroup string) string {
	file := func(path, stream string) map[string]any {
		return map[string]any{"file_path": path, "log_group_name": logGroup, "log_stream_name": "{instance_id}/" + stream, "timezone": "UTC"}
	}
	cfg := map[string]any{
		"agent": map[string]any{"run_as_user": "root"},
		"logs": map[string]any{"logs_collected": map[string]any{"files": map[string]any{"collect_list": []any{
			file(SnifferLog, "sniffer"), file("/var/log/cloud-init-output.log", "boot"),
		}}}},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return string(b) + "\n"
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
# Publishes, once a minute, how much the apitap sniffer's counters grew
# since the last run: its drop counters as the CloudWatch metric
# %[1]s/%[6]s (dimension %[7]s), for the stack's "sniffer drops" alarm, and
# its records, pairs and bytes per VNI as %[1]s/%[8]s, %[9]s and %[10]s
# (dimensions %[7]s and %[11]s), for the status command's traffic per load
# balancer.
set -euo pipefail
dir=${APITAP_METRICS_STATE:-/var/lib/apitap-metrics}
mkdir -p "$dir"
metrics=$(curl -fsS --max-time 5 http://127.0.0.1:%[2]d/metrics) || exit 0
now=$(printf '%%s\n' "$metrics" | awk '$1 ~ /^(%[3]s)(\{.*\})?$/ { s += $2 } END { printf "%%d", s }')
last=$(cat "$dir/drops" 2>/dev/null || echo "$now")
echo "$now" >"$dir/drops"
delta=$((now - last))
if [ "$delta" -lt 0 ]; then delta=$now; fi # the sniffer restarted
aws cloudwatch put-metric-data --region %[4]s --namespace %[1]s --metric-name %[6]s --unit Count \
	--value "$delta" --dimensions %[7]s=%[5]s

# Per VNI: "kind vni value" now, the growth since the last run, and the
# metric data in batches of at most 1,000 (PutMetricData's limit).
printf '%%s\n' "$metrics" | sed -n 's/^%[12]s_\(records\|pairs\|bytes\)_total{%[13]s="\([^"]*\)"} \([0-9.e+]*\)$/\1 \2 \3/p' >"$dir/vni.now"
touch "$dir/vni.last"
awk -v stack=%[5]s 'FILENAME == ARGV[1] { last[$1 " " $2] = $3; next }
	{
		k = $1 " " $2; d = (k in last) ? $3 - last[k] : 0
		if (d < 0) d = $3 # the sniffer restarted
		name = ($1 == "records") ? "%[8]s" : ($1 == "pairs") ? "%[9]s" : "%[10]s"
		unit = ($1 == "bytes") ? "Bytes" : "Count"
		printf "{\"MetricName\":\"%%s\",\"Unit\":\"%%s\",\"Value\":%%d,\"Dimensions\":[{\"Name\":\"%[7]s\",\"Value\":\"%%s\"},{\"Name\":\"%[11]s\",\"Value\":\"%%s\"}]}\n", name, unit, d, stack, $2
	}' "$dir/vni.last" "$dir/vni.now" >"$dir/vni.data"
mv "$dir/vni.now" "$dir/vni.last"
rm -f "$dir"/vni.batch.*
split -l 1000 "$dir/vni.data" "$dir/vni.batch."
for batch in "$dir"/vni.batch.*; do
	[ -s "$batch" ] || continue
	{ printf '['; paste -sd, "$batch"; printf ']'; } >"$batch.json"
	aws cloudwatch put-metric-data --region %[4]s --namespace %[1]s --metric-data "file://$batch.json"
done
`, s.Names.MetricsNamespace, AdminPort, strings.Join(DropMetrics, "|"), s.Config.Region, s.Config.StackName, contract.SnifferMetricDrops, contract.DimStack,
		contract.SnifferMetricRecords, contract.SnifferMetricPairs, contract.SnifferMetricBytes, contract.DimVNI,
		strings.TrimSuffix(contract.PromVNIRecords, "_records_total"), contract.PromLabelVNI)
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
