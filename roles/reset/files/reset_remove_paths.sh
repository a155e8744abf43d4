#!/bin/sh
# Remove each path given (file, link or directory tree) that exists; print the ones removed.
# Refuses anything that is not absolute or that is a top-level directory ("/", "/etc", ...).
status=0
for path in "$@"; do
    case "$path" in
        /*/*) ;;
        *) echo "refusing to remove '$path'" >&2; status=2; continue ;;
    esac
    if [ -e "$path" ] || [ -L "$path" ]; then
        rm -rf -- "$path" && echo "$path" || status=1
    fi
done
exit $status
