#!/usr/bin/env bash
# A short session with the single executable (npm run package) where no node can be found: a
# PATH of links to every program of /usr/bin, /bin, /usr/sbin and /sbin but node's, an environment of nothing else
# (env -i), a fresh ZENITH_HOME. It creates a pg, takes a snapshot and exports it, lists both,
# pushes the snapshot to a dir storage and pulls it back as a copy (the pull's chunk writers are
# worker threads), archives WAL into a PITR area (postgres runs the executable as its archive
# command, as the postgres OS user when run as root), and removes everything. CI runs it (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/build/zenith-$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m | sed 's/x86_64/x64/; s/aarch64/arm64/')"
[ -x "$bin" ] || { echo "binary-smoke: no $bin; run npm run package first" >&2; exit 1; }

work=$(mktemp -d)
# The postgres OS user must reach the home (zenith runs postgres as that user when run as root).
chmod 755 "$work"
mkdir "$work/path" "$work/home"
for dir in /usr/bin /bin /usr/sbin /sbin; do
  for program in "$dir"/*; do
    name=${program##*/}
    case $name in node | nodejs | npm | npx | corepack) continue ;; esac
    [ -e "$work/path/$name" ] || ln -s "$program" "$work/path/$name"
  done
done

zenith() {
  env -i PATH="$work/path" HOME="$work/home" ZENITH_HOME="$work/zenith" ZENITH_FIRST_PORT=9940 "$bin" "$@"
}
cleanup() {
  zenith pg destroy copy --force >/dev/null 2>&1 || true
  zenith pg destroy smoke --force >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n$ zenith %s\n' "$*"; zenith "$@"; }

if env -i PATH="$work/path" sh -c 'command -v node' >/dev/null; then
  echo "binary-smoke: node is still on the PATH of the session" >&2
  exit 1
fi
echo "binary-smoke: $bin ($(du -m "$bin" | cut -f1) MiB); node on the session's PATH: none"

step --version
step pg create smoke
step snapshot create smoke@one
step snapshot export smoke@one -o "$work/smoke.zenith"
[ -s "$work/smoke.zenith" ] || { echo "binary-smoke: the export wrote nothing" >&2; exit 1; }
step pg list
step snapshot list
zenith pg list --json | grep -q '"status": "running"' || { echo "binary-smoke: pg list --json shows no running pg" >&2; exit 1; }
step storage attach -t dir -n shared -c path="$work/shared"
step snapshot push smoke@one --to shared
step snapshot pull --from shared smoke@one --as pulled
step pg create copy --snapshot pulled --no-start
step pitr create smoke_wal --pg smoke
archive_command=$(zenith pg psql smoke -- -Atc 'show archive_command')
case $archive_command in
  "'$bin' '--zenith-wal-agent' 'archive' "*) echo "archive_command: $archive_command" ;;
  *) echo "binary-smoke: the archive command is not the executable's: $archive_command" >&2; exit 1 ;;
esac
step pitr list
zenith pitr list --json | grep -q '"name": "smoke_wal"'
step pitr destroy smoke_wal
step pg destroy copy
step pg destroy smoke --force
echo
echo "binary-smoke: ok"
