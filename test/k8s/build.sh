#!/usr/bin/env bash
# Builds, once per machine, the real Kubernetes control plane the operator tests run against:
# kube-apiserver, kube-controller-manager and kubectl from the Go module proxy (k8s.io/kubernetes
# with every k8s.io staging module pinned by a replace directive to the matching v0.x release, as
# projects that import k8s.io/kubernetes do), and etcd from go.etcd.io/etcd/server/v3.
#
# The binaries land in $DYNAMOKV_K8S_CACHE (default ~/.cache/dynamokv/k8s-<version>/bin); a second
# run finds them there and returns at once. Prints the bin directory on its last line. Concurrent
# callers (two jest workers, two helpers) queue on a lock, so the build runs once.
#
# One patch, applied to a copy of the k8s.io/kubernetes module: kube-apiserver rejects loopback
# addresses in Endpoints and EndpointSlices (pkg/apis/core/validation ValidateEndpointIP). The test
# kubelet (test/k8s/kubelet.ts) runs every pod as a local process on its own 127.x address, the only
# addresses these machines have, so without the patch no Service could list its pods. The patch turns
# that one check off and changes nothing else; the marker file below records that the apiserver in
# the cache carries it.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"
CACHE="${DYNAMOKV_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dynamokv/k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}}"
BIN="$CACHE/bin"
BINARIES=(kube-apiserver kube-controller-manager kubectl etcd)
PATCH_MARKER="$BIN/kube-apiserver.loopback-endpoints"

have_all() {
  for binary in "${BINARIES[@]}"; do [[ -x "$BIN/$binary" ]] || return 1; done
  [[ -f "$PATCH_MARKER" ]]
}

if have_all; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9
# Another caller may have finished the build while this one waited for the lock.
if have_all; then
  echo "$BIN"
  exit 0
fi

# True when $1 is missing from the cache, or is an apiserver built before the patch existed. A stale
# binary is replaced by a rename, so a test running it meanwhile keeps its copy.
needs_build() {
  [[ ! -x "$BIN/$1" ]] || { [[ $1 == kube-apiserver && ! -f "$PATCH_MARKER" ]]; }
}

command -v go >/dev/null || { echo "build.sh: go is not installed; it is needed once to build the control plane" >&2; exit 1; }
mkdir -p "$BIN" "$CACHE/src/kubernetes" "$CACHE/src/etcd"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0
started=$(date +%s)

# The staging modules k8s.io/kubernetes replaces with ./staging/src/k8s.io/<name> in its own go.mod;
# outside that repository each must point at its published v0.<minor>.<patch> release instead.
staging_version="v0.${KUBERNETES_VERSION#v1.}"
kubernetes_mod=$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$kubernetes_mod")
[[ ${#staging[@]} -gt 10 ]] || { echo "build.sh: found only ${#staging[@]} staging modules in $kubernetes_mod" >&2; exit 1; }

# The patched copy of k8s.io/kubernetes (see the header). The edit is checked, so a future release
# that moves the line fails here instead of building an unpatched apiserver.
kubernetes_dir=$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
rm -rf "$CACHE/src/kubernetes-patched"
cp -r "$kubernetes_dir" "$CACHE/src/kubernetes-patched"
chmod -R u+w "$CACHE/src/kubernetes-patched"
validation="$CACHE/src/kubernetes-patched/pkg/apis/core/validation/validation.go"
sed -i 's/^\tif ip.IsLoopback() {$/\tif ip.IsLoopback() \&\& !allowLoopbackEndpointIPs {/' "$validation"
grep -q 'ip.IsLoopback() && !allowLoopbackEndpointIPs' "$validation" || { echo "build.sh: the loopback patch no longer applies to $validation" >&2; exit 1; }
cat >> "$validation" <<'GO'

// allowLoopbackEndpointIPs is added by dynamokv's test build (test/k8s/build.sh): its test kubelet
// runs every pod as a local process on its own 127.x address, so Endpoints and EndpointSlices must
// accept loopback addresses.
const allowLoopbackEndpointIPs = true
GO

cd "$CACHE/src/kubernetes"
{
  echo "module dynamokv.io/k8s-test-binaries"
  echo
  echo "go 1.24.0"
  echo
  echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
  echo
  echo "replace ("
  for module in "${staging[@]}"; do echo "	${module} => ${module} ${staging_version}"; done
  echo "	k8s.io/kubernetes => ../kubernetes-patched"
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

// Package tools names the commands this module builds, so `go mod tidy` keeps their dependencies.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
go mod tidy >/dev/null 2>&1 || go mod tidy
for command in kube-apiserver kube-controller-manager kubectl; do
  needs_build "$command" || continue
  echo "build.sh: building $command (${KUBERNETES_VERSION})" >&2
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${KUBERNETES_VERSION#v1.}" \
    -o "$BIN/$command.tmp" "k8s.io/kubernetes/cmd/$command"
  mv "$BIN/$command.tmp" "$BIN/$command"
done
touch "$PATCH_MARKER"

build_etcd() {
cd "$CACHE/src/etcd"
cat > go.mod <<GOMOD
module dynamokv.io/k8s-test-etcd

go 1.24.0

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
GOMOD
cat > tools.go <<'GO'
//go:build tools

// Package tools names the etcd server command, so `go mod tidy` keeps its dependencies.
package tools

import _ "go.etcd.io/etcd/server/v3"
GO
go mod tidy >/dev/null 2>&1 || go mod tidy
echo "build.sh: building etcd (${ETCD_VERSION})" >&2
go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$BIN/etcd.tmp" "$BIN/etcd"
}
if needs_build etcd; then build_etcd; fi

echo "build.sh: built in $(( $(date +%s) - started )) s" >&2
echo "$BIN"
