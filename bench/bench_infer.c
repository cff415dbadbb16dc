// SPDX-License-Identifier: MIT
/*
 * The ext4 inference engine on one big journal transaction: 2000 files
 * created in one directory (then, separately, deleted), as debugfs made them
 * on a real image, fed the way the capture feeds it (data blocks first, then
 * the jbd2 transaction with its commit). Figures: the time from the commit
 * block to the last event (every event of the transaction waits at most
 * that long), per event, and in MB/s of captured writes; against a baseline
 * taken in the same run: copying the same bytes once, which any consumer of
 * the capture pays.
 *
 * Usage: bench_infer [FILES] [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests/unit/ext4_image.h"
#include "disk/ext4/engine.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count(void *ctx, const struct ext4_fs_event *ev)
{
	(void)ev;
	(*(size_t *)ctx)++;
}

struct change {
	uint64_t *blocks;
	uint8_t *data;
	size_t nr;
};

static int make_change(struct ext4_image *img, const char *commands, struct change *c)
{
	long nr = ext4_image_change(img, commands, &c->blocks, &c->data);

	c->nr = nr > 0 ? (size_t)nr : 0;
	return nr > 0 ? 0 : -1;
}

/* Seconds from the first journal write of the transaction to the return of the commit. */
static double feed(struct ext4_engine *e, struct ext4_image *img, const struct change *c,
		   uint32_t seq, double *ret_commit)
{
	uint64_t jstart = ext4_image_journal_start(img);
	double t0;

	for (size_t i = 0; i < c->nr; i++)
		ext4_engine_write(e, c->blocks[i] * EXT4_IMAGE_BLOCK, EXT4_IMAGE_BLOCK,
				  c->data + i * EXT4_IMAGE_BLOCK, 0, 1);
	t0 = now();
	ext4_image_log(e, jstart, seq, 1, c->blocks, c->data, c->nr, 1);
	*ret_commit = now() - t0;
	return *ret_commit;
}

int main(int argc, char **argv)
{
	int files = argc > 1 ? atoi(argv[1]) : 2000, rounds = argc > 2 ? atoi(argv[2]) : 5;
	size_t len = (size_t)files * 192 + 64;
	char *create = malloc(len), *remove = malloc(len), why[256], small[128];
	struct change made = { 0 }, gone = { 0 };
	double best[2] = { 1e9, 1e9 }, copy = 1e9;
	size_t events[2] = { 0, 0 };
	struct ext4_image img;
	FILE *f;

	if (!create || !remove || ext4_image_make(&img, "64bit,metadata_csum,flex_bg", 0))
		return 1;
	snprintf(small, sizeof(small), "%s/small", img.dir);
	f = fopen(small, "w");
	if (!f)
		return 1;
	fputs("a small file\n", f);
	fclose(f);
	strcpy(create, "mkdir /burst\n");
	remove[0] = 0;
	for (int i = 0; i < files; i++) {
		snprintf(create + strlen(create), len - strlen(create),
			 "write %s /burst/f%d\n", small, i);
		snprintf(remove + strlen(remove), len - strlen(remove), "rm /burst/f%d\n", i);
	}
	/* Images: before, after creating, after deleting; each round replays both changes. */
	if (make_change(&img, create, &made) || make_change(&img, remove, &gone))
		return 1;
	for (int r = 0; r < rounds; r++) {
		struct ext4_image replay = img;
		struct ext4_engine *e;
		double t;

		/* Bootstrap from the image as it was: re-make it (same contents every time). */
		if (ext4_image_make(&replay, "64bit,metadata_csum,flex_bg", 0) ||
		    ext4_engine_probe(&e, replay.size, ext4_image_read, &replay, why, sizeof(why)) ||
		    ext4_engine_bootstrap(e, why, sizeof(why)))
			return 1;
		events[0] = events[1] = 0;
		ext4_engine_set_emit(e, count, &events[0]);
		feed(e, &replay, &made, ext4_image_journal_sequence(&replay), &t);
		best[0] = t < best[0] ? t : best[0];
		ext4_engine_set_emit(e, count, &events[1]);
		feed(e, &replay, &gone, ext4_image_journal_sequence(&replay) + 1, &t);
		best[1] = t < best[1] ? t : best[1];
		ext4_engine_free(e);
		ext4_image_drop(&replay);
	}
	for (int r = 0; r < rounds; r++) {
		uint8_t *to = malloc(made.nr * EXT4_IMAGE_BLOCK);
		double t0 = now();

		memcpy(to, made.data, made.nr * EXT4_IMAGE_BLOCK);
		__asm__ volatile("" : : "r"(to) : "memory");
		t0 = now() - t0;
		copy = t0 < copy ? t0 : copy;
		free(to);
	}
	printf("one transaction of %d files in one directory, 1 KiB blocks, best of %d\n", files,
	       rounds);
	printf("%-10s %8s %8s %12s %12s %10s %10s\n", "change", "blocks", "events", "commit->last",
	       "per event", "MB/s", "vs copy");
	for (int k = 0; k < 2; k++) {
		const struct change *c = k ? &gone : &made;
		double mb = (double)c->nr * EXT4_IMAGE_BLOCK / 1e6;

		printf("%-10s %8zu %8zu %9.2f ms %9.2f us %10.0f %9.0fx\n", k ? "delete" : "create",
		       c->nr, events[k], best[k] * 1e3, best[k] * 1e6 / (double)events[k],
		       mb / best[k], best[k] / (copy * (double)c->nr / (double)made.nr));
	}
	printf("baseline: copying the create transaction's %.1f MB once: %.3f ms\n",
	       (double)made.nr * EXT4_IMAGE_BLOCK / 1e6, copy * 1e3);
	ext4_image_drop(&img);
	return 0;
}
