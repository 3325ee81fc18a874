#!/usr/bin/env bash
# `make install` / `make uninstall`:
#   scripts/install.sh install|uninstall BUILD_DIR PREFIX [DESTDIR]
#
# install puts the shipped (dist) launcher, library, header, pkg-config
# file and man page under DESTDIR/PREFIX and writes a manifest of every
# file it wrote and every directory it had to create
# (PREFIX/share/greenrt/install-manifest). uninstall removes exactly
# those: the files, then the directories it created, if they are empty.
set -euo pipefail
action=$1
build=$2
prefix=$3
destdir=${4:-}
root="$destdir$prefix"
here="$(cd "$(dirname "$0")/.." && pwd)"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n 1)
manifest_rel="share/greenrt/install-manifest"

# destination (relative to PREFIX)      mode  source
files=(
    "bin/greenrt                        755   $build/greenrt"
    "lib/libgreenrt_preload.so          644   $build/libgreenrt_preload.so"
    "include/greenrt.h                  644   $here/include/greenrt.h"
    "lib/pkgconfig/greenrt.pc           644   (generated)"
    "share/man/man1/greenrt.1           644   (generated)"
)

case "$action" in
install)
    for f in greenrt libgreenrt_preload.so; do
        [ -f "$build/$f" ] || { echo "install: $build/$f is missing; run 'make dist' first" >&2; exit 1; }
    done
    created=()
    mkdirs() { # creates $1 and its missing parents, remembering them
        local d=$1 todo=()
        while [ ! -d "$d" ]; do todo=("$d" "${todo[@]}"); d=$(dirname "$d"); done
        for d in "${todo[@]}"; do mkdir "$d"; created+=("$d"); done
    }
    written=()
    for line in "${files[@]}"; do
        read -r dest mode src <<<"$line"
        mkdirs "$(dirname "$root/$dest")"
        case "$dest" in
        *.pc)
            sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$here/scripts/greenrt.pc.in" >"$root/$dest"
            chmod "$mode" "$root/$dest" ;;
        *.1)
            bash "$here/scripts/manpage.sh" "$build/greenrt" "$version" >"$root/$dest"
            chmod "$mode" "$root/$dest" ;;
        *) install -m "$mode" "$src" "$root/$dest" ;;
        esac
        written+=("$dest")
    done
    mkdirs "$(dirname "$root/$manifest_rel")"
    {
        for f in "${written[@]}"; do echo "file $f"; done
        echo "file $manifest_rel"
        # Deepest first, so that uninstall can remove them in order.
        for ((i = ${#created[@]} - 1; i >= 0; i--)); do
            d=${created[$i]}
            if [ "$d" = "$root" ]; then echo "dir ."; else echo "dir ${d#"$root"/}"; fi
        done
    } >"$root/$manifest_rel"
    echo "installed greenrt $version under $root"
    ;;
uninstall)
    m="$root/$manifest_rel"
    [ -f "$m" ] || { echo "uninstall: no $m: nothing installed there by 'make install'" >&2; exit 1; }
    mapfile -t entries <"$m"
    for e in "${entries[@]}"; do
        [ "${e%% *}" = file ] && rm -f "$root/${e#file }"
    done
    for e in "${entries[@]}"; do
        if [ "$e" = "dir ." ]; then
            rmdir "$root" 2>/dev/null || true
        elif [ "${e%% *}" = dir ]; then
            rmdir "$root/${e#dir }" 2>/dev/null || true
        fi
    done
    echo "removed greenrt from $root"
    ;;
*)
    echo "usage: $0 install|uninstall BUILD_DIR PREFIX [DESTDIR]" >&2
    exit 2
    ;;
esac
