#!/bin/sh
# ctest replicator.keygen: keygen prints 64 hex characters, writes a 129-byte mode-0600 file whose
# second half is that public key, refuses to overwrite it (exit 1, file unchanged) and exits 2 on
# usage errors. $1 is the meridian-replicator binary.
set -eu
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

pk=$("$bin" keygen "$dir/k") || fail "keygen failed"
echo "$pk" | grep -Eqx '[0-9a-f]{64}' || fail "public key is not 64 lowercase hex characters: $pk"
[ "$(stat -c %a "$dir/k")" = 600 ] || fail "mode is $(stat -c %a "$dir/k")"
[ "$(stat -c %s "$dir/k")" = 129 ] || fail "size is $(stat -c %s "$dir/k")"
[ "$(cut -c65-128 "$dir/k")" = "$pk" ] || fail "the file's public half differs from the printed key"
before=$(cat "$dir/k")
rc=0; "$bin" keygen "$dir/k" >/dev/null 2>"$dir/err" || rc=$?
[ "$rc" = 1 ] || fail "overwrite attempt exited $rc"
grep -q 'already exists' "$dir/err" || fail "no 'already exists' message"
[ "$(cat "$dir/k")" = "$before" ] || fail "the existing key was changed"
pk2=$("$bin" keygen "$dir/k2")
[ "$pk2" != "$pk" ] || fail "two keys are equal"
for args in "" "keygen" "keygen a b" "bogus"; do
  rc=0; "$bin" $args >/dev/null 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "'$args' exited $rc, not 2"
done
echo ok
