# A user-mode spinner keeps a process's page tables on vCPU 0, so a paused
# VM shows user mappings (translation tests), beside the kernel's.
truth_section version cat /proc/version
(while :; do :; done) &
echo $! >/tmp/spinner.pid
truth_section spinner cat /tmp/spinner.pid
truth_ready
