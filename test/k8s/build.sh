#!/usr/bin/env bash
# Builds, once per machine, the real Kubernetes control plane the operator tests run against:
# kube-apiserver, kube-controller-manager and kubectl from the Go module proxy (k8s.io/kubernetes
# with every k8s.io staging module pinned by a replace directive to the matching v0.x release, as
# projects that import k8s.io/kubernetes do), and etcd from go.etcd.io/etcd/server/v3.
#
# The binaries land in $DYNAMOKV_K8S_CACHE (default ~/.cache/dynamokv/k8s-<version>/bin); a second
# run finds them there and returns at once. Prints the bin directory on its last line.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"
CACHE="${DYNAMOKV_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dynamokv/k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}}"
BIN="$CACHE/bin"
BINARIES=(kube-apiserver kube-controller-manager kubectl etcd)

have_all() {
  for binary in "${BINARIES[@]}"; do [[ -x "$BIN/$binary" ]] || return 1; done
}

if have_all; then
  echo "$BIN"
  exit 0
fi

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
  echo "build.sh: building $command (${KUBERNETES_VERSION})" >&2
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${KUBERNETES_VERSION#v1.}" \
    -o "$BIN/$command.tmp" "k8s.io/kubernetes/cmd/$command"
  mv "$BIN/$command.tmp" "$BIN/$command"
done

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

echo "build.sh: built in $(( $(date +%s) - started )) s" >&2
echo "$BIN"
