# Disk write throughput, measured inside the guest: over and over, 5 x 48 MiB in
# 1 MiB direct writes, then 6 MiB in 4 KiB direct writes, each timed with
# /proc/uptime (centiseconds: the 1 MiB pass runs five times over the same
# 48 MiB so that a round lasts long enough to time) and reported on the
# ground-truth port as
#   DD <round> <kind> <bytes> <centiseconds>
truth_section version cat /proc/version
truth_ready
centis() {
	read -r up idle </proc/uptime
	echo "${up%.*}${up#*.}"
}
round=0
while :; do
	t0=$(centis)
	for pass in 1 2 3 4 5; do
		dd if=/dev/zero of=/data/bench bs=1M count=48 oflag=direct conv=notrunc 2>/dev/null
	done
	t1=$(centis)
	dd if=/dev/zero of=/data/bench4k bs=4k count=1536 oflag=direct conv=notrunc 2>/dev/null
	t2=$(centis)
	echo "DD $round seq $((5 * (48 << 20))) $((t1 - t0))" >"$TRUTH"
	echo "DD $round 4k $((1536 * 4096)) $((t2 - t1))" >"$TRUTH"
	round=$((round + 1))
done
