// SPDX-License-Identifier: MIT
/*
 * QMP client over a unix socket.
 *
 * QEMU writes one JSON object per line. We keep a byte buffer, cut it at
 * newlines and hand each line to jansson; a line longer than
 * QMP_MAX_MESSAGE_BYTES ends the conversation. The socket is non-blocking and
 * every wait goes through poll() against the exchange's deadline. Every
 * command carries an id, and its reply is the one that echoes it: the late
 * reply to a command that timed out is passed over, not taken for the next
 * one's (a peer that echoes no ids is answered in order).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "access/qmp.h"
#include "core/util.h"

struct qmp {
	int fd;				       /* -1 when a transport carries the commands */
	const struct qmp_transport *transport; /* or NULL: the socket */
	void *transport_ctx;
	int timeout_ms;
	int peer_pid;
	char name[256]; /* the socket path, for messages */
	char *buf;	/* received, not yet consumed */
	size_t len, cap;
	char error[512];
	char quote[41];		/* what a non-QMP peer sent, printable */
	unsigned long resumes;	/* RESUME events seen */
	json_int_t next_id;	/* of the next command */
	pthread_mutex_t lock;	/* one exchange at a time: a capture polls from its own thread */
};

static int set_error(struct qmp *qmp, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_error(struct qmp *qmp, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(qmp->error, sizeof(qmp->error), fmt, ap);
	va_end(ap);
	return err;
}

/* Wait for events on the socket until deadline; -ETIMEDOUT when it passes. */
static int wait_fd(struct qmp *qmp, short events, long long deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = qmp->fd, .events = events };
		long long left = deadline - monotonic_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(struct qmp *qmp, const char *data, size_t len, long long deadline)
{
	while (len) {
		ssize_t n = send(qmp->fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int err = wait_fd(qmp, POLLOUT, deadline);

			if (err)
				return err;
			continue;
		}
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fill_buffer(struct qmp *qmp, long long deadline)
{
	ssize_t n;
	int err;

	if (qmp->cap - qmp->len < 4096) {
		size_t cap = qmp->cap ? qmp->cap * 2 : 65536;
		char *buf;

		if (cap > QMP_MAX_MESSAGE_BYTES + 4096)
			return -EMSGSIZE;
		buf = realloc(qmp->buf, cap);
		if (!buf)
			return -ENOMEM;
		qmp->buf = buf;
		qmp->cap = cap;
	}
	err = wait_fd(qmp, POLLIN, deadline);
	if (err)
		return err;
	n = recv(qmp->fd, qmp->buf + qmp->len, qmp->cap - qmp->len, 0);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	qmp->len += (size_t)n;
	return 0;
}

static const char *describe(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "no answer in time";
	case -ECONNRESET:
		return "connection closed";
	case -EMSGSIZE:
		return "message too long";
	default:
		return strerror(-err);
	}
}

/* The start of what the peer sent, made safe to quote in a message. */
static const char *printable_prefix(struct qmp *qmp)
{
	char *text = qmp->quote;
	size_t i;

	for (i = 0; i < qmp->len && i < sizeof(qmp->quote) - 1; i++) {
		char c = qmp->buf[i];

		text[i] = (c >= 0x20 && c < 0x7f) ? c : '.';
	}
	text[i] = '\0';
	return text;
}

/* Read one JSON object; skips blank lines. */
static int read_message(struct qmp *qmp, long long deadline, json_t **ret_msg)
{
	for (;;) {
		char *nl = qmp->len ? memchr(qmp->buf, '\n', qmp->len) : NULL;
		json_error_t jerr;
		json_t *msg;
		size_t line_len;

		if (qmp->len && !strchr("{ \t\r\n", qmp->buf[0]))
			return set_error(qmp, -EPROTO, "%s: does not speak QMP (got \"%.40s\")",
					 qmp->name, printable_prefix(qmp));
		if (!nl) {
			int err = fill_buffer(qmp, deadline);

			if (err)
				return set_error(qmp, err, "%s: %s", qmp->name, describe(err));
			continue;
		}
		line_len = (size_t)(nl - qmp->buf);
		msg = line_len > 1 ? json_loadb(qmp->buf, line_len, 0, &jerr) : NULL;
		if (line_len > 1 && (!msg || !json_is_object(msg))) {
			json_decref(msg);
			return set_error(qmp, -EPROTO, "%s: does not speak QMP (got \"%.40s\")",
					 qmp->name, printable_prefix(qmp));
		}
		memmove(qmp->buf, nl + 1, qmp->len - line_len - 1);
		qmp->len -= line_len + 1;
		if (msg) {
			*ret_msg = msg;
			return 0;
		}
	}
}

static int greet(struct qmp *qmp)
{
	long long deadline = monotonic_ms() + qmp->timeout_ms;
	json_t *greeting = NULL;
	int err;

	err = read_message(qmp, deadline, &greeting);
	if (err == -ETIMEDOUT)
		return set_error(qmp, err, "%s: no QMP greeting within %d ms (not a QMP socket, or another "
				 "client holds it: QEMU serves one at a time)",
				 qmp->name, qmp->timeout_ms);
	if (err)
		return err;
	if (!json_object_get(greeting, "QMP")) {
		json_decref(greeting);
		return set_error(qmp, -EPROTO, "%s: does not speak QMP (no greeting)", qmp->name);
	}
	json_decref(greeting);
	return qmp_execute(qmp, "qmp_capabilities", NULL, NULL);
}

int qmp_connect_fd(int fd, const char *name, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
		   size_t errbuf_len)
{
	struct qmp *qmp = calloc(1, sizeof(*qmp));
	struct ucred cred;
	socklen_t cred_len = sizeof(cred);
	int err;

	if (!qmp) {
		close(fd);
		return -ENOMEM;
	}
	/* Every wait is a poll() with a deadline; a blocking read could hang. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
		err = -errno;
		snprintf(errbuf, errbuf_len, "%s: %s", name, strerror(-err));
		close(fd);
		free(qmp);
		return err;
	}
	qmp->fd = fd;
	pthread_mutex_init(&qmp->lock, NULL);
	qmp->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	qmp->peer_pid = -1;
	snprintf(qmp->name, sizeof(qmp->name), "%s", name);
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) && cred.pid > 0)
		qmp->peer_pid = cred.pid;
	err = greet(qmp);
	if (err) {
		snprintf(errbuf, errbuf_len, "%s", qmp->error);
		qmp_close(qmp);
		return err;
	}
	*ret_qmp = qmp;
	return 0;
}

int qmp_connect_transport(const struct qmp_transport *transport, void *ctx, const char *name,
			  int timeout_ms, struct qmp **ret_qmp)
{
	struct qmp *qmp = calloc(1, sizeof(*qmp));

	if (!qmp) {
		transport->close(ctx);
		return -ENOMEM;
	}
	qmp->fd = -1;
	qmp->transport = transport;
	qmp->transport_ctx = ctx;
	pthread_mutex_init(&qmp->lock, NULL);
	qmp->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	qmp->peer_pid = -1;
	snprintf(qmp->name, sizeof(qmp->name), "%s", name);
	*ret_qmp = qmp;
	return 0;
}

void qmp_set_peer_pid(struct qmp *qmp, int pid)
{
	qmp->peer_pid = pid;
}

static int connect_unix(const char *path, int timeout_ms, int *ret_fd)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		goto out;
	/* A listener with a full backlog makes us wait; do so with a deadline. */
	if (errno != EAGAIN && errno != EINPROGRESS) {
		err = -errno;
		goto out_close;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&pfd, 1, timeout_ms) != 1) {
		err = -ETIMEDOUT;
		goto out_close;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		err = err ? -err : -errno;
		goto out_close;
	}
out:
	*ret_fd = fd;
	return 0;
out_close:
	close(fd);
	return err;
}

int qmp_connect(const char *path, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
		size_t errbuf_len)
{
	int fd = -1, err;

	if (timeout_ms <= 0)
		timeout_ms = 5000;
	err = connect_unix(path, timeout_ms, &fd);
	if (err) {
		snprintf(errbuf, errbuf_len, "cannot connect to QMP socket %s: %s", path,
			 err == -ETIMEDOUT ? "no answer in time" : strerror(-err));
		return err;
	}
	return qmp_connect_fd(fd, path, timeout_ms, ret_qmp, errbuf, errbuf_len);
}

int qmp_is_socket(const struct qmp *qmp)
{
	return !qmp->transport;
}

int qmp_reopen(const struct qmp *qmp, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
	       size_t errbuf_len)
{
	if (qmp->transport)
		return qmp->transport->reopen(qmp->transport_ctx, timeout_ms, ret_qmp, errbuf,
					      errbuf_len);
	return qmp_connect(qmp->name, timeout_ms, ret_qmp, errbuf, errbuf_len);
}

void qmp_close(struct qmp *qmp)
{
	if (!qmp)
		return;
	if (qmp->fd >= 0)
		close(qmp->fd);
	if (qmp->transport)
		qmp->transport->close(qmp->transport_ctx);
	pthread_mutex_destroy(&qmp->lock);
	free(qmp->buf);
	free(qmp);
}

/* Send data, the first byte carrying fd as SCM_RIGHTS ancillary data. */
static int send_with_fd(struct qmp *qmp, const char *data, size_t len, int fd,
			long long deadline)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	for (;;) {
		int err;

		n = sendmsg(qmp->fd, &msg, MSG_NOSIGNAL);
		if (n >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = wait_fd(qmp, POLLOUT, deadline);
		if (err)
			return err;
	}
	return send_all(qmp, data + n, len - (size_t)n, deadline);
}

/* The command as one line of JSON text; arguments is stolen. */
static char *command_text(struct qmp *qmp, const char *command, json_t *arguments)
{
	json_t *msg = json_pack("{s:s}", "execute", command);
	char *text;

	if (!msg) {
		json_decref(arguments);
		return NULL;
	}
	if ((arguments && json_object_set_new(msg, "arguments", arguments)) ||
	    (!qmp->transport && json_object_set_new(msg, "id", json_integer(++qmp->next_id)))) {
		json_decref(msg);
		return NULL;
	}
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return text;
}

static int send_command(struct qmp *qmp, const char *command, json_t *arguments, int pass_fd,
			long long deadline)
{
	char *text = command_text(qmp, command, arguments);
	size_t len;
	int err;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len] = '\n'; /* the NUL's byte ends the line; we send len + 1 bytes */
	if (pass_fd >= 0)
		err = send_with_fd(qmp, text, len + 1, pass_fd, deadline);
	else
		err = send_all(qmp, text, len + 1, deadline);
	free(text);
	if (err)
		return set_error(qmp, err, "%s: cannot send %s: %s", qmp->name, command,
				 describe(err));
	return 0;
}

