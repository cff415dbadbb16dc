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
#include <ext2fs/ext2fs.h>

#include "disk/ext4/engine.h"
#include "disk/ext4/inode.h"
#include "ext4_image.h"

#define MAX_EVENTS 4096

struct fixture {
	struct ext4_image img;
	char *events[MAX_EVENTS];
	size_t nr_events;
	uint64_t write_bytes; /* summed over write events */
};

static int csum_v3; /* the journal's tag format: CSUM_V3, or the 12-byte 64bit tags */

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

static void make_fs(struct fixture *f, const char *features, int big_dir)
{
	assert_int_equal(ext4_image_make(&f->img, features, big_dir), 0);
}

static void drop_fs(struct fixture *f)
{
	clear_events(f);
	ext4_image_drop(&f->img);
}

static struct ext4_engine *open_engine(struct fixture *f)
{
	struct ext4_engine *e;
	char why[256] = "";

	assert_int_equal(ext4_engine_probe(&e, f->img.size, ext4_image_read, &f->img, why,
					   sizeof(why)), 0);
	assert_int_equal(ext4_engine_bootstrap(e, why, sizeof(why)), 0);
	ext4_engine_set_emit(e, on_event, f);
	return e;
}

static size_t change(struct fixture *f, const char *commands, uint64_t **blocks, uint8_t **data)
{
	long nr = ext4_image_change(&f->img, commands, blocks, data);

	assert_true(nr > 0);
	return (size_t)nr;
}

/* Apply one debugfs change through the journal: data as home writes first, then the commit. */
static void change_journaled(struct fixture *f, struct ext4_engine *e, const char *commands)
{
	uint64_t *blocks, jstart = ext4_image_journal_start(&f->img);
	uint8_t *data;
	size_t nr = change(f, commands, &blocks, &data);

	clear_events(f);
	for (size_t i = 0; i < nr; i++)
		assert_int_equal(ext4_engine_write(e, blocks[i] * 1024, 1024, data + i * 1024, 0, 1),
				 0);
	for (size_t i = 0; i < f->nr_events; i++)
		fprintf(stderr, "# before the commit: %s\n", f->events[i]);
	assert_int_equal(f->nr_events, 0); /* nothing counts before the commit */
	assert_int_equal(ext4_image_log(e, jstart, ext4_image_journal_sequence(&f->img), csum_v3,
					blocks, data, nr, 1), 0);
	free(blocks);
	free(data);
}

