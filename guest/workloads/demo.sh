# The demo guest: a few long-lived processes to look at.
truth_section version cat /proc/version
(while :; do sleep 5; done) &
(cd /data && while :; do date >>/data/heartbeat.log; sync; sleep 10; done) &
ifconfig lo 127.0.0.1 up 2>/dev/null
httpd -p 8080 -h /data
truth_ready
