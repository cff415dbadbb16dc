# File operations for file-event tests, run on command: the host sends a
# round's name on the control port (ttyS2); the guest performs it on the data
# disk and logs every operation on the ground-truth port as
#   OP <action> <path> [<new path>]
# then "DONE <round>". Each operation of the "basic" round is followed by a
# sync, so that each reaches the disk in its own journal transaction: a
# disk-level view sees committed states, not what happened between them.
truth_section version cat /proc/version
control_open
truth_ready

op() {
	echo "OP $*" >"$TRUTH"
}

# Fragmented on purpose: every other block written, each its own extent,
# enough of them for an extent tree two levels deep.
fragmented() {
	i=0
	while [ $i -lt "$2" ]; do
		printf 'fragment %06d' $i | dd of="$1" bs=1024 seek=$((i * 2)) conv=notrunc,sync \
			2>/dev/null
		i=$((i + 1))
	done
}

basic() {
	W=/data/w
	mkdir $W && op mkdir $W && sync
	mkdir $W/a && op mkdir $W/a && sync
	mkdir $W/a/b && op mkdir $W/a/b && sync
	mkdir $W/a/b/c && op mkdir $W/a/b/c && sync
	echo hello >$W/a/f1 && op create $W/a/f1 && op write $W/a/f1 && sync
	dd if=/dev/urandom of=$W/a/b/big bs=64k count=64 2>/dev/null &&
		op create $W/a/b/big && op write $W/a/b/big && sync
	fragmented $W/a/frag 400 && op create $W/a/frag && op write $W/a/frag && sync
	chmod 600 $W/a/f1 && op chmod $W/a/f1 && sync
	chown 1000:1000 $W/a/f1 && op chown $W/a/f1 && sync
	mv $W/a/f1 $W/a/b/f1moved && op rename $W/a/f1 $W/a/b/f1moved && sync
	mv $W/a/b/c $W/c2 && op rename $W/a/b/c $W/c2 && sync
	ln $W/a/b/big $W/hard && op link $W/hard && sync
	ln -s a/b/big $W/sym && op symlink $W/sym && sync
	truncate -s 1000 $W/a/b/big && op truncate $W/a/b/big && sync
	echo appended >>$W/a/b/f1moved && op write $W/a/b/f1moved && sync
	rm $W/hard && op delete $W/hard && sync
	rmdir $W/c2 && op rmdir $W/c2 && sync
	mkdir $W/many && op mkdir $W/many
	i=0
	while [ $i -lt 300 ]; do
		n=$(printf '%s/many/a-rather-long-file-name-for-an-htree-%04d' $W $i)
		: >"$n" && op create "$n"
		i=$((i + 1))
	done
	sync
	mv $W/many/a-rather-long-file-name-for-an-htree-0007 $W/a/moved-out-of-htree &&
		op rename $W/many/a-rather-long-file-name-for-an-htree-0007 $W/a/moved-out-of-htree
	rm $W/many/a-rather-long-file-name-for-an-htree-0150 &&
		op delete $W/many/a-rather-long-file-name-for-an-htree-0150
	sync
}

burst() {
	B=/data/burst
	mkdir $B && op mkdir $B
	i=0
	while [ $i -lt 2000 ]; do
		echo "$i" >$B/f$i && op create $B/f$i && op write $B/f$i
		i=$((i + 1))
	done
	sync
	i=0
	while [ $i -lt 2000 ]; do
		rm $B/f$i && op delete $B/f$i
		i=$((i + 1))
	done
	rmdir $B && op rmdir $B
	sync
}

# Two files, one watched: for --path.
small() {
	mkdir /data/s && op mkdir /data/s
	echo keep >/data/s/keep.txt && op create /data/s/keep.txt && op write /data/s/keep.txt
	echo skip >/data/s/skip.bin && op create /data/s/skip.bin && op write /data/s/skip.bin
	sync
}

# Changes to the files "small" made, for a watcher attached after them.
small2() {
	chmod 600 /data/s/keep.txt && op chmod /data/s/keep.txt
	echo more >>/data/s/skip.bin && op write /data/s/skip.bin
	sync
}

# On the second filesystem (vmscope.data2), for disks with several.
second() {
	mkdir /data2/t && op mkdir /data2/t && sync
	echo two >/data2/t/two.txt && op create /data2/t/two.txt && op write /data2/t/two.txt &&
		sync
	mv /data2/t/two.txt /data2/t/moved.txt && op rename /data2/t/two.txt /data2/t/moved.txt
	sync
}

# For the delay from commit to event (bench_capture): files made one at a
# time, each announced on the control port the moment its sync returns.
latency() {
	mkdir -p /data/lat && sync
	i=0
	while [ $i -lt 40 ]; do
		echo $i >/data/lat/f$i && sync && echo "SYNCED /data/lat/f$i" >/dev/ttyS2
		op create /data/lat/f$i
		sleep 0.2
		i=$((i + 1))
	done
}

control_rounds basic burst small small2 second latency