static void change_unjournaled(struct fixture *f, struct ext4_engine *e, const char *commands)
{
	uint64_t *blocks;
	uint8_t *data;
	size_t nr = change(f, commands, &blocks, &data);

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

static void put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
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
	/*
	 * The kernel sets the journal's 64BIT (and with metadata_csum CSUM_V3)
	 * at mount and writes its superblock lazily: with checksums, leave it
	 * as mke2fs made it, as right after mount; the engine must know.
	 */
	if (journaled && !csum_v3)
		assert_int_equal(ext4_image_journal_features(&f.img, 0x2), 0);
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

/* Inline data: small directories keep their entries in the inode itself. */
static void test_inline_data(void **state)
{
	(void)state;
	csum_v3 = 1;
	check_stages(1, "64bit,metadata_csum,inline_data");
}

static void test_without_journal(void **state)
{
	(void)state;
	check_stages(0, "^has_journal,64bit,metadata_csum");
}

/* The figures of an engine bootstrapped from the image as it is now. */
static struct ext4_engine_stats bootstrap_stats(struct fixture *f)
{
	struct ext4_engine *e = open_engine(f);
	struct ext4_engine_stats st;

	ext4_engine_get_stats(e, &st);
	ext4_engine_free(e);
	return st;
}

/*
 * A debugfs change that reaches only the journal: the image is put back as
 * it was and the changed blocks logged as its live transaction (then, with
 * revoke, a second transaction revoking that block). What a guest that
 * changed files since its last checkpoint looks like.
 */
static size_t journal_only(struct fixture *f, const char *commands, uint64_t **blocks,
			   uint8_t **data, uint64_t (*revoke)(const uint64_t *, const uint8_t *, size_t))
{
	size_t nr = change(f, commands, blocks, data);
	uint64_t revoked = revoke ? revoke(*blocks, *data, nr) : 0;

	assert_int_equal(ext4_image_restore(&f->img), 0);
	assert_int_equal(ext4_image_log_to_disk(&f->img, 1, *blocks, *data, nr,
						revoke ? &revoked : NULL), 0);
	return nr;
}

/* Bootstrap replays the journal: the new directory and file are known. */
static void test_bootstrap_replays_journal(void **state)
{
	struct fixture f = { 0 };
	struct ext4_engine_stats before, after;
	struct ext4_engine *e;
	uint64_t *blocks;
	uint8_t *data;
	size_t nr;

	(void)state;
	make_fs(&f, "64bit,metadata_csum,flex_bg", 0);
	before = bootstrap_stats(&f);
	nr = journal_only(&f, "mkdir /j\nwrite /etc/motd /j/f\nsif /etc/motd mode 0100600\n",
			  &blocks, &data, NULL);
	e = open_engine(&f);
	ext4_engine_get_stats(e, &after);
	assert_int_equal(after.inodes, before.inodes + 2);
	assert_int_equal(after.directories, before.directories + 1);
	/* And the replayed state is the one later changes are diffed against. */
	assert_int_equal(ext4_engine_apply(e, blocks, data, nr, 1), 0);
	assert_int_equal(f.nr_events, 0);
	free(blocks);
	free(data);
	ext4_engine_free(e);
	drop_fs(&f);
}

/* The changed inode-table block: the one holding the new 5-byte regular file. */
static uint64_t new_file_itable(const uint64_t *blocks, const uint8_t *data, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		for (int slot = 0; slot < 4; slot++) {
			uint16_t mode;
			uint32_t size;

			memcpy(&mode, data + i * 1024 + slot * 256, 2);
			memcpy(&size, data + i * 1024 + slot * 256 + 4, 4);
			if (mode == 0100644 && size == 5 && blocks[i] > 2)
				return blocks[i];
		}
	fail();
	return 0;
}

/*
 * Replay honours revoke records: a later transaction revoked the inode-table
 * block the first one logged, so that copy must not land (recovery skips
 * it too) and the new inode stays unseen.
 */
static void test_replay_revoke(void **state)
{
	struct fixture f = { 0 };
	struct ext4_engine_stats before, after;
	uint64_t *blocks;
	uint8_t *data;

	(void)state;
	/* The control: the same change replayed without the revoke makes the file known. */
	make_fs(&f, "64bit,metadata_csum,flex_bg", 0);
	before = bootstrap_stats(&f);
	journal_only(&f, "write /etc/motd /new-file\n", &blocks, &data, NULL);
	after = bootstrap_stats(&f);
	assert_int_equal(after.inodes, before.inodes + 1);
	free(blocks);
	free(data);
	drop_fs(&f);
	/* Revoked, the block's logged copy must not land. */
	make_fs(&f, "64bit,metadata_csum,flex_bg", 0);
	before = bootstrap_stats(&f);
	journal_only(&f, "write /etc/motd /new-file\n", &blocks, &data, new_file_itable);
	after = bootstrap_stats(&f);
	assert_int_equal(after.inodes, before.inodes);
	free(blocks);
	free(data);
	drop_fs(&f);
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
	e = open_engine(&f);
	jstart = ext4_image_journal_start(&f.img);
	nr = change(&f, "mkdir /never\n", &blocks, &data);
	assert_int_equal(ext4_image_log(e, jstart, ext4_image_journal_sequence(&f.img), 1, blocks,
					data, nr, 0), 0);
	assert_int_equal(f.nr_events, 0);
	free(blocks);
	free(data);
	ext4_engine_free(e);
	drop_fs(&f);
}

/* The first block of a directory, as debugfs maps it. */
static uint64_t directory_block(struct fixture *f, const char *path)
{
	char command[512];
	uint64_t block = 0;
	FILE *p;

	snprintf(command, sizeof(command), "debugfs -R 'bmap %s 0' %s 2>/dev/null", path,
		 f->img.path);
	p = popen(command, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%" SCNu64, &block), 1);
	pclose(p);
	return block;
}

static struct ext4_engine_stats stats(struct ext4_engine *e)
{
	struct ext4_engine_stats st;

	ext4_engine_get_stats(e, &st);
	return st;
}

/*
 * metadata_csum and CSUM_V3 verified: a commit block whose checksum is
 * wrong commits nothing; an inode whose checksum is wrong (debugfs writes
 * it so) is not believed, in a transaction that otherwise checks. Each is
 * counted; neither invents an event; what follows is still followed.
 */
static void test_checksums(void **state)
{
	struct fixture f = { 0 };
	struct ext4_engine *e;
	uint64_t *blocks, jstart;
	uint32_t seq;
	uint8_t *data;
	size_t nr;

	(void)state;
	make_fs(&f, "64bit,metadata_csum", 0);
	e = open_engine(&f);
	assert_int_equal(stats(e).checksum_failures, 0);
	jstart = ext4_image_journal_start(&f.img);
	seq = ext4_image_journal_sequence(&f.img);
	nr = change(&f, "mkdir /bad-commit\n", &blocks, &data);
	assert_true(nr < 60); /* one descriptor: the commit goes after it and the copies */
	assert_int_equal(ext4_image_log(e, jstart, seq, 1, blocks, data, nr, 0), 0);
	assert_int_equal(ext4_image_commit(e, jstart, 2 + (uint32_t)nr, seq, 1), 0);
	assert_int_equal(f.nr_events, 0);
	assert_int_equal(stats(e).checksum_failures, 1);
	free(blocks);
	free(data);

	/*
	 * /bad-commit is on the image, in the blocks of this next transaction
	 * too, which checks: seen now. /bad-inode's inode does not: not seen.
	 */
	change_journaled(&f, e, "mkdir /bad-inode\nsif /bad-inode checksum 0xbad\n");
	expect_only(&f, (const char *const[]){ "mkdir /bad-commit" }, 1);
	assert_int_equal(stats(e).checksum_failures, 2);

	/* Next, a good one: seen. Its inode shares a block with /bad-inode's, counted again. */
	change_journaled(&f, e, "mkdir /good\n");
	expect_only(&f, (const char *const[]){ "mkdir /good" }, 1);
	assert_int_equal(stats(e).checksum_failures, 3);

	/* The root directory's block logged with its checksum tail wrong: its new name is not. */
	{
		uint64_t root = directory_block(&f, "/"), *b;
		uint8_t *d;
		size_t n = change(&f, "mkdir /bad-dir\n", &b, &d), k;

		for (k = 0; k < n && b[k] != root; k++)
			;
		assert_true(k < n);
		d[k * 1024 + 1023] ^= 0x40; /* the tail's CRC32C */
		clear_events(&f);
		assert_int_equal(ext4_image_log(e, ext4_image_journal_start(&f.img),
						ext4_image_journal_sequence(&f.img), 1, b, d, n, 1),
				 0);
		for (size_t i = 0; i < f.nr_events; i++)
			assert_null(strstr(f.events[i], "bad-dir"));
		assert_true(stats(e).checksum_failures >= 4);
		free(b);
		free(d);
	}

	ext4_engine_free(e);
	drop_fs(&f);
}

static void put_dirent(uint8_t *at, uint32_t ino, uint16_t rec_len, const char *name, uint8_t type)
{
	uint32_t le_ino = htole32(ino);
	uint16_t le_len = htole16(rec_len);

	memcpy(at, &le_ino, 4);
	memcpy(at + 4, &le_len, 2);
	at[6] = (uint8_t)strlen(name);
	at[7] = type;
	memcpy(at + 8, name, strlen(name));
}

/*
 * A directory block's tail, as the kernel finds it: at the end of the chain
 * of records. A leaf's checks or not; an htree root, whose ".." record spans
 * a leaf's old tail left in its last bytes (what Linux 6.1 leaves when it
 * indexes a directory), has no tail to check, whatever those bytes say.
 */
static void test_dir_block_tail(void **state)
{
	uint8_t leaf[1024] = { 0 }, root[1024] = { 0 };
	uint32_t seed = 0x12345678, ino = htole32(21), gen = htole32(7), c;

	(void)state;
	put_dirent(leaf, 21, 12, ".", 2);
	put_dirent(leaf + 12, 2, 12, "..", 2);
	put_dirent(leaf + 24, 30, 1024 - 24 - 12, "file", 1);
	put_dirent(leaf + 1012, 0, 12, "", 0xde);
	leaf[1012 + 6] = 0; /* the tail's name_len and reserved byte are zero */
	c = ext2fs_crc32c_le(
		ext2fs_crc32c_le(ext2fs_crc32c_le(seed, (uint8_t *)&ino, 4), (uint8_t *)&gen, 4),
		leaf, 1012);
	c = htole32(c);
	memcpy(leaf + 1020, &c, 4);
	assert_true(ext4_dir_block_csum_ok(leaf, 1024, seed, 21, 7));
	assert_false(ext4_dir_block_csum_ok(leaf, 1024, seed, 21, 8)); /* another generation */
	leaf[30] ^= 1;
	assert_false(ext4_dir_block_csum_ok(leaf, 1024, seed, 21, 7));

	put_dirent(root, 21, 12, ".", 2);
	put_dirent(root + 12, 2, 1024 - 12, "..", 2);
	memcpy(root + 1012, leaf + 1012, 12); /* the old leaf's tail, stale */
	root[1023] ^= 0x40;
	assert_true(ext4_dir_block_csum_ok(root, 1024, seed, 21, 7));
}

/*
 * A transaction whose sequence number skips one: the one skipped was never
 * seen, and is counted; one older than the last applied is not applied again.
 */
static void test_sequence_gaps(void **state)
{
	struct fixture f = { 0 };
	struct ext4_engine *e;
	uint64_t *blocks, jstart;
	uint32_t seq;
	uint8_t *data;
	size_t nr;

	(void)state;
	make_fs(&f, "64bit,metadata_csum", 0);
	e = open_engine(&f);
	change_journaled(&f, e, "mkdir /one\n");
	assert_true(has_event(&f, "mkdir /one"));
	assert_int_equal(stats(e).missed_transactions, 0);
	jstart = ext4_image_journal_start(&f.img);
	seq = ext4_image_journal_sequence(&f.img);
	nr = change(&f, "mkdir /three\n", &blocks, &data);
	clear_events(&f);
	assert_int_equal(ext4_image_log(e, jstart, seq + 1, 1, blocks, data, nr, 1), 0);
	assert_true(has_event(&f, "mkdir /three"));
	assert_int_equal(stats(e).missed_transactions, 1);
	{
		uint64_t *blocks2;
		uint8_t *data2;
		size_t nr2 = change(&f, "rmdir /three\n", &blocks2, &data2);

		clear_events(&f);
		assert_int_equal(ext4_image_log(e, jstart, seq + 2, 1, blocks2, data2, nr2, 1), 0);
		assert_true(has_event(&f, "rmdir /three"));
		free(blocks2);
		free(data2);
	}
	/* mkdir's transaction again, as a late copy would bring it: not applied again. */
	clear_events(&f);
	assert_int_equal(ext4_image_log(e, jstart, seq + 1, 1, blocks, data, nr, 1), 0);
	assert_int_equal(f.nr_events, 0);
	assert_int_equal(stats(e).missed_transactions, 1);
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
	jstart = ext4_image_journal_start(&f.img);
	srand(7);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(block); i++)
			block[i] = (uint8_t)rand();
		put_be32(block, 0xc03b3998u);
		put_be32(block + 4, 1 + (uint32_t)(round % 5));
		put_be32(block + 8, ext4_image_journal_sequence(&f.img) + (uint32_t)(round % 2));
		ext4_engine_write(e, (jstart + 1 + (uint64_t)(round % 40)) * 1024, 1024, block, 0, 1);
	}
	/* Garbage invents no file event; and the engine still follows the real journal. */
	for (size_t i = 0; i < f.nr_events; i++)
		fprintf(stderr, "# from garbage: %s\n", f.events[i]);
	assert_int_equal(f.nr_events, 0);
	change_journaled(&f, e, "mkdir /after\n");
	assert_true(has_event(&f, "mkdir /after"));
	ext4_engine_free(e);
	drop_fs(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journaled),
		cmocka_unit_test(test_journaled_without_checksums),
		cmocka_unit_test(test_inline_data),
		cmocka_unit_test(test_without_journal),
		cmocka_unit_test(test_bootstrap_replays_journal),
		cmocka_unit_test(test_replay_revoke),
		cmocka_unit_test(test_uncommitted),
		cmocka_unit_test(test_hostile_journal),
		cmocka_unit_test(test_checksums),
		cmocka_unit_test(test_dir_block_tail),
		cmocka_unit_test(test_sequence_gaps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
