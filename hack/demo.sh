#!/usr/bin/env bash
# hack/demo.sh: the demo shop (hack/demoapp, manifests/demo) on the local
# cluster of hack/cluster, tapped live with kubectl shark. Needs root and Go.
#
#   hack/demo.sh [all]   deps, plugin, cluster, images, deploy, then tap (make demo)
#   hack/demo.sh images  build the demo images into dist/demo/ (make demo-images)
#   hack/demo.sh load    build the agent and demo images and load them (make demo-load)
#   hack/demo.sh deploy  cluster up if needed, load, apply manifests/demo, wait for it
#   hack/demo.sh tap     kubectl shark tap -n demo on the running demo
#   hack/demo.sh down    delete the namespace demo; DOWN=cluster stops the cluster too
#   hack/demo.sh offline tap a recorded capture, no cluster (make demo-offline)
#
# NODES (default 2) is the number of nodes of a cluster this script starts; a
# running cluster is reused as it is. TAP_ARGS adds arguments to the tap.
# SKIP_AGENT=1 leaves the shark-agent image alone (the e2e tests of the demo).
set -euo pipefail
cd "$(dirname "$0")/.."

NS=demo
DIST=dist/demo
AGENT_IMAGE=${IMAGE:-localhost/shark/agent:dev}
GOARCH=$(go env GOARCH)
PG_VERSION=${PG_VERSION:-15}
T0=$(date +%s)

step() { printf '\033[1m==> [%3ss] %s\033[0m\n' "$(($(date +%s) - T0))" "$*"; }
die() { echo "demo: $*" >&2; exit 1; }
kc() { hack/cluster kubectl "$@"; }

[ "$(id -u)" -eq 0 ] || [ "${1:-all}" = offline ] || [ "${1:-}" = images ] ||
	die "needs root: the local cluster creates interfaces, mounts and cgroups (try sudo)"

# image NAME ARGS...: one image tarball of hack/image, named after the image.
image() {
	local name=$1
	shift
	.cache/bin/image -t "localhost/shark/$name:dev" -o "$DIST/$name.tar" --user 65532:65532 "$@"
}

build_images() {
	step "building the demo images into $DIST/ (Go binaries and Debian's redis, curl, postgres)"
	hack/deps.sh
	mkdir -p "$DIST"
	go build -o .cache/bin/image ./hack/image
	image demoapp --go ./hack/demoapp --entrypoint /demoapp
	image redis --add-binary /usr/bin/redis-server --entrypoint /usr/bin/redis-server
	image curl --add-binary /usr/bin/curl --entrypoint /usr/bin/curl
	build_postgres
	ls -l "$DIST"/*.tar | awk '{printf "    %-28s %6.1f MB\n", $NF, $5 / 1e6}'
}

# build_postgres packages Debian's PostgreSQL server: postgres and initdb with
# their libraries, the share files initdb reads, the loadable modules (without
# the LLVM JIT, which would drag in libLLVM), and dash as the /bin/sh that
# initdb runs postgres through.
build_postgres() {
	local bin=/usr/lib/postgresql/$PG_VERSION/bin lib=/usr/lib/postgresql/$PG_VERSION/lib
	if [ ! -x "$bin/postgres" ]; then
		step "installing postgresql-$PG_VERSION (Debian's server binaries, packaged into the image)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "postgresql-$PG_VERSION" >/dev/null
	fi
	local args=(--add-binary "$bin/postgres" --add-binary "$bin/initdb" --add-binary /bin/dash:/bin/sh
		--file "/usr/share/postgresql/$PG_VERSION" --file /usr/share/zoneinfo/Etc --file /usr/share/zoneinfo/UTC
		--env TZ=UTC --env "PATH=$bin:/bin" --entrypoint /bin/sh)
	local so
	for so in "$lib"/*.so; do
		case $so in */llvmjit*) continue ;; esac
		args+=(--file "$so")
	done
	image postgres "${args[@]}"
}

