#!/usr/bin/env bash
# Installs everything the end-to-end and oracle tests (tests/...) need on a
# Debian bookworm machine, as root. Safe to run again: it skips apt when all
# commands exist and skips Maven when the Kafka jars are already cached.
#
#   APITAP_CACHE   cache root (default $HOME/.cache/apitap); the broker jars
#                  go to $APITAP_CACHE/kafka-<version>/libs, a newer
#                  librdkafka for kcat to $APITAP_CACHE/librdkafka-<version>
#
# Prints the libs directory on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
pom="$root/tests/kafka/pom.xml"

# command -> Debian package
declare -A pkg=(
	[tshark]=tshark
	[kcat]=kcat
	[nginx]=nginx
	[ethtool]=ethtool
	[ip]=iproute2
	[tc]=iproute2
	[sysctl]=procps
	[tcpdump]=tcpdump
	[mvn]=maven
	[java]=openjdk-17-jre-headless
)

missing=()
for cmd in "${!pkg[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd && ! -x /sbin/$cmd ]]; then
		missing+=("${pkg[$cmd]}")
	fi
done

if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "test-deps: missing packages (${missing[*]}) and not root" >&2
		exit 1
	fi
	# shellcheck disable=SC2207
	uniq=($(printf '%s\n' "${missing[@]}" | sort -u))
	echo "test-deps: installing ${uniq[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends "${uniq[@]}" >&2
fi

# Debian bookworm's librdkafka (2.0.2) fails SASL/SCRAM against Kafka 4
# brokers (fixed in librdkafka 2.6.1), so kcat's SASL_SSL calls in
# tests/kafkatest load the librdkafka that PyPI's confluent-kafka wheel
# ships, self-contained, instead (LD_LIBRARY_PATH).
rdkafka_version=2.16.1
rdkafka_dir="${APITAP_CACHE:-$HOME/.cache/apitap}/librdkafka-$rdkafka_version"
if [[ ! -f "$rdkafka_dir/librdkafka.so.1" ]]; then
	echo "test-deps: fetching librdkafka from confluent-kafka $rdkafka_version (PyPI) into $rdkafka_dir" >&2
	mkdir -p "$(dirname "$rdkafka_dir")"
	wheel="$(mktemp -d "$(dirname "$rdkafka_dir")/.librdkafka.XXXXXX")"
	# pip from a throwaway venv: python3 itself may come without pip.
	python3 -m venv "$wheel/venv"
	"$wheel/venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: --platform "manylinux_2_28_$(uname -m)" \
		--python-version 3.11 "confluent-kafka==$rdkafka_version" -d "$wheel" >&2
	python3 -m zipfile -e "$wheel"/confluent_kafka-*.whl "$wheel/x"
	mkdir -p "$wheel/lib"
	cp "$wheel"/x/confluent_kafka.libs/librdkafka-*.so.1 "$wheel/lib/librdkafka.so.1"
	rm -rf "$rdkafka_dir"
	mv "$wheel/lib" "$rdkafka_dir"
	rm -rf "$wheel"
fi

kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
cache="${APITAP_CACHE:-$HOME/.cache/apitap}"
dest="$cache/kafka-$kafka_version"
libs="$dest/libs"

# The pom's content is part of the cache key: a changed pom refetches.
stamp="$(sha256sum "$pom" | cut -c1-16)"
if [[ -f "$dest/.complete" && "$(cat "$dest/.complete")" == "$stamp" ]]; then
	echo "$libs"
	exit 0
fi

echo "test-deps: fetching Kafka $kafka_version broker jars into $libs" >&2
mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.kafka-$kafka_version.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$root/tests/kafka" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
	-DincludeScope=runtime -DoutputDirectory="$tmp/libs" >&2)
ls "$tmp/libs"/kafka_2.13-"$kafka_version".jar >/dev/null
echo "$stamp" >"$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$libs"
