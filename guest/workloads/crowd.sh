# A few hundred processes, for benchmarks of process views.
i=0
while [ $i -lt 300 ]; do
	sleep 100000 &
	i=$((i + 1))
done
truth_section version cat /proc/version
truth_ready
