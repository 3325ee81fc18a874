#!/usr/bin/env bash
# `make deb`: a Debian package of the shipped (dist) build, made with
# dpkg-deb from a staging tree that `make install` fills:
#   scripts/deb.sh BUILD_DIR OUT_DIR
# Installs to /usr: /usr/bin/greenrt, /usr/lib/libgreenrt_preload.so (the
# launcher finds it in ../lib), /usr/include/greenrt.h,
# /usr/lib/pkgconfig/greenrt.pc, /usr/share/man/man1/greenrt.1.gz and
# /usr/share/doc/greenrt/copyright. Prints the package's path.
set -euo pipefail
build=$1
out=$2
here="$(cd "$(dirname "$0")/.." && pwd)"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n 1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

bash "$here/scripts/install.sh" install "$build" /usr "$stage" >/dev/null
# A package carries its own file list (dpkg's); the install manifest is
# for `make uninstall` only.
rm -f "$stage/usr/share/greenrt/install-manifest"
rmdir "$stage/usr/share/greenrt"
gzip -9n "$stage/usr/share/man/man1/greenrt.1"
install -d "$stage/usr/share/doc/greenrt"
cat >"$stage/usr/share/doc/greenrt/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: greenrt
License: MIT or Apache-2.0
COPYRIGHT
install -d "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: greenrt
Version: $version
Architecture: $arch
Maintainer: greenrt developers <greenrt@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.34)
Section: devel
Priority: optional
Description: green threads for unmodified programs (an LD_PRELOAD runtime)
 greenrt brings gevent's model to native programs on Linux: a per-thread
 hub runs the event loop, greenlets are stackful coroutines, and the
 LD_PRELOAD library libgreenrt_preload.so makes blocking libc calls
 (sockets, pipes, poll, sleep, getaddrinfo, waitpid) cooperate.
 .
 This package holds the launcher (greenrt run -- PROGRAM), the library,
 and the C API's header and pkg-config file.
CONTROL
find "$stage" -type d -exec chmod 755 {} +
mkdir -p "$out"
deb="$out/greenrt_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
