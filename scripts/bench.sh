#!/usr/bin/env bash
# Throughput comparison on one generated corpus: aihunt (1 and 2 threads) against ripgrep with
# aihunt's own prefilter keywords, and jq parsing every line. Prints MB/s, ratios and peak RSS
# (GNU time). Usage: scripts/bench.sh [MB] [BIG_MB] (default 200, no big run); with BIG_MB it
# also compares peak RSS on a 100 MB and a BIG_MB corpus (the bar is within 20%), with the
# default behaviour-memory bound and with a 32 MB one. Needs rg, jq and /usr/bin/time, which it installs from Debian's packages
# when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
MB="${1:-200}"
BIG_MB="${2:-0}"
WORK="${BENCH_DIR:-/tmp/aihunt-bench}"
mkdir -p "$WORK"

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need rg ripgrep
need jq jq
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

cargo build --release --quiet
BIN=target/release/aihunt
CORPUS="$WORK/corpus-${MB}mb.jsonl"
[ -f "$CORPUS" ] || "$BIN" gen -o "$CORPUS" --size-mb "$MB" --seed 42
"$BIN" rules list --keywords > "$WORK/keywords.txt"
BYTES=$(stat -c %s "$CORPUS")
cat "$CORPUS" > /dev/null   # warm the page cache

declare -A BEST CPU RSS
# measure NAME CMD...: one timed run; keeps NAME's best wall time with that run's CPU time
# (user + system) and peak RSS.
measure() {
    local name=$1; shift
    /usr/bin/time -f "%e %M %U %S" -o "$WORK/time.txt" "$@" > /dev/null 2>&1 || true
    local secs kb user sys
    read -r secs kb user sys < "$WORK/time.txt"
    if [ -z "${BEST[$name]:-}" ] || awk "BEGIN{exit !($secs < ${BEST[$name]})}"; then
        BEST[$name]=$secs; RSS[$name]=$kb; CPU[$name]=$(awk "BEGIN{print $user + $sys}")
    fi
}

# report NAME: NAME's row. MB per CPU second is the rate per core (`-j1` runs on one thread, so
# there the two rates agree; `-j2` adds a reader and the thread that writes output).
report() {
    local name=$1 best=${BEST[$1]} cpu=${CPU[$1]} rss=${RSS[$1]}
    local mbs per_core
    mbs=$(awk "BEGIN{printf \"%.1f\", $BYTES/1e6/($best>0?$best:0.001)}")
    per_core=$(awk "BEGIN{printf \"%.1f\", $BYTES/1e6/($cpu>0?$cpu:0.001)}")
    # The startup run reads one line: a rate would be meaningless.
    [[ $name == *startup* ]] && mbs="-" && per_core="-"
    printf '%-40s %7.2f s %9s MB/s %7.2f CPU s %9s MB/CPU-s %6d MB RSS\n' "$name" "$best" "$mbs" "$cpu" "$per_core" $((rss / 1024))
    echo "$name $best" >> "$WORK/results.txt"
}

# run NAME CMD...: best of 3.
run() {
    local name=$1; shift
    for _ in 1 2 3; do measure "$name" "$@"; done
    report "$name"
}

: > "$WORK/results.txt"
echo "corpus: $CORPUS ($((BYTES / 1000000)) MB), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# One and two threads take turns, best of five each: a busy stretch of this shared VM under
# three runs of one of them alone made the scaling ratio anything from 1.4x to 1.9x.
for _ in 1 2 3 4 5; do
    measure "aihunt scan -j1 -f ndjson" "$BIN" scan -q -j 1 -f ndjson --fail-on never "$CORPUS"
    measure "aihunt scan -j2 -f ndjson" "$BIN" scan -q -j 2 -f ndjson --fail-on never "$CORPUS"
