# Process, module and network activity for tracing tests, run on command
# from the control port (ttyS2). Every action is logged on the ground-truth
# port: "SHELL <pid>" once, then per round
#   EXEC <path>        the shell forks and the child execs path (then exits 0)
#   SUBSHELL <code>    the shell forks a child that exits with code
#   MODULE_UNLOAD <m>  / MODULE_LOAD <m>
#   CONNECT <addr> <port>
#   OTHER <what>       any other child the shell forks (so forks can be counted)
#   SPAWN <pid> <seconds>   a process that lives that long (polling tests)
# and "DONE <round>".
truth_section version cat /proc/version
CONTROL=/dev/ttyS2
stty -F "$CONTROL" raw -echo 2>/dev/null
# Open before saying READY: bytes that reach a closed tty are lost.
exec 3<"$CONTROL"
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

round() {
	procs 20
	# virtio_net: a module on every pinned kernel, with no device here to serve.
	rmmod virtio_net && say OTHER rmmod && say MODULE_UNLOAD virtio_net
	insmod /lib/modules/virtio_net.ko && say OTHER insmod && say MODULE_LOAD virtio_net
	nc -l -p 7000 </dev/null >/dev/null 2>&1 &
	listener=$!
	say OTHER nc -l
	until listening; do
		sleep 0.1
		say OTHER sleep
	done
	nc 127.0.0.1 7000 </dev/null >/dev/null 2>&1
	say OTHER nc
	say CONNECT 127.0.0.1 7000
	kill $listener 2>/dev/null
	wait $listener
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

# For the slowdown benchmark: many short processes, timed by the host.
bench() {
	procs 100
}

while read -r cmd <&3; do
	case "$cmd" in
	round | lifetimes | bench) $cmd ;;
	*) echo "=== ERROR unknown round $cmd ===" >"$TRUTH" ;;
	esac
	say DONE "$cmd"
done
