// SPDX-License-Identifier: MIT
/*
 * The ext4 inference engine against e2fsprogs: a filesystem made by mke2fs
 * -d, changed with debugfs (mkdir, write, symlink, link/unlink, set inode
 * fields, rm, rmdir), and the blocks that changed fed to the engine, either
 * as one journal transaction written the way jbd2 writes it (descriptor
 * blocks with CSUM_V3 tags, escaped copies, a commit block) or, without a
 * journal, as home-location writes. The events must be exactly the changes
 * debugfs made. Then the jbd2 parser alone: escapes, uncommitted
 * transactions, damaged descriptors.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "disk/ext4/engine.h"

#define MAX_EVENTS 4096

struct fixture {
	char dir[64], image[96], tree[96];
	int fd;
	uint64_t size;
	char *events[MAX_EVENTS];
	size_t nr_events;
	uint64_t write_bytes; /* summed over write events */
};

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char command[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(command, sizeof(command), fmt, ap);
	va_end(ap);
	if (system(command)) {
		fprintf(stderr, "failed: %s\n", command);
		fail();
	}
}

static int read_image(void *ctx, uint64_t offset, void *buf, size_t len)
{
	struct fixture *f = ctx;

	return pread(f->fd, buf, len, (off_t)offset) == (ssize_t)len ? 0 : -EIO;
}

static void on_event(void *ctx, const struct ext4_fs_event *ev)
{
	struct fixture *f = ctx;
	char *line;

	if (ev->action == EXT4_WRITE)
		f->write_bytes += ev->length;
	assert_true(asprintf(&line, "%s %s%s%s", ext4_action_name(ev->action), ev->path,
			     ev->old_path ? " <- " : "", ev->old_path ? ev->old_path : "") > 0);
	assert_true(f->nr_events < MAX_EVENTS);
	f->events[f->nr_events++] = line;
}

static int has_event(struct fixture *f, const char *line)
{
	for (size_t i = 0; i < f->nr_events; i++)
		if (!strcmp(f->events[i], line))
			return 1;
	return 0;
}

static void clear_events(struct fixture *f)
{
	for (size_t i = 0; i < f->nr_events; i++)
		free(f->events[i]);
	f->nr_events = 0;
	f->write_bytes = 0;
}

/* A tree for mke2fs -d: nested directories, files, a big directory. */
static void make_fs(struct fixture *f, const char *features, int big_dir)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/vmscope-test-engine.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->image, sizeof(f->image), "%s/fs.img", f->dir);
	snprintf(f->tree, sizeof(f->tree), "%s/tree", f->dir);
	run("mkdir -p %s/etc %s/docs/deep/er %s/emptydir %s/big && echo motd >%s/etc/motd && "
	    "seq 1 3000 >%s/docs/numbers.txt && echo x >%s/docs/deep/er/leaf && "
	    "echo gone >%s/docs/old.txt",
	    f->tree, f->tree, f->tree, f->tree, f->tree, f->tree, f->tree, f->tree);
	for (int i = 0; i < big_dir; i++)
		run("echo %d >%s/big/a-long-enough-name-to-fill-blocks-%04d", i, f->tree, i);
	run("E2FSPROGS_FAKE_TIME=1000 mke2fs -q -F -t ext4 -b 1024 -O %s "
	    "-U 5c0d1e55-0000-4000-8000-000000000001 -E hash_seed=5c0d1e55-0000-4000-8000-"
	    "000000000002 -d %s %s 32M >/dev/null",
	    features, f->tree, f->image);
	f->fd = open(f->image, O_RDWR);
	assert_true(f->fd >= 0);
	f->size = (uint64_t)lseek(f->fd, 0, SEEK_END);
}

static void drop_fs(struct fixture *f)
{
	clear_events(f);
	close(f->fd);
	run("rm -rf %s", f->dir);
}

static uint64_t journal_start(struct fixture *f);
static int csum_v3; /* the journal's tag format: CSUM_V3, or the 12-byte 64bit tags */

/*
 * mke2fs leaves the journal's features to the kernel, which sets 64BIT at
 * mount on a 64bit filesystem and CSUM_V3 with metadata_csum: do the same.
 */
static void mount_journal(struct fixture *f)
{
	uint32_t incompat;
	uint64_t at = journal_start(f) * 1024 + 40;

	assert_int_equal(pread(f->fd, &incompat, 4, (off_t)at), 4);
	incompat = htobe32(be32toh(incompat) | 0x2u | (csum_v3 ? 0x10u : 0)); /* 64bit, CSUM_V3 */
	assert_int_equal(pwrite(f->fd, &incompat, 4, (off_t)at), 4);
}

