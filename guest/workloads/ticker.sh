# Light and steady, for many guests under one daemon: a process started every
# 3 s that lives 7 s, so that views polled every few seconds see processes
# start and end in every guest ("TICK <pid>" for each on the ground truth).
truth_section version cat /proc/version
(
	while :; do
		sleep 7 &
		echo "TICK $!" >"$TRUTH"
		sleep 3
	done
) &
truth_ready
