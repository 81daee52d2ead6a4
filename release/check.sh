#!/usr/bin/env bash
# Checks, or makes, what a release needs: the modules packed as the module
# proxy serves them, installed as a user would install them.
#
#   release/check.sh tidy VERSION     rewrite the go.mod/go.sum of every module
#                                     (the tool and the benchmarks require the
#                                     library at VERSION, with its checksum)
#   release/check.sh tidy-check VERSION
#                                     fail when any module is not tidy on its own
#                                     (GOWORK=off go mod tidy -diff), has a replace
#                                     directive, or requires another version
#   release/check.sh install VERSION  from an empty module outside the repository:
#                                     go get the library and run a program that
#                                     uses it, go install the tool and run it
#
# VERSION is the version the next release is tagged with (vX.Y.Z for the
# library, cmd/bigqueue/vX.Y.Z for the tool). Every mode packs the modules of
# the working tree at VERSION into a file GOPROXY (release/pack.go) and runs
# the go command with GOWORK=off and an empty module cache of its own, so
# nothing from the workspace or from an earlier pack can leak in. Modules
# other than ours come from the local module cache when it has them, else
# from the configured proxy.
set -euo pipefail

mode=${1:?usage: check.sh tidy|tidy-check|install VERSION}
version=${2:?usage: check.sh tidy|tidy-check|install VERSION}
root=$(cd "$(dirname "$0")/.." && pwd)
lib=github.com/seed-ff72c416/bigqueue
modules=(. cmd/bigqueue benchmarks forward release)
dependents=(cmd/bigqueue benchmarks forward)

work=$(mktemp -d "${TMPDIR:-/tmp}/bigqueue-release.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

real_cache=$(go env GOMODCACHE)
real_proxy=$(go env GOPROXY)
export GOWORK=off
export GOFLAGS="$(go env GOFLAGS) -modcacherw"
export GOMODCACHE="$work/modcache"
export GOPROXY="file://$work/proxy,file://$real_cache/cache/download,$real_proxy"
# Not in the checksum database until it is published.
export GONOSUMDB="$lib"

fail() {
	echo "release check: $*" >&2
	exit 1
}

pack() {
	rm -rf "$work/proxy"
	(cd "$root/release" && go run . -version "$version" -out "$work/proxy" "$root" "$root/cmd/bigqueue" "$root/forward") >/dev/null
}
pack

case $mode in
tidy)
	# Twice: the tool requires the forwarder, whose go.sum (so its
	# checksum) changes in the first round with the library's checksum.
	# The second round packs that forwarder, in a module cache of its own.
	for round in 1 2; do
		if [ "$round" = 2 ]; then
			export GOMODCACHE="$work/modcache2"
			pack
		fi
		for m in "${dependents[@]}"; do
			(cd "$root/$m" && go mod edit -dropreplace="$lib" -require="$lib@$version")
			# The library's checksum changes with its files: forget the old one
			# (and the forwarder's, which the tool requires).
			if [ -f "$root/$m/go.sum" ]; then
				grep -v -e "^$lib v" -e "^$lib/forward v" "$root/$m/go.sum" >"$work/go.sum" || true
				cat "$work/go.sum" >"$root/$m/go.sum"
			fi
		done
		(cd "$root/cmd/bigqueue" && go mod edit -dropreplace="$lib/forward" -require="$lib/forward@$version")
		for m in "${modules[@]}"; do
			(cd "$root/$m" && go mod tidy)
		done
	done
	# In the workspace, the tool's requirement of the library at $version
	# is the library of the clone: a workspace module only sets a root of
	# the module graph, so without this the go command would fetch
	# $lib@$version to read its go.mod.
	sed -i.bak "/^replace $(printf '%s' "$lib" | sed 's#/#\\/#g')[ /]/d" "$root/go.work" && rm -f "$root/go.work.bak"
	go work edit -replace="$lib@$version=./" -replace="$lib/forward@$version=./forward" "$root/go.work"
	echo "tidy: every module, the tool and the benchmarks on $lib@$version"
	;;

tidy-check)
	for m in "${modules[@]}"; do
		if grep -q '^replace' "$root/$m/go.mod"; then
			fail "$m/go.mod has a replace directive (go.work ties the modules together)"
		fi
		if ! diff=$(cd "$root/$m" && go mod tidy -diff 2>&1); then
			echo "$diff" >&2
			fail "$m: go.mod or go.sum is not tidy; run 'make tidy' (any change to the library's files changes the checksum of $lib@$version that the tool and the benchmarks record)"
		fi
	done
	for m in "${dependents[@]}"; do
		got=$(cd "$root/$m" && go list -m -f '{{.Version}}' "$lib")
		[ "$got" = "$version" ] || fail "$m requires $lib@$got, want $version; run 'make tidy'"
	done
	grep -qx "replace $lib $version => ./" "$root/go.work" ||
		fail "go.work does not replace $lib@$version with the clone's library; run 'make tidy'"
	got=$(cd "$root/cmd/bigqueue" && go list -m -f '{{.Version}}' "$lib/forward")
	[ "$got" = "$version" ] || fail "cmd/bigqueue requires $lib/forward@$got, want $version; run 'make tidy'"
	grep -q "$lib/forward $version => ./forward" "$root/go.work" ||
		fail "go.work does not replace $lib/forward@$version with the clone's forwarder; run 'make tidy'"
	echo "tidy-check: ${#modules[@]} modules tidy on their own, no replace, tool and benchmarks on $lib@$version"
	;;

install)
	user="$work/user"
	mkdir -p "$user"
	cd "$user"
	go mod init example.com/releasecheck >/dev/null 2>&1
	cat >main.go <<'EOF'
package main

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/seed-ff72c416/bigqueue"
)

func main() {
	q, err := bigqueue.NewMmapQueue(os.Args[1], bigqueue.SetArenaSize(64<<10))
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range []string{"hello", "from", "the", "module", "proxy"} {
		if err := q.EnqueueString(m); err != nil {
			log.Fatal(err)
		}
	}
	for {
		m, err := q.DequeueString()
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(m, " ")
	}
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println()
}
EOF
	go get "$lib@$version" 2>&1 | sed 's/^/  /'
	got=$(go run . "$(mktemp -d "$work/q.XXXX")")
	[ "$got" = "hello from the module proxy " ] || fail "program using $lib@$version printed '$got'"
	moddir="$GOMODCACHE/$lib@$version"
	for f in go.work go.work.sum cmd benchmarks release; do
		[ ! -e "$moddir/$f" ] || fail "the module zip of $lib@$version holds $f"
	done
	echo "go get $lib@$version: a program using it ran"
	go get "$lib/forward@$version" 2>&1 | sed 's/^/  /'
	go build "$lib/forward"
	echo "go get $lib/forward@$version: it builds"

	GOBIN="$work/bin" go install "$lib/cmd/bigqueue@$version" 2>&1 | sed 's/^/  /'
	bq="$work/bin/bigqueue"
	qdir="$work/tool-queue"
	printf 'first\nsecond\nthird\n' | "$bq" enqueue "$qdir"
	"$bq" check "$qdir" >/dev/null
	got=$("$bq" dequeue -n 2 "$qdir" | tr '\n' ' ')
	[ "$got" = "first second " ] || fail "installed tool dequeued '$got'"
	"$bq" bench -n 20000 -quiet >/dev/null
	"$bq" forward -h | grep -q "kafka://" || fail "installed tool has no forward command"
	echo "go install $lib/cmd/bigqueue@$version: enqueue, check, dequeue, bench and forward -h ran"
	;;

*)
	fail "unknown mode $mode"
	;;
esac
