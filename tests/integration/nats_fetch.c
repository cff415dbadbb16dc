// SPDX-License-Identifier: MIT
/*
 * nats_fetch URLS STREAM DURABLE: a subscriber of the kind vmscoped's
 * events are for. A durable pull consumer of STREAM (made if missing) is
 * read to its end (nothing more for three seconds), each message acked and
 * printed as one JSON line: its subject, its Nats-Msg-Id, its stream
 * sequence and its payload. Run again, the same durable goes on from where
 * it stopped. Exit 0, or 1 with the reason on stderr.
 */
#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, natsStatus s)
{
	fprintf(stderr, "nats_fetch: %s: %s\n", what, natsStatus_GetText(s));
	return 1;
}

static void print(natsMsg *m)
{
	const char *id = NULL;
	jsMsgMetaData *meta = NULL;
	json_t *data = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
	json_t *o;

	natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
	natsMsg_GetMetaData(&meta, m);
	o = json_pack("{s:s,s:s?,s:I,s:o?}", "subject", natsMsg_GetSubject(m), "msg_id", id, "seq",
		      meta ? (json_int_t)meta->Sequence.Stream : (json_int_t)-1, "data", data);
	if (o) {
		char *text = json_dumps(o, JSON_COMPACT);

		puts(text);
		free(text);
	}
	json_decref(o);
	jsMsgMetaData_Destroy(meta);
}

int main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsOptions *o = NULL;
	jsSubOptions so;
	jsCtx *js = NULL;
	const char *servers[16];
	char *list;
	int n = 0, status = 0;
	natsStatus s;

	if (argc != 4) {
		fprintf(stderr, "usage: nats_fetch URLS STREAM DURABLE\n");
		return 2;
	}
	list = strdup(argv[1]);
	for (char *p = strtok(list, ","); p && n < 16; p = strtok(NULL, ","))
		servers[n++] = p;
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, servers, n);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, o);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s != NATS_OK) {
		status = fail("connect", s);
		goto out;
	}
	jsSubOptions_Init(&so);
	so.Stream = argv[2];
	/* Right after a node died the cluster may still be electing leaders: try for 30 s. */
	for (int tries = 0; tries < 15; tries++) {
		s = js_PullSubscribe(&sub, js, ">", argv[3], NULL, &so, NULL);
		if (s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS)
			break;
		nats_Sleep(2000);
	}
	if (s != NATS_OK) {
		status = fail("subscribe", s);
		goto out;
	}
	for (;;) {
		natsMsgList batch = { 0 };

		s = natsSubscription_Fetch(&batch, sub, 256, 3000, NULL);
		if (s == NATS_TIMEOUT)
			break;
		if (s != NATS_OK) {
			status = fail("fetch", s);
			break;
		}
		for (int i = 0; i < batch.Count; i++) {
			print(batch.Msgs[i]);
			natsMsg_AckSync(batch.Msgs[i], NULL, NULL);
		}
		natsMsgList_Destroy(&batch);
	}
out:
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(o);
	free(list);
	nats_Close();
	return status;
}