done
report "aihunt scan -j1 -f ndjson"
report "aihunt scan -j2 -f ndjson"
run "rg -c -F -i -f KEYWORDS"          rg -c -F -i -f "$WORK/keywords.txt" "$CORPUS"
# `rg -c` (the bar's command) stops at the first keyword of each line, and every line of the
# corpus has one in its JSON envelope (`:`, `/` and `*` are keywords), so it measures little
# more than splitting lines. Counting every occurrence reads each line to its end, as aihunt's
# prefilter reads each text: the like-for-like cost of the keyword search alone.
run "rg --count-matches -F -i -f KEYWORDS" rg --count-matches -F -i -f "$WORK/keywords.txt" "$CORPUS"
run "jq -c ."                          jq -c . "$CORPUS"
run "aihunt scan (one line, startup)"  "$BIN" scan -q --fail-on never fixtures/samples/insights-logs-audit
# A record with prompt text also pays for compiling the regexes its keywords reach: this one
# (a chat with a shell tool call) reaches nine. The README's sample scan is the second row.
grep -m1 'install.sh' fixtures/detections/content/chat-dumps.jsonl > "$WORK/one-chat.jsonl"
run "aihunt scan (one chat record, startup)" "$BIN" scan -q --fail-on never "$WORK/one-chat.jsonl"
run "aihunt scan fixtures/samples (startup)" "$BIN" scan -q --fail-on never fixtures/samples
# Reading, parsing, normalizing and the behavioural detectors, without the text rules: what
# the text detectors add is the difference from the -j1 line.
run "aihunt scan -j1, behaviour rules only" "$BIN" scan -q -j 1 -f ndjson --fail-on never --no-default-rules --rules rules/behavior.toml "$CORPUS"
# Every prompt an attack and every answer holding a key (`gen --hostile`): each record raises
# alerts, the worst case for building and writing them. Its own 20 MB corpus and rate.
HOSTILE="$WORK/hostile-20mb.jsonl"
[ -f "$HOSTILE" ] || "$BIN" gen -o "$HOSTILE" --size-mb 20 --seed 42 --hostile
CORPUS_BYTES=$BYTES
BYTES=$(stat -c %s "$HOSTILE")
run "aihunt scan -j1, every record hostile (20 MB)" "$BIN" scan -q -j 1 -f ndjson --fail-on never "$HOSTILE"
BYTES=$CORPUS_BYTES

t() { awk -v n="$1 " 'index($0, n) == 1 {print $NF}' "$WORK/results.txt"; }
j1=$(t "aihunt scan -j1"); j2=$(t "aihunt scan -j2"); rg_t=$(t "rg -c"); jq_t=$(t "jq -c")
rg_all=$(t "rg --count-matches")
awk -v j1="$j1" -v j2="$j2" -v rg="$rg_t" -v jq="$jq_t" -v rg_all="$rg_all" 'BEGIN {
    printf "scaling 1→2 threads: %.2fx   aihunt(-j2)/rg time: %.2fx   jq/aihunt(-j2) speed: %.2fx\n", j1/j2, j2/rg, jq/j2
    printf "aihunt(-j1)/rg --count-matches time (one thread each, every keyword occurrence): %.2fx\n", j1/rg_all }'
# The project's bars, each with what this run measured.
bar() { awk -v v="$2" -v op="$3" -v goal="$4" -v name="$1" -v unit="$5" 'BEGIN {
    met = (op == ">=") ? v >= goal : v <= goal
    printf "bar: %-44s %9.2f%s (%s %s%s)  %s\n", name, v, unit, op, goal, unit, met ? "met" : "NOT met" }'; }
startup=$(t "aihunt scan (one line, startup)")
bar "per core, -j1 (MB per CPU second)" "$(awk "BEGIN{print $BYTES/1e6/${CPU["aihunt scan -j1 -f ndjson"]}}")" ">=" 300 ""
bar "aihunt -j2 time / rg time" "$(awk "BEGIN{print $j2/$rg_t}")" "<=" 3 "x"
bar "aihunt -j2 speed / jq speed" "$(awk "BEGIN{print $jq_t/$j2}")" ">=" 5 "x"
bar "scaling, -j1 time / -j2 time" "$(awk "BEGIN{print $j1/$j2}")" ">=" 1.7 "x"
bar "one-line scan (ms)" "$(awk "BEGIN{print $startup*1000}")" "<=" 50 ""

[ "$BIG_MB" -gt 0 ] || exit 0
# Peak RSS against input size: what grows is the behavioural detectors' state, up to its bound.
BIG="$WORK/corpus-${BIG_MB}mb.jsonl"
[ -f "$BIG" ] || "$BIN" gen -o "$BIG" --size-mb "$BIG_MB" --seed 42
SMALL="$WORK/corpus-100mb.jsonl"
[ -f "$SMALL" ] || "$BIN" gen -o "$SMALL" --size-mb 100 --seed 42
rss() { /usr/bin/time -f "%M" -o "$WORK/time.txt" "$@" > /dev/null 2>&1 || true; echo $(( $(cat "$WORK/time.txt") / 1024 )); }
for bound in default 32; do
    extra=(); [ "$bound" = default ] || extra=(--max-behavior-memory "$bound")
    small=$(rss "$BIN" scan -q -j 2 -f ndjson --fail-on never "${extra[@]}" "$SMALL")
    big=$(rss "$BIN" scan -q -j 2 -f ndjson --fail-on never "${extra[@]}" "$BIG")
    awk -v s="$small" -v b="$big" -v bound="$bound" -v mb=100 -v bmb="$BIG_MB" 'BEGIN {
        printf "peak RSS, behaviour bound %-7s  %5d MB input: %4d MB   %5d MB input: %4d MB   ratio %.2f\n", bound, mb, s, bmb, b, b/s }'
    [ "$bound" = default ] && bar "peak RSS ${BIG_MB} MB / 100 MB input" "$(awk "BEGIN{print $big/$small}")" "<=" 1.2 "x"
done
