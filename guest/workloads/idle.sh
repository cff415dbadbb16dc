# Report the kernel's own banner and settle: the baseline every view can start from.
truth_section version cat /proc/version
truth_ready
