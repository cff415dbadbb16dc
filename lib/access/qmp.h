/* SPDX-License-Identifier: MIT */
/*
 * A QMP client: one connection to a QEMU monitor socket, commands in order,
 * asynchronous events skipped. Every exchange has a deadline, so a socket that
 * is silent or does not speak QMP is an error, never a hang.
 */
#ifndef VMSCOPE_ACCESS_QMP_H
#define VMSCOPE_ACCESS_QMP_H

#include <jansson.h>
#include <stddef.h>

#define QMP_MAX_MESSAGE_BYTES (16u << 20)

struct qmp;

/*
 * Connect to the unix socket at path, read the greeting and enter command
 * mode. On failure, a sentence naming the cause is written to errbuf.
 */
int qmp_connect(const char *path, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
		size_t errbuf_len);

/* Connect over an already connected socket (used by tests); takes fd. */
int qmp_connect_fd(int fd, const char *name, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
		   size_t errbuf_len);

void qmp_close(struct qmp *qmp);

/*
 * Run one command. arguments may be NULL; the reference is stolen. On success
 * *ret_return (if not NULL) holds a new reference to the "return" member.
 */
int qmp_execute(struct qmp *qmp, const char *command, json_t *arguments, json_t **ret_return);

/* The same, with fd passed to QEMU (SCM_RIGHTS) along with the command. */
int qmp_execute_fd(struct qmp *qmp, const char *command, json_t *arguments, int pass_fd,
		   json_t **ret_return);

/*
 * qmp_execute() for a caller on another thread (every exchange holds the
 * connection's lock): on failure the error's text is copied to why, since
 * qmp_error() may meanwhile describe another thread's command.
 */
int qmp_call(struct qmp *qmp, const char *command, json_t *arguments, json_t **ret_return,
	     char *why, size_t why_len);

/* Hand fd to QEMU under name (QMP getfd), for arguments like "fd:NAME". */
int qmp_pass_fd(struct qmp *qmp, const char *name, int fd);

/*
 * The count of RESUME events this connection has seen: a change means the VM
 * ran. A pointer, so hot paths can watch it without a call.
 */
const unsigned long *qmp_resumes(const struct qmp *qmp);

/*
 * Consume the events QEMU has sent meanwhile, without waiting: a client that
 * holds the connection for long must, or QEMU buffers them for it without
 * bound (a traced VM stops and resumes, each an event, thousands of times a
 * second). 0 or -errno.
 */
int qmp_read_events(struct qmp *qmp);

/* Run an HMP command line; *ret_output is malloc'ed text owned by the caller. */
int qmp_hmp(struct qmp *qmp, const char *command_line, char **ret_output);

/* The pid of the process at the other end of the socket, or -1. */
int qmp_peer_pid(const struct qmp *qmp);

/* A sentence describing the last failure. */
const char *qmp_error(const struct qmp *qmp);

#endif
