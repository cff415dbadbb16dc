# Resource monitoring tests: a known schedule of load, run on command from the
# control port (ttyS2), and the guest's own counters on the ground-truth port
# when asked. Rounds:
#   snap    sections stat, loadavg, meminfo, vmstat, diskstats, uptime, netdev
#   burn    2 s of one busy user-mode loop
#   forks   200 forks of a short-lived child
#   io      8 MiB written to the data disk with O_DIRECT, then 4 MiB read back
#   quiet   1 s of sleep
#   spin    two busy loops started in the background (on the run queue until unspin)
#   unspin  and stopped
#   net     eth0 as 10.199.0.2/24 (the host's tap is .1), then 20 pings of 1000 bytes
#           to the host and 5 of 200 bytes over loopback
#   vary    about 40 s of CPU bursts and pauses of varying lengths (a fixed
#           pseudo-random schedule), some with fork storms or memory held
truth_section version cat /proc/version
ip link set lo up
control_open
truth_ready

snap() {
	for f in stat loadavg meminfo vmstat diskstats uptime; do
		truth_section "$f" cat "/proc/$f"
	done
	truth_section netdev cat /proc/net/dev
}

net() {
	ip link set eth0 up 2>/dev/null
	ip addr add 10.199.0.2/24 dev eth0 2>/dev/null
	ping -c 20 -s 1000 -A -W 1 10.199.0.1 >/dev/null 2>&1
	ping -c 5 -s 200 -A -W 1 127.0.0.1 >/dev/null 2>&1
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

spin() {
	sh -c 'while :; do :; done' &
	spinners=$!
	sh -c 'while :; do :; done' &
	spinners="$spinners $!"
	sleep 1
}

unspin() {
	kill $spinners
	wait $spinners 2>/dev/null
	spinners=
}

# Centiseconds since boot, from /proc/uptime, with builtins only.
now_cs() {
	read -r up _ </proc/uptime
	cs=${up#*.}
	now=$((${up%.*} * 100 + ${cs#0}))
}

spin_cs() {
	now_cs
	end=$((now + $1))
	while [ $now -lt $end ]; do
		i=0
		while [ $i -lt 2000 ]; do i=$((i + 1)); done
		now_cs
	done
}

vary() {
	seed=7
	now_cs
	stop=$((now + 4000))
	while [ $now -lt $stop ]; do
		seed=$(((seed * 1103515245 + 12345) % 2147483648))
		busy=$((50 + seed / 8 % 250))
		pause=$((30 + seed / 4096 % 200))
		case $((seed / 65536 % 4)) in
		0) forks ;;
		1) dd if=/dev/zero of=/tmp/held bs=1M count=$((8 + seed / 1048576 % 24)) 2>/dev/null ;;
		2) rm -f /tmp/held ;;
		esac
		spin_cs $busy
		sleep $((pause / 100)).$((pause % 100 / 10))
		now_cs
	done
	rm -f /tmp/held
}

control_rounds snap burn forks io quiet vary net spin unspin