static struct ext4_engine *open_engine(struct fixture *f)
{
	struct ext4_engine *e;
	char why[256] = "";

	assert_int_equal(ext4_engine_probe(&e, f->size, read_image, f, why, sizeof(why)), 0);
	assert_int_equal(ext4_engine_bootstrap(e, why, sizeof(why)), 0);
	ext4_engine_set_emit(e, on_event, f);
	return e;
}

/*
 * Change the image with debugfs, keeping a copy of before; return the
 * numbers and new contents of the blocks that differ.
 */
static size_t debugfs_change(struct fixture *f, const char *commands, uint64_t **ret_blocks,
			     uint8_t **ret_data)
{
	char before[128];
	uint32_t bs = 1024;
	size_t nr = 0, n = (size_t)(f->size / bs);
	uint8_t *a = malloc(bs), *b = malloc(bs);
	FILE *cmd;
	int old;

	snprintf(before, sizeof(before), "%s/before.img", f->dir);
	run("cp %s %s", f->image, before);
	snprintf(before + strlen(before), 8, ".cmd");
	cmd = fopen(before, "w");
	assert_non_null(cmd);
	fputs(commands, cmd);
	fclose(cmd);
	run("cd %s && E2FSPROGS_FAKE_TIME=2000 debugfs -w -f %s %s >/dev/null 2>&1", f->dir, before,
	    f->image);
	before[strlen(before) - 4] = 0;
	old = open(before, O_RDONLY);
	assert_true(old >= 0);
	*ret_blocks = malloc(n * sizeof(**ret_blocks));
	*ret_data = malloc(n * bs);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pread(old, a, bs, (off_t)i * bs), bs);
		assert_int_equal(pread(f->fd, b, bs, (off_t)i * bs), bs);
		if (memcmp(a, b, bs)) {
			(*ret_blocks)[nr] = i;
			memcpy(*ret_data + nr * bs, b, bs);
			nr++;
		}
	}
	close(old);
	free(a);
	free(b);
	return nr;
}

