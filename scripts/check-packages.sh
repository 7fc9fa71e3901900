#!/usr/bin/env bash
# Fails when the build in BUILD_DIR included a header from a Debian package
# that none of the given setup scripts installs, by name or as a dependency
# of a package they name. Run by CTest (test "setup_installs_every_header"), so the
# README's test command catches a missing install step on the machine that
# has the package by hand, before a fresh machine does.
#
#   scripts/check-packages.sh BUILD_DIR SCRIPT...   (exit 0: all covered, 1: missing, 77: cannot check)
set -uo pipefail
build=${1:?usage: check-packages.sh BUILD_DIR SCRIPT...}; shift
(($#)) || { echo "check-packages: name at least one setup script" >&2; exit 2; }
for tool in ninja dpkg dpkg-query apt-cache realpath; do
  command -v "$tool" >/dev/null || { echo "check-packages: '$tool' is not installed; cannot check (skipped)"; exit 77; }
done
[ -f "$build/build.ninja" ] || { echo "check-packages: $build/build.ninja not found: build first"; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Every system header any object of the build read, as ninja recorded it.
ninja -C "$build" -t deps | awk '/^    \/usr\// {print $1}' | sort -u >"$tmp/headers"
[ -s "$tmp/headers" ] || { echo "check-packages: ninja recorded no header dependencies in $build (not built yet?)"; exit 2; }
# dpkg -S knows files by the path the package shipped; symlinked include
# folders (for example /usr/include/torch) need their real paths too.
xargs -a "$tmp/headers" -d '\n' realpath -e 2>/dev/null | sort -u >"$tmp/real"
sort -u "$tmp/headers" "$tmp/real" | xargs -d '\n' dpkg -S 2>/dev/null | cut -d: -f1 | tr ',' '\n' |
  sed 's/^ *//' | sort -u >"$tmp/used"

# The packages the scripts name: their PACKAGES=( ... ) arrays.
for script in "$@"; do
  [ -f "$script" ] || { echo "check-packages: $script not found"; exit 2; }
  sed -n '/^[A-Z_]*PACKAGES=(/,/)/p' "$script"
done | sed 's/#.*//; s/^[A-Z_]*PACKAGES=(//; s/)//' | tr ' ' '\n' | grep -v '^$' | sort -u >"$tmp/named"
[ -s "$tmp/named" ] || { echo "check-packages: no PACKAGES=( ... ) list found in $*"; exit 2; }
# ... and everything they pull in.
xargs -a "$tmp/named" apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances 2>/dev/null | grep -v '^ ' | sed 's/:amd64$//' | sort -u >"$tmp/closure"
sort -u -o "$tmp/closure" "$tmp/closure" "$tmp/named"

missing=$(comm -23 "$tmp/used" "$tmp/closure")
if [ -n "$missing" ]; then
  echo "check-packages: the build in $build includes headers from Debian packages that $* do not install:"
  for p in $missing; do
    echo "  $p, for example $(dpkg -L "$p" 2>/dev/null | grep -hFx -f - "$tmp/headers" "$tmp/real" 2>/dev/null | head -1 || true)"
  done
  echo "add them to the PACKAGES list of scripts/setup.sh (or BENCH_PACKAGES of scripts/bench.sh for benchmark peers)"
  exit 1
fi
echo "check-packages: the $(wc -l <"$tmp/used") Debian packages whose headers the build included are all installed by $*"
