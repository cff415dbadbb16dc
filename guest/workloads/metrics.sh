# Resource monitoring tests: a known schedule of load, run on command from the
# control port (ttyS2), and the guest's own counters on the ground-truth port
# when asked. Rounds:
#   snap    sections stat, loadavg, meminfo, vmstat, diskstats, uptime
#   burn    2 s of one busy user-mode loop
#   forks   200 forks of a short-lived child
#   io      8 MiB written to the data disk with O_DIRECT, then 4 MiB read back
#   quiet   1 s of sleep
truth_section version cat /proc/version
ip link set lo up
control_open
truth_ready

snap() {
	for f in stat loadavg meminfo vmstat diskstats uptime; do
		truth_section "$f" cat "/proc/$f"
	done
}

# Arithmetic in the shell itself: user time, no forks (a $(...) per test would
# make it mostly system time).
burn() {
	read -r start _ </proc/uptime
	start=${start%.*}
	now=$start
	while [ "$now" -lt $((start + 2)) ]; do
		i=0
		while [ $i -lt 20000 ]; do i=$((i + 1)); done
		read -r now _ </proc/uptime
		now=${now%.*}
	done
}

forks() {
	i=0
	while [ $i -lt 200 ]; do
		/bin/true
		i=$((i + 1))
	done
}

io() {
	dd if=/dev/zero of=/data/metrics-io bs=1M count=8 oflag=direct 2>/dev/null
	dd if=/data/metrics-io of=/dev/null bs=1M count=4 iflag=direct 2>/dev/null
}

quiet() {
	sleep 1
}

control_rounds snap burn forks io quiet