/* The journal's first physical block, by debugfs (mke2fs lays it out contiguously). */
static uint64_t journal_start(struct fixture *f)
{
	char command[256];
	uint64_t block = 0;
	FILE *p;

	snprintf(command, sizeof(command), "debugfs -R 'bmap <8> 0' %s 2>/dev/null", f->image);
	p = popen(command, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%" SCNu64, &block), 1);
	pclose(p);
	return block;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

/*
 * Write blocks into the journal as jbd2 would, as transaction seq at
 * journal position 1 onward: descriptors of CSUM_V3 tags (a UUID after the
 * first, the last flagged), copies escaped when they begin with the magic,
 * then the commit block. Each journal block goes to the engine as a write.
 */
static void feed_transaction(struct ext4_engine *e, uint64_t jstart, uint32_t seq,
			     const uint64_t *blocks, const uint8_t *data, size_t nr, int commit)
{
	const uint32_t bs = 1024, tag = csum_v3 ? 16 : 12;
	const uint32_t per_desc = (bs - 12 - 16 - (csum_v3 ? 4 : 0)) / tag;
	uint8_t block[1024];
	uint32_t pos = 1;

	for (size_t first = 0; first < nr; first += per_desc) {
		size_t count = nr - first < per_desc ? nr - first : per_desc, off = 12;

		memset(block, 0, bs);
		put_be32(block, 0xc03b3998u);
		put_be32(block + 4, 1);
		put_be32(block + 8, seq);
		for (size_t i = 0; i < count; i++) {
			const uint8_t *copy = data + (first + i) * bs;
			uint32_t flags = (i ? 0x2 : 0) | (i == count - 1 ? 0x8 : 0);

			if (be32toh(*(const uint32_t *)copy) == 0xc03b3998u)
				flags |= 0x1;
			put_be32(block + off, (uint32_t)blocks[first + i]);
			if (csum_v3) {
				put_be32(block + off + 4, flags);
			} else {
				uint16_t be = htobe16((uint16_t)flags);

				memcpy(block + off + 6, &be, 2);
			}
			put_be32(block + off + 8, (uint32_t)(blocks[first + i] >> 32));
			off += tag + (i ? 0 : 16);
		}
		assert_int_equal(ext4_engine_write(e, (jstart + pos++) * bs, bs, block, 0, 1), 0);
		for (size_t i = 0; i < count; i++) {
			memcpy(block, data + (first + i) * bs, bs);
			if (be32toh(*(uint32_t *)block) == 0xc03b3998u)
				memset(block, 0, 4);
			assert_int_equal(ext4_engine_write(e, (jstart + pos++) * bs, bs, block, 0, 1),
					 0);
		}
	}
	if (!commit)
		return;
	memset(block, 0, bs);
	put_be32(block, 0xc03b3998u);
	put_be32(block + 4, 2);
	put_be32(block + 8, seq);
	assert_int_equal(ext4_engine_write(e, (jstart + pos) * bs, bs, block, 0, 1), 0);
}

/* The journal superblock's sequence: the next transaction's number. */
static uint32_t journal_sequence(struct fixture *f, uint64_t jstart)
{
	uint32_t seq;

	assert_int_equal(pread(f->fd, &seq, 4, (off_t)(jstart * 1024 + 24)), 4);
	return be32toh(seq);
}

/* Apply one debugfs change through the journal: data as home writes first, then the commit. */
static void change_journaled(struct fixture *f, struct ext4_engine *e, const char *commands)
{
	uint64_t *blocks, jstart = journal_start(f);
	uint8_t *data;
	size_t nr = debugfs_change(f, commands, &blocks, &data);

	clear_events(f);
	for (size_t i = 0; i < nr; i++)
		assert_int_equal(ext4_engine_write(e, blocks[i] * 1024, 1024, data + i * 1024, 0, 1),
				 0);
	for (size_t i = 0; i < f->nr_events; i++)
		fprintf(stderr, "# before the commit: %s\n", f->events[i]);
	assert_int_equal(f->nr_events, 0); /* nothing counts before the commit */
	feed_transaction(e, jstart, journal_sequence(f, jstart), blocks, data, nr, 1);
	free(blocks);
	free(data);
}

static void change_unjournaled(struct fixture *f, struct ext4_engine *e, const char *commands)
{
	uint64_t *blocks;
	uint8_t *data;
	size_t nr = debugfs_change(f, commands, &blocks, &data);

	clear_events(f);
	assert_int_equal(ext4_engine_apply(e, blocks, data, nr, 1), 0);
	for (size_t i = 0; i < nr; i++) /* data blocks, now that their owners are known */
		assert_int_equal(ext4_engine_write(e, blocks[i] * 1024, 1024, data + i * 1024, 0, 1),
				 0);
	free(blocks);
	free(data);
}

static void expect(struct fixture *f, const char *const *lines, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		if (!has_event(f, lines[i])) {
			for (size_t k = 0; k < f->nr_events; k++)
				fprintf(stderr, "# seen: %s\n", f->events[k]);
			fprintf(stderr, "# missing: %s\n", lines[i]);
			fail();
		}
}

/* Every event not a write must be one of the expected lines: nothing invented. */
static void expect_only(struct fixture *f, const char *const *lines, size_t nr)
{
	expect(f, lines, nr);
	for (size_t k = 0; k < f->nr_events; k++) {
		int known = !strncmp(f->events[k], "write ", 6);

		for (size_t i = 0; !known && i < nr; i++)
			known = !strcmp(f->events[k], lines[i]);
		if (!known) {
			fprintf(stderr, "# invented: %s\n", f->events[k]);
			fail();
		}
	}
}

static const char STAGE1[] = "mkdir /w\nmkdir /w/sub\nwrite /etc/services /w/file\n"
			     "symlink /w/sym ../etc/motd\n";
static const char *const STAGE1_EVENTS[] = { "mkdir /w", "mkdir /w/sub", "create /w/file",
					     "symlink /w/sym", "write /w/file" };

static const char STAGE2[] = "ln /w/file /w/sub/moved\nunlink /w/file\n"
			     "sif /etc/motd mode 0100600\nsif /docs/deep/er/leaf uid 1000\n"
			     "rm /docs/old.txt\nrmdir /emptydir\nsif /w/sub/moved size 100\n"
			     "ln /docs/numbers.txt /numbers-link\nsif /docs/numbers.txt links_count 2\n"
			     "ln /docs/deep /deep-moved\nunlink /docs/deep\n";
static const char *const STAGE2_EVENTS[] = {
	"rename /w/sub/moved <- /w/file", "chmod /etc/motd", "chown /deep-moved/er/leaf",
	"delete /docs/old.txt", "rmdir /emptydir", "truncate /w/sub/moved",
	"link /numbers-link", "rename /deep-moved <- /docs/deep",
};

static void check_stages(int journaled, const char *features)
{
	struct fixture f = { 0 };
	struct ext4_engine *e;
	struct ext4_engine_stats st;

	make_fs(&f, features, 300);
	/* With checksums, as right after mount: the kernel has not written the journal's new
	 * features yet, the engine must know them from the filesystem's. */
	if (journaled && !csum_v3)
		mount_journal(&f);
	e = open_engine(&f);
	(journaled ? change_journaled : change_unjournaled)(&f, e, STAGE1);
	expect_only(&f, STAGE1_EVENTS, sizeof(STAGE1_EVENTS) / sizeof(*STAGE1_EVENTS));
	/* The written bytes are the file's: a write event covers all of /etc/services. */
	assert_true(f.write_bytes > 0);
	(journaled ? change_journaled : change_unjournaled)(&f, e, STAGE2);
	expect_only(&f, STAGE2_EVENTS, sizeof(STAGE2_EVENTS) / sizeof(*STAGE2_EVENTS));
	/* A path under a renamed directory follows it. */
	(journaled ? change_journaled : change_unjournaled)(&f, e, "sif /deep-moved/er/leaf mode 0100700\n");
	expect_only(&f, (const char *const[]){ "chmod /deep-moved/er/leaf" }, 1);
	/*
	 * The htree directory: a name removed, then one added among 300 (apart:
	 * ext4 never reuses a block freed in the transaction still open).
	 */
	(journaled ? change_journaled : change_unjournaled)(
		&f, e, "rm /big/a-long-enough-name-to-fill-blocks-0100\n");
	expect_only(&f, (const char *const[]){ "delete /big/a-long-enough-name-to-fill-blocks-0100" },
		    1);
	(journaled ? change_journaled : change_unjournaled)(&f, e,
							    "write /etc/motd /big/added-later\n");
	expect_only(&f, (const char *const[]){ "create /big/added-later" }, 1);
	ext4_engine_get_stats(e, &st);
	assert_int_equal(st.errors, 0);
	if (journaled)
		assert_int_equal(st.transactions, 5);
	ext4_engine_free(e);
	drop_fs(&f);
}

static void test_journaled(void **state)
{
	(void)state;
	csum_v3 = 1;
	check_stages(1, "64bit,metadata_csum,flex_bg");
}

/* No metadata_csum: the older 12-byte tags (64bit) and no descriptor tail. */
static void test_journaled_without_checksums(void **state)
{
	(void)state;
	csum_v3 = 0;
	check_stages(1, "64bit,^metadata_csum,flex_bg");
}

static void test_without_journal(void **state)
{
	(void)state;
	check_stages(0, "^has_journal,64bit,metadata_csum");
}

/* A transaction whose commit block never comes changes nothing. */
static void test_uncommitted(void **state)
{
	struct fixture f = { 0 };
	struct ext4_engine *e;
	uint64_t *blocks, jstart;
	uint8_t *data;
	size_t nr;

	(void)state;
	make_fs(&f, "64bit,metadata_csum", 0);
	csum_v3 = 1;
	mount_journal(&f);
	e = open_engine(&f);
	jstart = journal_start(&f);
	nr = debugfs_change(&f, "mkdir /never\n", &blocks, &data);
	feed_transaction(e, jstart, journal_sequence(&f, jstart), blocks, data, nr, 0);
	assert_int_equal(f.nr_events, 0);
	free(blocks);
	free(data);
	ext4_engine_free(e);
	drop_fs(&f);
}

/* Hostile journal contents: a descriptor of garbage tags, a bogus commit. */
static void test_hostile_journal(void **state)
{
	struct fixture f = { 0 };
	struct ext4_engine *e;
	uint8_t block[1024];
	uint64_t jstart;

	(void)state;
	make_fs(&f, "64bit,metadata_csum", 0);
	e = open_engine(&f);
	jstart = journal_start(&f);
	srand(7);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(block); i++)
			block[i] = (uint8_t)rand();
		put_be32(block, 0xc03b3998u);
		put_be32(block + 4, 1 + (uint32_t)(round % 5));
		put_be32(block + 8, journal_sequence(&f, jstart) + (uint32_t)(round % 2));
		ext4_engine_write(e, (jstart + 1 + (uint64_t)(round % 40)) * 1024, 1024, block, 0, 1);
	}
	/* Whatever was applied, the engine still works and the disk is unchanged. */
	ext4_engine_free(e);
	drop_fs(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journaled),
		cmocka_unit_test(test_journaled_without_checksums),
		cmocka_unit_test(test_without_journal),
		cmocka_unit_test(test_uncommitted),
		cmocka_unit_test(test_hostile_journal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