static int command_failed(struct qmp *qmp, const char *command, json_t *reply)
{
	json_t *error = json_object_get(reply, "error");
	const char *desc = json_string_value(json_object_get(error, "desc"));
	const char *class = json_string_value(json_object_get(error, "class"));
	int err = class && !strcmp(class, "CommandNotFound") ? -EOPNOTSUPP : -EIO;

	return set_error(qmp, err, "QMP command %s failed: %s", command,
			 desc ? desc : "no description");
}

static void note_event(struct qmp *qmp, json_t *event)
{
	const char *name = json_string_value(json_object_get(event, "event"));

	if (name && !strcmp(name, "RESUME"))
		qmp->resumes++;
}

static int read_events(struct qmp *qmp)
{
	for (;;) {
		struct pollfd pfd = { .fd = qmp->fd, .events = POLLIN };
		json_t *msg;
		int err;

		if (!(qmp->len && memchr(qmp->buf, '\n', qmp->len))) {
			if (poll(&pfd, 1, 0) <= 0)
				return 0;
			/* Readable: one more second to finish the line is plenty. */
			err = fill_buffer(qmp, monotonic_ms() + 1000);
			if (err)
				return set_error(qmp, err, "%s: %s", qmp->name, describe(err));
			continue;
		}
		err = read_message(qmp, monotonic_ms() + 1000, &msg);
		if (err)
			return err;
		note_event(qmp, msg);
		json_decref(msg);
	}
}

