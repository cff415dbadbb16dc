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
 * mode (for a libvirt domain, qmp_connect_libvirt() in libvirt.h). On failure, a sentence naming
 * the cause is written to errbuf.
 */
int qmp_connect(const char *path, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
		size_t errbuf_len);

/* Connect over an already connected socket (used by tests); takes fd. */
int qmp_connect_fd(int fd, const char *name, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
		   size_t errbuf_len);

/*
 * Another way to carry commands than a socket QEMU serves (libvirt's monitor
 * passthrough, libvirt.c): exchange sends one command's JSON text, fd along
 * if >= 0, and returns the reply's text, malloc'ed; it carries no events, so
 * resumes counts them some other way. reopen makes a new connection of the
 * same kind; close ends ctx.
 */
struct qmp_transport {
	int (*exchange)(void *ctx, const char *json, int pass_fd, char **ret_reply, char *errbuf,
			size_t errbuf_len);
	const unsigned long *(*resumes)(void *ctx);
	int (*reopen)(void *ctx, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
		      size_t errbuf_len);
	void (*close)(void *ctx);
};

/* A connection over transport, named name in messages; ctx is closed on failure. */
int qmp_connect_transport(const struct qmp_transport *transport, void *ctx, const char *name,
			  int timeout_ms, struct qmp **ret_qmp);

/* The QEMU process behind a transport, once the transport's owner knows it. */
void qmp_set_peer_pid(struct qmp *qmp, int pid);

/* Whether qmp is a socket QEMU serves, one a forked child may open afresh. */
int qmp_is_socket(const struct qmp *qmp);

/* A second connection to the same monitor, of the same kind. */
int qmp_reopen(const struct qmp *qmp, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
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
