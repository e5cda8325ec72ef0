#!/usr/bin/env bash
# Installs what the infrastructure tests (infra/...) need, without root:
#
#   - the AWS CDK command line (npm package aws-cdk, version pinned in
#     package-lock.json) into the repository's node_modules/ (git-ignored);
#   - cfn-lint and checkov (PyPI, pinned below) into a virtual environment
#     under $APITAP_CACHE/py (default ~/.cache/apitap/py), and beside them
#     moto's server (moto[server], pinned below): the AWS simulator apitap did
#     not write, which tests/moto runs the function binaries against.
#
# Safe to run again: each part is skipped when the pinned versions are
# already installed; runs at the same time wait for each other (flock),
# and the Python tools are installed aside and renamed into place.
# Needs node >= 18 with npm, and python3 >= 3.9 with venv.
#
# Prints two lines that the tests read:
#   APITAP_CDK=<path of the cdk command>
#   APITAP_PY=<bin directory of the venv holding cfn-lint and checkov>
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cache="${APITAP_CACHE:-$HOME/.cache/apitap}"

CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.3.30
MOTO_VERSION=5.2.6

for cmd in node npm python3; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		echo "infra-deps: $cmd is required (Debian: apt-get install nodejs npm python3 python3-venv)" >&2
		exit 1
	fi
done

# Two runs at once would remove and fill the same directories: one at a time.
mkdir -p "$cache"
exec 9>"$cache/.infra-deps.lock"
flock 9

# --- the CDK command line --------------------------------------------------
want_cdk="$(cd "$root" && node -p "require('./package-lock.json').packages['node_modules/aws-cdk'].version")"
have_cdk=""
if [[ -f "$root/node_modules/aws-cdk/package.json" ]]; then
	have_cdk="$(cd "$root" && node -p "require('./node_modules/aws-cdk/package.json').version")"
fi
if [[ "$have_cdk" != "$want_cdk" ]]; then
	echo "infra-deps: installing aws-cdk $want_cdk into node_modules/" >&2
	(cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
# node_modules holds Go template files of `cdk init`: a go.mod of its own
# keeps it out of this module's ./... patterns.
printf 'module apitap.invalid/node_modules\n' >"$root/node_modules/go.mod"

cdk="$root/node_modules/.bin/cdk"
"$cdk" --version >/dev/null

# --- cfn-lint, checkov and moto ---------------------------------------------
py="$cache/py"
stamp="cfn-lint==$CFN_LINT_VERSION checkov==$CHECKOV_VERSION moto[server]==$MOTO_VERSION $(python3 -c 'import sys; print(sys.version.split()[0])')"
if [[ ! -f "$py/.complete" || "$(cat "$py/.complete")" != "$stamp" ]]; then
	echo "infra-deps: installing cfn-lint $CFN_LINT_VERSION, checkov $CHECKOV_VERSION and moto $MOTO_VERSION into $py" >&2
	# Built aside and renamed into place when complete: an interrupted
	# install never leaves a half-filled $py behind, and $py is never
	# removed while it is being filled.
	tmp="$py.new.$$"
	rm -rf "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	python3 -m venv "$tmp"
	"$tmp/bin/pip" install -q --disable-pip-version-check \
		"cfn-lint==$CFN_LINT_VERSION" "checkov==$CHECKOV_VERSION" "moto[server]==$MOTO_VERSION" >&2
	"$tmp/bin/cfn-lint" --version >/dev/null
	"$tmp/bin/checkov" --version >/dev/null
	"$tmp/bin/moto_server" --help >/dev/null
	echo "$stamp" >"$tmp/.complete"
	# A venv's scripts name their interpreter by absolute path: point them
	# at the final place before the rename.
	grep -rlI -F "$tmp" "$tmp/bin" "$tmp/pyvenv.cfg" | xargs -r sed -i "s|$tmp|$py|g"
	if [[ -e "$py" ]]; then
		mv "$py" "$py.old.$$"
	fi
	mv "$tmp" "$py"
	rm -rf "$py.old.$$"
	trap - EXIT
	"$py/bin/cfn-lint" --version >/dev/null
	"$py/bin/moto_server" --help >/dev/null
fi

echo "APITAP_CDK=$cdk"
echo "APITAP_PY=$py/bin"
