# A guest that plants thousands of fake kernel banners in its RAM (file
# contents in its page cache), to fool anything that finds the banner by
# scanning memory.
i=0
while [ $i -lt 4000 ]; do
	printf 'Linux version 9.9.9-planted (evil@attacker) (gcc 1.0) #1 SMP Mon Jan 1 00:00:00 UTC 2024\n\0'
	i=$((i + 1))
done >/tmp/decoys
truth_section version cat /proc/version
truth_ready