int qmp_read_events(struct qmp *qmp)
{
	int err;

	if (qmp->transport)
		return 0; /* it carries none */
	pthread_mutex_lock(&qmp->lock);
	err = read_events(qmp);
	pthread_mutex_unlock(&qmp->lock);
	return err;
}

/* The "return" of reply into *ret_return, or the error it reports; takes reply. */
static int take_reply(struct qmp *qmp, const char *command, json_t *reply, json_t **ret_return)
{
	json_t *value = json_object_get(reply, "return");
	int err = 0;

	if (!value)
		err = command_failed(qmp, command, reply);
	else if (ret_return)
		*ret_return = json_incref(value);
	json_decref(reply);
	return err;
}

/* One command through the transport: it waits for the reply, and carries no events. */
static int execute_transport(struct qmp *qmp, const char *command, json_t *arguments, int pass_fd,
			     json_t **ret_return)
{
	char *text = command_text(qmp, command, arguments), *answer = NULL;
	json_t *reply;
	int err;

	if (!text)
		return -ENOMEM;
	err = qmp->transport->exchange(qmp->transport_ctx, text, pass_fd, &answer, qmp->error,
				       sizeof(qmp->error));
	free(text);
	if (err)
		return err;
	reply = json_loads(answer, JSON_REJECT_DUPLICATES, NULL);
	free(answer);
	if (!json_is_object(reply)) {
		json_decref(reply);
		return set_error(qmp, -EPROTO, "%s: the reply to %s is not a JSON object",
				 qmp->name, command);
	}
	return take_reply(qmp, command, reply, ret_return);
}

