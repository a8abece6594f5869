#!/usr/bin/env bash
# Installs the peers that loadtest/scripts/compare.sh compares Sluice with. Idempotent: what is
# already installed is kept. Nothing is built from fetched sources: HAProxy comes from the
# distribution (apt-get), kafka-proxy with `go install module@version` from the Go module proxy,
# Kroxylicious as its published jars from Maven Central (`mvn dependency:copy-dependencies`).
# Usage: loadtest/scripts/install-peers.sh [haproxy] [kafka-proxy] [kroxylicious]   (default: all)
# Env: PEERS_DIR (default ~/.cache/sluice), KAFKA_PROXY_VERSION (default: the newest the Go module
#      proxy lists), KROXYLICIOUS_VERSION (default 0.13.0).
# Exit status: 0 when every requested peer is installed, 1 otherwise (with a message per peer).
set -uo pipefail
PEERS_DIR="${PEERS_DIR:-$HOME/.cache/sluice}"
KROXYLICIOUS_VERSION="${KROXYLICIOUS_VERSION:-0.13.0}"
mkdir -p "$PEERS_DIR/bin"
want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(haproxy kafka-proxy kroxylicious)
failed=0

install_haproxy() {
    if command -v haproxy >/dev/null; then
        echo "haproxy: $(haproxy -v | head -1)"
        return 0
    fi
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    if ! command -v apt-get >/dev/null; then
        echo "haproxy: not installed and no apt-get: install HAProxy (>= 2.4) by hand" >&2
        return 1
    fi
    $sudo apt-get install -y haproxy || { $sudo apt-get update && $sudo apt-get install -y haproxy; } ||
        { echo "haproxy: apt-get install haproxy failed" >&2; return 1; }
    echo "haproxy: $(haproxy -v | head -1)"
}

install_kafka_proxy() {
    local bin="$PEERS_DIR/bin/kafka-proxy"
    if [[ -x "$bin" ]]; then
        echo "kafka-proxy: $bin ($(cat "$bin.version" 2>/dev/null || echo 'version unknown'))"
        return 0
    fi
    command -v go >/dev/null || { echo "kafka-proxy: needs the go tool (>= 1.21)" >&2; return 1; }
    local ver="${KAFKA_PROXY_VERSION:-}"
    if [[ -z "$ver" ]]; then
        ver="$(go list -m -versions github.com/grepplabs/kafka-proxy 2>/dev/null | tr ' ' '\n' | tail -1)"
        [[ "$ver" == v* ]] || {
            echo "kafka-proxy: the Go module proxy did not list github.com/grepplabs/kafka-proxy" \
                "($(go env GOPROXY)); set KAFKA_PROXY_VERSION=vX.Y.Z or check the proxy" >&2
            return 1
        }
    fi
    GOBIN="$PEERS_DIR/bin" go install "github.com/grepplabs/kafka-proxy@$ver" ||
        { echo "kafka-proxy: go install github.com/grepplabs/kafka-proxy@$ver failed" >&2; return 1; }
    echo "$ver" >"$bin.version"
    echo "kafka-proxy: $bin ($ver)"
}

install_kroxylicious() {
    local dir="$PEERS_DIR/kroxylicious-$KROXYLICIOUS_VERSION"
    if [[ -f "$dir/.complete" ]]; then
        echo "kroxylicious: $dir"
        return 0
    fi
    command -v mvn >/dev/null || { echo "kroxylicious: needs mvn (Maven 3) and a JDK >= 17" >&2; return 1; }
    local tmp
    tmp="$(mktemp -d)"
    # A throwaway pom whose only dependency is the app; copy-dependencies puts it and its runtime
    # dependencies (jars) in $dir.
    cat >"$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.sluice</groupId>
  <artifactId>kroxylicious-peer</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>io.kroxylicious</groupId>
      <artifactId>kroxylicious-app</artifactId>
      <version>$KROXYLICIOUS_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
    mkdir -p "$dir"
    if ! mvn -q -B -f "$tmp/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$dir"; then
        rm -rf "$tmp"
        rm -rf "$dir"
        echo "kroxylicious: mvn could not fetch io.kroxylicious:kroxylicious-app:$KROXYLICIOUS_VERSION" \
            "from Maven Central (set KROXYLICIOUS_VERSION, or check the Maven mirror)" >&2
        return 1
    fi
    rm -rf "$tmp"
    touch "$dir/.complete"
    echo "kroxylicious: $dir"
}

for p in "${want[@]}"; do
    case "$p" in
        haproxy) install_haproxy || failed=1 ;;
        kafka-proxy) install_kafka_proxy || failed=1 ;;
        kroxylicious) install_kroxylicious || failed=1 ;;
        *) echo "unknown peer '$p' (haproxy, kafka-proxy, kroxylicious)" >&2; failed=1 ;;
    esac
done
exit "$failed"
