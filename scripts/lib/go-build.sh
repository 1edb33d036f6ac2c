# shellcheck shell=bash
# Shared by the scripts that build Go binaries from their published modules
# (scripts/kube-binaries, scripts/node-binaries). Source it; it defines:
#
#   GO                         the Go toolchain (PATH, else /usr/local/go/bin/go)
#   write_kubernetes_gomod DIR VERSION
#                              a throwaway go.mod that requires k8s.io/kubernetes@VERSION
#                              and pins every staging module to its v0.X.Y tag
#   kubernetes_version_ldflags VERSION
#                              the -X flags Kubernetes' own build stamps in
#   build_module_binary OUT MODULE@VERSION PACKAGE [go build flags...]
#                              builds PACKAGE from a throwaway module that requires
#                              MODULE@VERSION into OUT (published atomically)
#
# k8s.io/kubernetes is not meant to be used as a module: its go.mod requires every
# staging module (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and replaces them with
# ./staging paths that only exist in its own repository. The staging list is read from
# its own go.mod replace block, so bumping the version is the only change a release needs.

if command -v go >/dev/null 2>&1; then
  GO=${GO:-$(command -v go)}
else
  GO=${GO:-/usr/local/go/bin/go}
fi
[[ -x $GO ]] || { echo "no Go toolchain (looked for 'go' on PATH and /usr/local/go/bin/go)" >&2; exit 1; }

# Static binaries, modules resolved on the fly, and no silent toolchain download: the
# Go caches (GOMODCACHE, GOCACHE) stay where they are so a rebuild is fast.
export CGO_ENABLED=0
export GOFLAGS=-mod=mod
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

write_kubernetes_gomod() {
  local dir=$1 version=$2 kube_gomod staging_modules module
  kube_gomod=$("$GO" mod download -json "k8s.io/kubernetes@$version" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f $kube_gomod ]] || { echo "could not download k8s.io/kubernetes@$version" >&2; return 1; }
  staging_modules=$(sed -n '/^replace (/,/^)/s#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$kube_gomod")
  [[ -n $staging_modules ]] || { echo "no staging replace block found in $kube_gomod" >&2; return 1; }
  mkdir -p "$dir"
  {
    echo "module seed.invalid/kubernetes-binaries"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    for module in $staging_modules; do
      # k8s v1.X.Y publishes its staging modules as v0.X.Y.
      echo "	$module => $module v0.${version#v1.}"
    done
    echo ")"
  } >"$dir/go.mod"
}

kubernetes_version_ldflags() {
  local version=$1 minor pkg flags=""
  minor=${version#v1.}
  minor=${minor%%.*}
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_module_binary() {
  local out=$1 module_version=$2 package=$3 work
  shift 3
  work=$(mktemp -d "${TMPDIR:-/tmp}/seed-go-build.XXXXXX")
  {
    echo "module seed.invalid/$(basename "$out")-binary"
    echo
    echo "go 1.26"
    echo
    echo "require ${module_version%@*} ${module_version#*@}"
  } >"$work/go.mod"
  if (cd "$work" && "$GO" build -trimpath "$@" -o "$out.partial" "$package"); then
    mv "$out.partial" "$out"
    rm -rf "$work"
  else
    rm -rf "$work" "$out.partial"
    return 1
  fi
}
