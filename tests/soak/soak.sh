#!/usr/bin/env bash
# Long-run memory check: runs the published service on the simulated microscope for MINUTES minutes and samples its
# resident memory (RSS: managed + native: OpenCV Mats, ONNX Runtime buffers) every 30 s, plus the service's own
# stats (managed heap, fields). Prints a CSV and a verdict comparing the first and last five minutes.
# As a lab uses it: a session per slide of SOAK_TARGET white cells (default 200), the next one started as soon as one
# completes (what the technician's "start" does), so memory that belongs to a session (its slide map, its counted
# cells) is freed as it is in use. SOAK_TARGET=100000: one endless session (that state then grows with it, bounded).
# Usage: [SOAK_TARGET=200] tests/soak/soak.sh [MINUTES=32] [OUT_DIR=/tmp/edgecounter-soak]
set -euo pipefail
minutes=${1:-32}
out=${2:-/tmp/edgecounter-soak}
root=${SOAK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
mkdir -p "$out"
# bash reads a script as it runs it: run from a copy, so that editing this file during a 2-hour run cannot derail it
# (it did once: the run re-executed its first lines and truncated its own figures).
if [ -z "${SOAK_FROM_COPY:-}" ]; then
  cp "$0" "$out/soak.sh"
  SOAK_FROM_COPY=1 SOAK_ROOT="$root" exec bash "$out/soak.sh" "$@"
fi
dotnet build "$root/src/EdgeCounter" -c Release -v q -nologo >/dev/null
# Run from a copy, so that builds during the soak cannot replace the binaries under the running service.
rm -rf "$out/bin" && cp -r "$root/src/EdgeCounter/bin/Release/net10.0" "$out/bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# As the systemd unit runs it (its memory settings, see docs/reliability.md); SOAK_ENV can override, SOAK_ARGS adds settings.
${SOAK_ENV:-env MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 DOTNET_GCgen0size=0x400000 DOTNET_TieredCompilation=0} dotnet "$out/bin/EdgeCounter.dll" \
  --EdgeCounter:StateDirectory="$out/state" --EdgeCounter:Mqtt:Port="$port" --EdgeCounter:DeviceId=soak \
  --EdgeCounter:Counting:DefaultTarget="${SOAK_TARGET:-200}" --EdgeCounter:Mqtt:StatsInterval=00:00:30 \
  --EdgeCounter:Web:Urls=http://127.0.0.1:0 --Logging:LogLevel:EdgeCounter.Hosting.MemoryTrimService=Debug ${SOAK_ARGS:-} >"$out/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; pkill -P $sessions 2>/dev/null; kill $sub $sessions 2>/dev/null || true' EXIT
sleep 5
mosquitto_sub -p "$port" -t 'edgecounter/soak/stats' >"$out/stats.jsonl" 2>/dev/null & sub=$!
# The next slide: a new session each time one completes.
(mosquitto_sub -p "$port" -t 'edgecounter/soak/session/state' 2>/dev/null | while read -r state; do
   case "$state" in *'"state":"completed"'*)
     echo "$state" >>"$out/sessions.jsonl"
     mosquitto_pub -p "$port" -t 'edgecounter/soak/session/set' -m '{"action":"start","sampleId":"soak"}' ;;
   esac
 done) & sessions=$!
# RSS split as the kernel counts it: anonymous (heaps, GC regions, arenas) and file-backed (mapped libraries, the model).
echo "minute,rss_mb,anon_mb,file_mb" >"$out/rss.csv"
# Every 5 minutes, the anonymous memory split by owner (GC regions, JIT code, glibc, mapped native buffers), so that a
# drift can be traced to its component (memory_breakdown.py says how each is recognised).
breakdown="$root/tests/soak/memory_breakdown.py"
echo "minute,$(python3 "$breakdown" 0 --header)" >"$out/breakdown.csv"
end=$(( $(date +%s) + minutes * 60 ))
start=$(date +%s)
while [ "$(date +%s)" -lt "$end" ]; do
  kill -0 $pid 2>/dev/null || { echo "service exited early"; tail -20 "$out/service.log"; exit 1; }
  rss=$(awk '/^VmRSS/ {r=$2/1024} /^RssAnon/ {a=$2/1024} /^RssFile/ {f=$2/1024} END {print r "," a "," f}' /proc/$pid/status)
  echo "$(( ($(date +%s) - start) / 60 )),$rss" >>"$out/rss.csv"
  samples=$(( ${samples:-0} + 1 ))
  if [ $(( samples % 10 )) -eq 1 ]; then
    echo "$(( ($(date +%s) - start) / 60 )),$(python3 "$breakdown" $pid)" >>"$out/breakdown.csv" || true
  fi
  sleep 30
done
kill -TERM $pid; wait $pid || true  # SIGINT is ignored by background jobs of a script
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
rows = [(float(r["minute"]), float(r["rss_mb"])) for r in csv.DictReader(open(f"{out}/rss.csv"))]
first = [r for m, r in rows if 5 <= m < 10] or [r for _, r in rows[:2]]; last = [r for m, r in rows if m >= rows[-1][0] - 5]
stats = [json.loads(l) for l in open(f"{out}/stats.jsonl") if l.strip()]
a, b = sum(first) / len(first), sum(last) / len(last)
print(f"samples {len(rows)}, minutes {rows[-1][0]:.0f}; RSS min {min(r for _, r in rows):.1f} MB, max {max(r for _, r in rows):.1f} MB")
print(f"RSS mean minutes 5-10: {a:.1f} MB; last 5 minutes: {b:.1f} MB; change {b - a:+.1f} MB ({(b - a) / a * 100:+.1f} %)")
if stats:
    s = stats[-1]
    print(f"fields processed {s['processedFields']}, skipped {s['skippedFields']}, managed heap {s.get('managedHeapMb')} MB, inference {s['inferenceMsAverage']} ms")
later = [(m, r) for m, r in rows if m >= 10]
if later:
    window = [r for m, r in later if m < 15] or [later[0][1]]
    base = sum(window) / len(window); worst = max(later, key=lambda x: abs(x[1] - base))
    print(f"from minute 10 (mean of minutes 10-15: {base:.1f} MB): every sample within {abs(worst[1] - base) / base * 100:.1f} % (worst {worst[1]:.1f} MB at minute {worst[0]:.0f})")
parts = list(csv.DictReader(open(f"{out}/breakdown.csv")))
late = [p for p in parts if float(p["minute"]) >= 10]
if len(late) >= 2:
    a, b = late[0], late[-1]
    print(f"anonymous memory by owner, minute {a['minute']} -> {b['minute']} (MB): " + ", ".join(
        f"{k[:-3]} {float(a[k]):.1f} -> {float(b[k]):.1f}" for k in a if k != "minute"))
# The collector's own figure (P/stats gcCommittedMb): what of the working set is the GC's, whichever collector runs, and
# the rest (native buffers, JIT code, mapped files) beside it.
late_stats = [s for s in stats if s.get("uptimeSeconds", 0) >= 600 and "gcCommittedMb" in s]
if late_stats:
    gc = [s["gcCommittedMb"] for s in late_stats]; rest = [s["workingSetMb"] - s["gcCommittedMb"] for s in late_stats]
    print(f"from minute 10, GC committed {min(gc):.1f}-{max(gc):.1f} MB, the rest of the working set {min(rest):.1f}-{max(rest):.1f} MB")
try:
    print(f"sessions completed: {sum(1 for l in open(f'{out}/sessions.jsonl') if l.strip())}")
except FileNotFoundError:
    print("sessions completed: 0")
PY
