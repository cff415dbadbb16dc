# Record/replay: a fixed run of forks and execs that read /dev/urandom, the
# clock and (at step 10) a file of the data disk, every step logged on the
# ground-truth port, then a clean power-off. Replayed, the same lines come
# out; with another disk, what follows step 10 differs.
truth_section version cat /proc/version
truth_ready
sleep 4 # vmscope's tracers find the kernel meanwhile
/bin/true rr-start
n=1
pids=
i=0
while [ $i -lt 30 ]; do
	r=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
	read -r up _ </proc/uptime
	sh -c 'exit 3'
	echo "STEP $i up=$up rand=$r date=$(date +%s)" >"$TRUTH"
	if [ $i -eq 10 ]; then
		[ -f /data/rr-input ] && read -r n </data/rr-input
		j=0
		while [ "$j" -lt "$n" ]; do
			sleep 1000 &
			pids="$pids $!"
			echo "SPAWN $!" >"$TRUTH"
			j=$((j + 1))
		done
	fi
	if [ $i -eq 20 ]; then
		for p in $pids; do
			kill "$p"
			wait "$p"
			echo "KILLED $p" >"$TRUTH"
		done
	fi
	sleep 0.3
	i=$((i + 1))
done
/bin/true rr-end
echo "=== END rr ===" >"$TRUTH"
poweroff -f