static int execute(struct qmp *qmp, const char *command, json_t *arguments, int pass_fd,
		   json_t **ret_return)
{
	long long deadline = monotonic_ms() + qmp->timeout_ms;
	json_t *reply = NULL;
	int err;

	if (qmp->transport)
		return execute_transport(qmp, command, arguments, pass_fd, ret_return);
	err = send_command(qmp, command, arguments, pass_fd, deadline);
	if (err)
		return err;
	for (;;) {
		json_t *id;

		err = read_message(qmp, deadline, &reply);
		if (err)
			return err;
		id = json_object_get(reply, "id");
		if ((json_object_get(reply, "return") || json_object_get(reply, "error")) &&
		    (!id || json_integer_value(id) == qmp->next_id))
			break;
		note_event(qmp, reply); /* an event, or a late reply to an earlier command */
		json_decref(reply);
	}
	return take_reply(qmp, command, reply, ret_return);
}

int qmp_execute_fd(struct qmp *qmp, const char *command, json_t *arguments, int pass_fd,
		   json_t **ret_return)
{
	int err;

	pthread_mutex_lock(&qmp->lock);
	err = execute(qmp, command, arguments, pass_fd, ret_return);
	pthread_mutex_unlock(&qmp->lock);
	return err;
}

int qmp_call(struct qmp *qmp, const char *command, json_t *arguments, json_t **ret_return,
	     char *why, size_t why_len)
{
	int err;

	pthread_mutex_lock(&qmp->lock);
	err = execute(qmp, command, arguments, -1, ret_return);
	if (err)
		snprintf(why, why_len, "%s", qmp->error);
	pthread_mutex_unlock(&qmp->lock);
	return err;
}

int qmp_execute(struct qmp *qmp, const char *command, json_t *arguments, json_t **ret_return)
{
	return qmp_execute_fd(qmp, command, arguments, -1, ret_return);
}

int qmp_pass_fd(struct qmp *qmp, const char *name, int fd)
{
	return qmp_execute_fd(qmp, "getfd", json_pack("{s:s}", "fdname", name), fd, NULL);
}

const unsigned long *qmp_resumes(const struct qmp *qmp)
{
	if (qmp->transport)
		return qmp->transport->resumes(qmp->transport_ctx);
	return &qmp->resumes;
}

int qmp_hmp(struct qmp *qmp, const char *command_line, char **ret_output)
{
	json_t *ret = NULL;
	char *output;
	int err;

	err = qmp_execute(qmp, "human-monitor-command",
			  json_pack("{s:s}", "command-line", command_line), &ret);
	if (err)
		return err;
	if (!json_is_string(ret)) {
		json_decref(ret);
		return set_error(qmp, -EPROTO, "HMP %s: answer is not text", command_line);
	}
	output = strdup(json_string_value(ret));
	json_decref(ret);
	if (!output)
		return -ENOMEM;
	*ret_output = output;
	return 0;
}

int qmp_peer_pid(const struct qmp *qmp)
{
	return qmp->peer_pid;
}

const char *qmp_error(const struct qmp *qmp)
{
	return qmp->error;
}