load_images() {
	if [ "${SKIP_AGENT:-0}" != 1 ]; then
		step "building and loading the shark-agent image ($AGENT_IMAGE)"
		make --no-print-directory load IMAGE="$AGENT_IMAGE"
	fi
	build_images
	step "loading the demo images into every node"
	hack/cluster load "$DIST"/*.tar
}

cluster_up() {
	if hack/cluster status >/dev/null 2>&1; then
		step "reusing the running cluster: $(hack/cluster status | grep "^cluster:")"
		return
	fi
	local nodes=${NODES:-2}
	if [ ! -d .cache/k8s ] || [ -z "$(ls -A .cache/k8s 2>/dev/null)" ]; then
		step "starting a $nodes-node cluster: the FIRST run builds Kubernetes, etcd and CoreDNS from source, about 10 min on 2 cores"
	else
		step "starting a $nodes-node cluster (cached binaries: about 20 s)"
	fi
	NODES=$nodes hack/cluster up
}

# secrets creates, once, the TLS certificates of secure and the password of
# PostgreSQL: nothing secret is committed, and a redeploy keeps them.
secrets() {
	kc apply -f manifests/demo/00-namespace.yaml >/dev/null
	if ! kc -n "$NS" get secret secure-tls >/dev/null 2>&1; then
		local dir
		dir=$(mktemp -d)
		go run ./hack/demoapp certs -out "$dir" -namespace "$NS" >/dev/null
		kc -n "$NS" create secret generic secure-tls --from-file="$dir/ca.crt" --from-file="$dir/tls.crt" --from-file="$dir/tls.key"
		rm -rf "$dir"
	fi
	if ! kc -n "$NS" get secret postgres-auth >/dev/null 2>&1; then
		kc -n "$NS" create secret generic postgres-auth --from-literal=password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
	fi
}

deploy() {
	cluster_up
	load_images
	step "deploying manifests/demo into the namespace $NS"
	secrets
	local existing
	existing=$(kc -n "$NS" get deployments -o name)
	kc apply -f manifests/demo/
	restart_if_rebuilt "$existing"
	step "waiting for the rollout"
	local d
	for d in $(kc -n "$NS" get deployments -o name); do
		kc -n "$NS" rollout status "$d" --timeout=180s
	done
	kc -n "$NS" get pods -o wide
}

# restart_if_rebuilt EXISTING restarts the demo when an image changed since
# the last deploy: the tags stay :dev, so Kubernetes would keep the old pods.
# EXISTING lists the Deployments there were before the apply; new ones start
# with the new images anyway.
restart_if_rebuilt() {
	local sums=.cache/demo/images.sha256 now
	mkdir -p .cache/demo
	now=$(sha256sum "$DIST"/*.tar)
	if [ -n "$1" ] && [ -f "$sums" ] && [ "$now" != "$(cat "$sums")" ]; then
		step "images changed since the last deploy: restarting the demo's pods"
		kc -n "$NS" rollout restart deployment
	fi
	echo "$now" >"$sums"
}

tap() {
	local kubeconfig
	kubeconfig=$(hack/cluster kubeconfig)
	step "bin/kubectl-shark tap -n $NS (Ctrl-C stops and cleans up)"
	# shellcheck disable=SC2086 # TAP_ARGS is a list of words on purpose
	bin/kubectl-shark tap -n "$NS" --kubeconfig "$kubeconfig" --image "$AGENT_IMAGE" --image-pull-policy Never ${TAP_ARGS:-}
}

down() {
	if hack/cluster status >/dev/null 2>&1; then
		step "deleting the namespace $NS"
		kc delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s
	fi
	if [ "${DOWN:-}" = cluster ]; then
		step "stopping the cluster"
		hack/cluster down
	fi
}

offline() {
	local capture=testdata/mixed.pcapng
	echo "==> kubectl shark tap --read $capture"
	bin/kubectl-shark tap --read "$capture" --color always | head -40
	echo
	echo "==> only errors: --filter '(proto in [\"http\", \"http2\"] && int(status) >= 400) || (proto == \"grpc\" && status != \"OK\") || status == \"NXDOMAIN\"'"
	bin/kubectl-shark tap --read "$capture" --color always \
		--filter '(proto in ["http", "http2"] && int(status) >= 400) || (proto == "grpc" && status != "OK") || status == "NXDOMAIN"'
}

case ${1:-all} in
all)
	step "installing packages (apt, only what is missing)"
	hack/deps.sh
	step "building the plugin"
	make --no-print-directory build
	deploy
	step "demo ready in $(($(date +%s) - T0)) s"
	tap
	;;
images) build_images ;;
load) cluster_up && load_images ;;
deploy) deploy && step "demo ready in $(($(date +%s) - T0)) s" ;;
tap) tap ;;
down) down ;;
offline) offline ;;
*) die "unknown command $1: want all, images, load, deploy, tap, down or offline" ;;
esac
