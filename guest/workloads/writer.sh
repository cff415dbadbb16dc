# A writer for disk-capture tests: once a second, one 4 KiB direct write of a
# recognisable pattern to a file on the data disk, each logged on the
# ground-truth port.
truth_section version cat /proc/version
truth_ready
i=0
while :; do
	printf 'vmscope-pattern-%06d' $i | dd of=/data/written bs=4096 seek=$i conv=notrunc,sync oflag=direct 2>/dev/null
	echo "WROTE $i" >"$TRUTH"
	i=$((i + 1))
	sleep 1
done
