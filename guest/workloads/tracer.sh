# Process, module and network activity for tracing tests, run on command
# from the control port (ttyS2). Every action is logged on the ground-truth
# port: "TRUE_EXE <path>" and "SHELL <pid>" once, then per round
#   EXEC <path>        the shell forks and the child execs path (then exits 0)
#   SUBSHELL <code>    the shell forks a child that exits with code
#   MODULE_UNLOAD <m>  / MODULE_LOAD <m>
#   CONNECT <addr> <port>
#   ACCEPT <pid> <port>  the listener (pid) accepted that connection
#   OTHER <what>       any other child the shell forks (so forks can be counted)
#   SPAWN <pid> <seconds>   a process that lives that long (polling tests)
#   OPEN_WRITE <path> / OPEN_READ <path>   the shell opened path to write / read
#   HOSTILE <pid>      a process whose command line is HTML (round "hostile")
# and "DONE <round>". Rounds "listen" and "connect" are round's last two
# steps on their own.
truth_section version cat /proc/version
# Loopback up, or a connect to 127.0.0.1 fails at once and nothing is accepted.
ip link set lo up
control_open
# What an exec of /bin/true really runs (a busybox link, resolved).
echo "TRUE_EXE $(readlink -f /bin/true)" >"$TRUTH"
echo "SHELL $$" >"$TRUTH"
truth_ready

say() {
	echo "$*" >"$TRUTH"
}

# N times: an exec of /bin/true and a subshell exiting with a chosen code.
procs() {
	i=0
	while [ $i -lt "$1" ]; do
		/bin/true && say EXEC /bin/true
		(exit $((i % 7)))
		say SUBSHELL $((i % 7))
		i=$((i + 1))
	done
}

# Port 7000 (hex 1B58) listening (IPv4 or dual-stack IPv6), read with shell
# builtins only: no forks.
listening() {
	for table in /proc/net/tcp /proc/net/tcp6; do
		while read -r _ local _; do
			case "$local" in *:1B58) return 0 ;; esac
		done <"$table"
	done
	return 1
}

# A TCP listener on port 7000 in the background ($listener), once listening.
listen() {
	nc -l -p 7000 </dev/null >/dev/null 2>&1 &
	listener=$!
	say OTHER nc -l
	until listening; do
		sleep 0.1
		say OTHER sleep
	done
}

# Connect to the listener; it exits by itself once it has accepted and read
# the connection to its end (a zombie until waited for). Killed before, it
# may never have accepted.
connect() {
	nc 127.0.0.1 7000 </dev/null >/dev/null 2>&1
	say OTHER nc
	say CONNECT 127.0.0.1 7000
	n=0
	while [ $n -lt 100 ]; do
		read -r _ _ state _ <"/proc/$listener/stat" || break
		[ "$state" = Z ] && break
		sleep 0.1
		say OTHER sleep
		n=$((n + 1))
	done
	[ $n -lt 100 ] || kill "$listener"
	if wait "$listener"; then
		say ACCEPT "$listener" 7000
	else
		say LISTENER_FAILED
	fi
}

round() {
	procs 20
	# virtio_net: a module on every pinned kernel, with no device here to serve.
	rmmod virtio_net && say OTHER rmmod && say MODULE_UNLOAD virtio_net
	insmod /lib/modules/virtio_net.ko && say OTHER insmod && say MODULE_LOAD virtio_net
	listen
	connect
}

# Opens by the shell itself (redirections, no forks): three files written
# (O_WRONLY|O_CREAT|O_TRUNC) and read back (O_RDONLY).
opens() {
	for n in 1 2 3; do
		: >"/tmp/open-$n"
		say OPEN_WRITE "/tmp/open-$n"
		read -r _ <"/tmp/open-$n"
		say OPEN_READ "/tmp/open-$n"
	done
}

# Processes of known lifetimes, five of each, one after another.
lifetimes() {
	for t in 0.05 0.2 0.5 1 2; do
		for n in 1 2 3 4 5; do
			sleep "$t" &
			say SPAWN $! "$t"
			wait $!
		done
	done
}

# For the slowdown benchmark: many short processes, timed by the host and
# by the guest's own clock (which stands still while the VM is stopped).
bench() {
	read -r start _ </proc/uptime
	procs 100
	read -r end _ </proc/uptime
	say UPTIME "$start" "$end"
}

# One exec with more arguments than an event keeps (4 KiB of them): 300 of
# about 20 bytes, then /bin/true's own name.
longexec() {
	set -- $(seq 1 300 | sed 's/^/argument-number-/')
	/bin/true "$@" && say LONG_EXEC $(($# + 1))
}

# A process whose command line is markup, for pages that must show it as text:
# "HOSTILE <pid>".
hostile() {
	sh -c 'sleep 99999; :' '<img src=x onerror=document.title="pwned">' &
	say HOSTILE $!
	# and one whose command line is not UTF-8 (bytes 0xff 0xfe)
	sh -c 'sleep 99999; :' "$(printf '\377\376')" &
	say HOSTILE $!
}

control_rounds round lifetimes bench listen connect opens longexec hostile
