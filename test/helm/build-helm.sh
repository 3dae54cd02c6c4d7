#!/usr/bin/env bash
# Builds, once per machine, the real helm binary the chart tests run: helm.sh/helm/v3 from the Go
# module proxy, with exactly the dependency versions helm's own go.mod pins (`go install pkg@ver`).
#
# The binary lands in $DYNAMOKV_HELM_CACHE (default ~/.cache/dynamokv/helm-<version>/bin); a second
# run finds it there and returns at once. Concurrent callers (two jest workers, CI and a developer)
# serialise on a lock file, so only the first builds and the others wait for its result.
# Prints the bin directory on its last line.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${DYNAMOKV_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dynamokv/helm-${HELM_VERSION}}"
BIN="$CACHE/bin"

if [[ -x "$BIN/helm" ]]; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build-helm.sh: go is not installed; it is needed once to build helm" >&2; exit 1; }
mkdir -p "$BIN"
exec 9>"$CACHE/build.lock"
flock 9
# Another caller may have finished the build while this one waited for the lock.
if [[ -x "$BIN/helm" ]]; then
  echo "$BIN"
  exit 0
fi

started=$(date +%s)
echo "build-helm.sh: building helm ${HELM_VERSION} (once per machine)" >&2
# helm's Makefile stamps the Kubernetes version it assumes for `helm template` and `helm lint`
# (.Capabilities.KubeVersion) from its k8s.io/client-go requirement (v0.X.Y -> 1.X); without the
# stamp helm assumes v1.20 and refuses charts that need a newer Kubernetes. Do the same here.
helm_mod=$(GOFLAGS= go mod download -json "helm.sh/helm/v3@${HELM_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
client_go=$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$helm_mod" | head -n1)
[[ -n "$client_go" ]] || { echo "build-helm.sh: no k8s.io/client-go requirement in $helm_mod" >&2; exit 1; }
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for package in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X ${package}.k8sVersionMajor=1 -X ${package}.k8sVersionMinor=${client_go}"
done
# GOBIN receives the binary under a temporary name first, so a killed build never leaves a
# half-written helm that the check above would take for a finished one.
tmp_bin="$CACHE/tmp-bin"
rm -rf "$tmp_bin"
mkdir -p "$tmp_bin"
GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0 GOBIN="$tmp_bin" \
  go install -trimpath -ldflags "$ldflags" \
  "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
mv "$tmp_bin/helm" "$BIN/helm"
rm -rf "$tmp_bin"
echo "build-helm.sh: built in $(( $(date +%s) - started )) s" >&2
echo "$BIN"
