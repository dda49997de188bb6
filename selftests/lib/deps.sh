#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages named on the command line that are not
# installed yet.  Idempotent: when everything is there it prints nothing
# and touches nothing.  Needs root only when something is missing.

set -eu

missing=()
for pkg in "$@"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
	[[ $status == ii* ]] || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

if ((EUID != 0)); then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run 'make deps' as root to install them" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/ftvm-deps.XXXXXX)
trap 'rm -f "$log"' EXIT
# The package lists may be absent on a fresh machine, or stale.
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
	apt-get update -q >>"$log" 2>&1 || true
	if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "deps: apt-get install failed" >&2
		exit 1
	fi
fi
