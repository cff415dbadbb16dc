# Long-lived processes and sockets to look at, then the guest's own answer for
# every view, written with shell builtins where possible so that collecting
# the truth creates as few processes as it can. The collector's pid is
# reported: everything with a lower pid predates the truth and must still be
# there when the test looks.
ifconfig lo 127.0.0.1 up 2>/dev/null
sleep 7777 &
sh -c 'exec sleep 8888' &
: >"/tmp/a file with spaces"
tail -f "/tmp/a file with spaces" &
setsid sh -c 'while :; do sleep 3600; done' &
cat /dev/zero >/dev/null &
kill -STOP $!
tail -f /data/docs/numbers.txt >/dev/null &
sleep 99998 | cat >/dev/null &
sleep 99996 | nc -l -p 7070 >/dev/null &
httpd -p 8080 -h /tmp
syslogd -n -R 127.0.0.1:5140 -O /dev/null &
sleep 0.3
logger -t vmscope "a first message makes syslogd open its UDP socket"
sleep 99997 | nc 127.0.0.1 7070 &
sleep 0.3
sync

dump_proc() {
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ -r "$d/stat" ] || continue
		read -r stat <"$d/stat"
		echo "STAT $stat"
		while read -r key a b c d2; do
			case "$key" in Uid: | Gid:) echo "ID $p $key $a" ;; esac
		done <"$d/status"
		echo "CMD $p $(tr '\0' ' ' <"$d/cmdline")"
	done
}

dump_net() {
	for f in tcp tcp6 udp udp6; do
		echo "TABLE $f"
		dump_file /proc/net/$f
	done
}

dump_file() {
	while IFS= read -r line; do echo "$line"; done <"$1"
}

truth_section collector sh -c 'echo $$'
truth_section procs dump_proc
truth_section tasks sh -c 'for d in /proc/[0-9]*/task/*; do p=${d#/proc/}; echo "TASK ${p%%/*} ${d##*/}"; done'
truth_section modules dump_file /proc/modules
truth_section fds sh -c 'for d in /proc/[0-9]*/fd/*; do p=${d#/proc/}; echo "FD ${p%%/*} ${d##*/} $(readlink $d)"; done'
truth_section net dump_net
truth_section dmesg dmesg
truth_section mounts dump_file /proc/mounts
truth_section release dump_file /proc/sys/kernel/osrelease
truth_section meminfo dump_file /proc/meminfo
truth_section loadavg dump_file /proc/loadavg
truth_section stat dump_file /proc/stat
truth_section uptime dump_file /proc/uptime
truth_ready
