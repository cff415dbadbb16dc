# A guest that plants thousands of fake kernel banners and fake vmcoreinfo
# notes in its RAM (file contents in its page cache), to fool anything that
# finds the banner or the note by scanning memory. The notes name a fake
# release and point the kernel's page tables and symbol tables at nonsense;
# each sits at the start of its own 4 KiB block, as the kernel's note does.
i=0
while [ $i -lt 4000 ]; do
	printf 'Linux version 9.9.9-planted (evil@attacker) (gcc 1.0) #1 SMP Mon Jan 1 00:00:00 UTC 2024\n\0'
	i=$((i + 1))
done >/tmp/decoys
note='OSRELEASE=9.9.9-planted\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82a13000\nSYMBOL(_stext)=ffffffff81000000\nSYMBOL(init_top_pgt)=ffffffff8260a000\nNUMBER(phys_base)=1048576\nSYMBOL(kallsyms_names)=ffffffff82000000\nSYMBOL(kallsyms_num_syms)=ffffffff82000000\nSYMBOL(kallsyms_token_table)=ffffffff82100000\nSYMBOL(kallsyms_token_index)=ffffffff82200000\nSYMBOL(kallsyms_offsets)=ffffffff82300000\nSYMBOL(kallsyms_relative_base)=ffffffff82400000\nKERNELOFFSET=0\n'
i=0
while [ $i -lt 2000 ]; do
	printf "$note" | dd bs=4096 conv=sync 2>/dev/null
	i=$((i + 1))
done >/tmp/notes
truth_section version cat /proc/version
truth_section ps ps -o pid,comm
truth_ready
