/* SPDX-License-Identifier: MIT */
/* The web page's files, embedded at build time (embed.py); the last entry's name is NULL. */
#ifndef VMSCOPED_WEB_H
#define VMSCOPED_WEB_H

#include <stddef.h>

struct web_asset {
	const char *name; /* its file name: index.html, app.js, dygraph.min.js, ... */
	const char *type;
	const unsigned char *data;
	size_t len;
};

extern const struct web_asset web_assets[];

#endif
