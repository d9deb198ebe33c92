#!/usr/bin/env bash
# Proves that vendor/sqlx-core is the sqlx-core 0.9.0 crate published on crates.io plus the
# changes vendor/README.md describes: one hunk in each of src/net/socket/mod.rs and
# src/pool/connection.rs, each carrying the marker "todo-backend:". Any other difference fails
# (exit 1).
#
# The published crate is cargo's own copy when its download cache has one
# (${CARGO_HOME:-~/.cargo}/registry/cache/index.crates.io-*/), else it is downloaded the way
# cargo downloads it: from the "dl" URL in the config.json of crates.io's sparse index. Either
# way its SHA-256 must equal the checksum the index lists for that version, as cargo requires.
#
# Files that `cargo package` adds to every published crate are ignored, and only when the
# vendored copy does not have them (when it does, they are compared like any other file):
#   .cargo_vcs_info.json  the git commit the crate was packaged from; nothing reads it in a build
#   Cargo.lock            the crate's own lock file; cargo never reads a dependency's lock file
# Cargo.toml (as rewritten by `cargo package`) and Cargo.toml.orig are vendored and compared.
set -euo pipefail
cd "$(dirname "$0")/.."

CRATE=sqlx-core
VERSION=0.9.0
VENDORED=vendor/sqlx-core
MARKED=(src/net/socket/mod.rs src/pool/connection.rs)
MARKER=todo-backend:
INDEX=https://index.crates.io
IGNORED=(.cargo_vcs_info.json Cargo.lock)

fail() { echo "check-vendor: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/check-vendor.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The index entry of a crate named like this one (4 characters or more) is at ab/cd/abcd...
prefix=${CRATE:0:2}/${CRATE:2:2}
want=$(curl -sSfL --retry 3 "$INDEX/$prefix/$CRATE" | python3 -c '
import json, sys
for line in sys.stdin:
    entry = json.loads(line)
    if entry["vers"] == sys.argv[1]:
        print(entry["cksum"])
' "$VERSION") || fail "cannot read the index entry of $CRATE from $INDEX"
[[ $want =~ ^[0-9a-f]{64}$ ]] || fail "the index lists no checksum for $CRATE $VERSION"

crate=""
for cached in "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/index.crates.io-*/"$CRATE-$VERSION.crate"; do
  if [[ -f $cached ]]; then crate=$cached; break; fi
done
if [[ -z $crate ]]; then
  dl=$(curl -sSfL --retry 3 "$INDEX/config.json" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["dl"])') ||
    fail "cannot read $INDEX/config.json"
  # cargo's rule: substitute the markers if the template has any, else append /CRATE/VERSION/download.
  if [[ $dl == *'{'* ]]; then
    url=${dl//'{crate}'/$CRATE}
    url=${url//'{version}'/$VERSION}
    url=${url//'{prefix}'/$prefix}
    url=${url//'{lowerprefix}'/${prefix,,}}
    url=${url//'{sha256-checksum}'/$want}
  else
    url=$dl/$CRATE/$VERSION/download
  fi
  crate=$work/$CRATE-$VERSION.crate
  curl -sSfL --retry 3 -o "$crate" "$url" || fail "cannot download $url"
fi
got=$(sha256sum "$crate" | cut -d' ' -f1)
[[ $got == "$want" ]] || fail "$crate has SHA-256 $got, but the index lists $want for $CRATE $VERSION"

tar -xzf "$crate" -C "$work"
published=$work/$CRATE-$VERSION
[[ -d $published ]] || fail "$crate does not unpack to $CRATE-$VERSION/"

ignored=()
for file in "${IGNORED[@]}"; do
  if [[ -e $published/$file && ! -e $VENDORED/$file ]]; then
    rm -f "$published/$file"
    ignored+=("$file")
  fi
done

rc=0
diff -rq "$published" "$VENDORED" >"$work/differences" || rc=$?
((rc <= 1)) || fail "diff -r failed (status $rc)"
expected=()
for file in "${MARKED[@]}"; do
  expected+=("Files $published/$file and $VENDORED/$file differ")
done
others=$(grep -vxF "$(printf '%s\n' "${expected[@]}")" "$work/differences" || true)
if [[ -n $others ]]; then
  fail "$VENDORED differs from the published $CRATE $VERSION beyond ${MARKED[*]}:
${others//$published/published}"
fi

echo "$VENDORED is $CRATE $VERSION as published (SHA-256 $got) plus one marked hunk in each of ${MARKED[*]}:"
for file in "${MARKED[@]}"; do
  grep -qxF "Files $published/$file and $VENDORED/$file differ" "$work/differences" ||
    fail "$VENDORED/$file is the published file: its marked change is missing"
  # -U0: each run of changed lines is its own hunk, so a stray edit elsewhere in the file is a
  # second hunk (one right next to the marked lines would show in the hunk printed below).
  diff -U0 "$published/$file" "$VENDORED/$file" >"$work/hunk" || true
  hunks=$(grep -c '^@@' "$work/hunk" || true)
  ((hunks == 1)) || fail "$VENDORED/$file has $hunks changed places, not the one marked change:
$(tail -n +3 "$work/hunk")"
  grep -q "^+.*$MARKER" "$work/hunk" ||
    fail "the change in $VENDORED/$file does not carry the marker \"$MARKER\":
$(tail -n +3 "$work/hunk")"
  echo "$file:"
  tail -n +3 "$work/hunk" | sed 's/^/  /'
done
if ((${#ignored[@]})); then
  echo "(not vendored, as intended: ${ignored[*]})"
fi
