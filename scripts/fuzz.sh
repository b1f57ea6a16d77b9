#!/usr/bin/env bash
# Runs one fuzz target (log_file, prompt_text, rule_file) for SECONDS (default 300), seeded
# from the shipped fixtures. Needs cargo-fuzz (`cargo install cargo-fuzz`); the machines have
# stable Rust only, so RUSTC_BOOTSTRAP=1 unlocks the flags libFuzzer needs. Crashes land in
# fuzz/artifacts/TARGET/; copy each into fuzz/regressions/TARGET/ so `cargo test` replays it.
# Long runs stay out of CI on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}"
SECONDS_TO_RUN="${2:-300}"
CORPUS="fuzz/corpus/$TARGET"
mkdir -p "$CORPUS"
seed() { local i=0; for f in "$@"; do i=$((i + 1)); head -c 65536 "$f" > "$CORPUS/seed-$i-$(basename "$f")"; done; }
if [ -z "$(ls -A "$CORPUS")" ]; then
    case "$TARGET" in
        log_file) seed $(find fixtures/samples fixtures/malformed fixtures/detections -type f ! -name '*.gz') ;;
        prompt_text) seed $(find fixtures/detections -type f) ;;
        rule_file) seed rules/*.toml fixtures/rules/valid/*.toml fixtures/rules/invalid/*.toml ;;
        *) echo "unknown target $TARGET" >&2; exit 2 ;;
    esac
fi
# Regressions found earlier seed the run too.
[ -d "fuzz/regressions/$TARGET" ] && cp -n fuzz/regressions/"$TARGET"/* "$CORPUS"/ 2>/dev/null || true
# rule_file compiles every regex of its input, which under AddressSanitizer takes seconds for a
# file of a few dozen real rules (0.2 s in release): its timeout is longer.
TIMEOUT=10
[ "$TARGET" = rule_file ] && TIMEOUT=60
RUSTC_BOOTSTRAP=1 cargo fuzz run "$TARGET" "$CORPUS" -- \
    -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -rss_limit_mb=2048 -timeout="$TIMEOUT"
