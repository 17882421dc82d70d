/*
 * aws_backup_watch.c - how an aws-backup vault finds new recovery points
 * (see provider_aws_backup.h): a poll of the vault's listing driven by
 * watch_timeout(), and, with a queue, an SQS reader thread.
 *
 * The reader only receives and sorts messages (aws_events.h): foreign
 * ones are deleted there, malformed ones left, and the accepted ones are
 * handed to the owner with their receipt handles through a list and an
 * eventfd. The owner's watch_poll() describes each recovery point, reports
 * it (cb->ready), and only when that returned 0 - the job is in the
 * journal - deletes the message. Anything that fails on the way leaves the
 * message in the queue: it comes back after its visibility timeout, and
 * the engine's own idempotence makes one job of it however many times.
 *
 * The reader shares only its own state (its SQS client, the queue, the
 * filter, the list) with the watch, reference-counted. Stopping a watch
 * sets `stop` and the SQS client's cancel flag, which ends a long poll
 * (up to 20 s) within about a second (aws_client_set_cancel), and joins
 * the thread: no call of ours is still running when the watch is gone,
 * nor when the process exits (OpenSSL's exit handlers free what a
 * signing thread would still read).
 *
 * A watch without a ready callback (the view, which only lists) polls
 * the listing for changed() and leaves the queue to the engine's watch.
 *
 * Test hook: VAULTFS_TEST_AWS_RECEIVED_PAUSE_MS=N makes the reader pause N
 * ms after receiving an accepted message and before handing it over (and
 * say so in the log), for a test to kill the daemon in between.
 */
#include "aws_backup_int.h"
#include "aws_events.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SQS_WAIT_S 20       /* ReceiveMessage's longest long poll */
#define SQS_BATCH 10        /* and its largest batch */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define SLICE_MS 200        /* how often a backing-off reader looks at stop */
#define RELIST_MS 30000     /* a failed listing is tried again this soon */

/* An accepted message, waiting for the owner. */
struct pending {
	struct pending *next;
	char *msg_id;
	char *receipt;
	char *arn;
};

struct sqs_reader {
	pthread_mutex_t lock; /* guards refs, stop, head */
	int refs;             /* the watch and the thread */
	bool stop;
	atomic_int cancel;    /* the SQS client's: set with stop */
	pthread_t thread;
	struct pending *head;
	int efd;              /* the owner's wakeup */

	struct aws_client *sqs;
	char *vault;          /* the vaultfs vault, for messages */
	char *queue_url;
	char *backup_vault;
	const char *types[AWSB_NTYPES]; /* static strings */
	size_t ntypes;
	unsigned pause_ms;    /* the test hook */
};

struct orch_watch {
	struct orch_provider *p;
	struct aws_backup *ab;
	struct orch_watch_cb cb;
	unsigned poll_ms;
	uint64_t next_poll_ns;   /* 0: now */
	char **listed;           /* the last listing's ARNs, sorted */
	size_t nlisted;
	char **reported;         /* ARNs the engine took (ready() == 0) */
	size_t nreported;
	struct sqs_reader *rd;   /* NULL: no queue */
	char list_err[CM_ERR_MSG_MAX]; /* the last listing's error, or "" */
};

static void pending_free(struct pending *q)
{
	while (q) {
		struct pending *n = q->next;

		free(q->msg_id);
		free(q->receipt);
		free(q->arn);
		free(q);
		q = n;
	}
}

static void reader_put(struct sqs_reader *rd)
{
	bool last;

	pthread_mutex_lock(&rd->lock);
	last = --rd->refs == 0;
	pthread_mutex_unlock(&rd->lock);
	if (!last)
		return;
	pending_free(rd->head);
	aws_client_free(rd->sqs);
	close(rd->efd);
	free(rd->vault);
	free(rd->queue_url);
	free(rd->backup_vault);
	pthread_mutex_destroy(&rd->lock);
	free(rd);
}

static bool reader_stopping(struct sqs_reader *rd)
{
	bool s;

	pthread_mutex_lock(&rd->lock);
	s = rd->stop;
	pthread_mutex_unlock(&rd->lock);
	return s;
}

static void wake(int efd)
{
	uint64_t one = 1;

	if (write(efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		cm_warn("eventfd: %s", strerror(errno));
}

static int delete_message(struct sqs_reader *rd, const char *receipt,
			  struct cm_err *err)
{
	struct cm_json *body = cm_json_new_object(), *ans = NULL;
	int rc;

	cm_json_add_str(body, "QueueUrl", rd->queue_url);
	cm_json_add_str(body, "ReceiptHandle", receipt);
	rc = aws_json(rd->sqs, "DeleteMessage", body, &ans, err);
	cm_json_free(body);
	cm_json_free(ans);
	return rc;
}

static void backoff(struct sqs_reader *rd, unsigned ms);

static void take_message(struct sqs_reader *rd, const struct cm_json *m)
{
	const char *id = cm_json_get_str(m, "MessageId");
	const char *receipt = cm_json_get_str(m, "ReceiptHandle");
	const char *body = cm_json_get_str(m, "Body");
	const char *count = cm_json_get_str(cm_json_get(m, "Attributes"),
					    "ApproximateReceiveCount");
	struct orch_aws_event_filter f = { rd->backup_vault, rd->types,
					   rd->ntypes };
	struct orch_aws_event ev;
	struct pending *q;
	struct cm_err e;

	if (!id)
		id = "(no MessageId)";
	if (!receipt || !body) {
		cm_warn("vault \"%s\": queue message %s has no %s: left in "
			"the queue", rd->vault, id,
			receipt ? "Body" : "ReceiptHandle");
		return;
	}
	switch (orch_aws_event_parse(body, strlen(body), &f, &ev)) {
	case ORCH_AWS_EVENT_MALFORMED:
		cm_warn("vault \"%s\": queue message %s (received %s times) "
			"is not an AWS Backup event vaultfs can read (%s): left "
			"for the queue's redrive policy", rd->vault, id,
			count ? count : "?", ev.why);
		break;
	case ORCH_AWS_EVENT_IGNORE:
		cm_info("vault \"%s\": queue message %s is not for it (%s): "
			"deleted", rd->vault, id, ev.why);
		cm_err_clear(&e);
		if (delete_message(rd, receipt, &e))
			cm_warn("vault \"%s\": queue message %s: %s",
				rd->vault, id, e.msg);
		break;
	case ORCH_AWS_EVENT_ACCEPT:
		cm_info("vault \"%s\": queue message %s: %s %s", rd->vault,
			id, ev.detail_type, ev.recovery_point_arn);
		if (rd->pause_ms) {
			cm_warn("test: message %s received, pausing %u ms",
				id, rd->pause_ms);
			backoff(rd, rd->pause_ms);
		}
		q = cm_xcalloc(1, sizeof(*q));
		q->msg_id = cm_xstrdup(id);
		q->receipt = cm_xstrdup(receipt);
		q->arn = cm_xstrdup(ev.recovery_point_arn);
		pthread_mutex_lock(&rd->lock);
		q->next = rd->head;
		rd->head = q;
		pthread_mutex_unlock(&rd->lock);
		wake(rd->efd);
		break;
	}
	orch_aws_event_release(&ev);
}

static void backoff(struct sqs_reader *rd, unsigned ms)
{
	for (unsigned t = 0; t < ms && !reader_stopping(rd); t += SLICE_MS)
		cm_sleep_ms(SLICE_MS);
}

static void *reader_main(void *arg)
{
	struct sqs_reader *rd = arg;
	unsigned delay = 0;
	char last_err[CM_ERR_MSG_MAX] = "";

	while (!reader_stopping(rd)) {
		struct cm_json *req = cm_json_new_object(), *ans = NULL, *a;
		struct cm_err e;
		int rc;

		cm_json_add_str(req, "QueueUrl", rd->queue_url);
		cm_json_add_num(req, "MaxNumberOfMessages", SQS_BATCH);
		cm_json_add_num(req, "WaitTimeSeconds", SQS_WAIT_S);
		a = cm_json_add_array(req, "MessageSystemAttributeNames");
		cm_json_add(a, NULL, cm_json_new_str("ApproximateReceiveCount"));
		cm_err_clear(&e);
		rc = aws_json(rd->sqs, "ReceiveMessage", req, &ans, &e);
		cm_json_free(req);
		if (rc && reader_stopping(rd))
			break; /* cancelled by awsb_watch_free: no error */
		if (rc) {
			/* said once, until it changes; the poll goes on */
			if (strcmp(e.msg, last_err) != 0)
				cm_error("vault \"%s\": queue %s: %s",
					 rd->vault, rd->queue_url, e.msg);
			snprintf(last_err, sizeof(last_err), "%s", e.msg);
			delay = delay ? delay * 2 : BACKOFF_MIN_MS;
			if (delay > BACKOFF_MAX_MS)
				delay = BACKOFF_MAX_MS;
			backoff(rd, delay);
			continue;
		}
		if (last_err[0])
			cm_info("vault \"%s\": queue %s answers again",
				rd->vault, rd->queue_url);
		last_err[0] = '\0';
		delay = 0;
		for (const struct cm_json *m =
			     cm_json_first(cm_json_get(ans, "Messages"));
		     m && !reader_stopping(rd); m = cm_json_next(m))
			take_message(rd, m);
		cm_json_free(ans);
	}
	reader_put(rd);
	return NULL;
}

static int reader_start(struct orch_watch *w, struct cm_err *err)
{
	struct aws_backup *ab = w->ab;
	struct aws_client_opts o = { 0 };
	const char *pause = getenv("VAULTFS_TEST_AWS_RECEIVED_PAUSE_MS");
	struct sqs_reader *rd;
	struct aws_client *sqs;
	int efd, rc;

	o.region = ab->region;
	o.endpoints = ab->cfg->endpoints;
	o.nendpoints = ab->cfg->nendpoints;
	sqs = aws_client_new(&aws_sqs, &o, err);
	if (!sqs)
		return cm_err_prefix(err, "vault \"%s\"", ab->vault->name);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		rc = cm_err_set(err, errno, "eventfd: %s", strerror(errno));
		aws_client_free(sqs);
		return rc;
	}
	rd = cm_xcalloc(1, sizeof(*rd));
	pthread_mutex_init(&rd->lock, NULL);
	rd->refs = 2; /* the watch's and the thread's */
	rd->efd = efd;
	rd->sqs = sqs;
	rd->vault = cm_xstrdup(ab->vault->name);
	rd->queue_url = cm_xstrdup(ab->queue_url);
	rd->backup_vault = cm_xstrdup(ab->backup_vault);
	for (size_t i = 0; i < ab->ntypes; i++)
		rd->types[i] = ab->type_names[i];
	rd->ntypes = ab->ntypes;
	if (pause)
		rd->pause_ms = (unsigned)strtoul(pause, NULL, 10);
	atomic_init(&rd->cancel, 0);
	aws_client_set_cancel(sqs, &rd->cancel);
	rc = pthread_create(&rd->thread, NULL, reader_main, rd);
	if (rc) {
		rd->refs = 1;
		reader_put(rd);
		return cm_err_set(err, rc, "vault \"%s\": the queue reader: "
				  "%s", ab->vault->name, strerror(rc));
	}
	if (rd->pause_ms)
		cm_warn("test: VAULTFS_TEST_AWS_RECEIVED_PAUSE_MS pauses %u "
			"ms after each message received", rd->pause_ms);
	w->rd = rd;
	return 0;
}

/* ---- ARN sets ---------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool set_has(char **set, size_t n, const char *s)
{
	return n && bsearch(&s, set, n, sizeof(*set), cmp_str);
}

/* Insert s in its place (a vault lists thousands: no re-sort per add). */
static void set_add(char ***set, size_t *n, const char *s)
{
	size_t lo = 0, hi = *n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp((*set)[mid], s);

		if (c == 0)
			return;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*set = cm_xrealloc(*set, (*n + 1) * sizeof(**set));
	memmove(*set + lo + 1, *set + lo, (*n - lo) * sizeof(**set));
	(*set)[lo] = cm_xstrdup(s);
	(*n)++;
}

/* Keep in *set only what `keep` (sorted) has too. */
static void set_keep(char **set, size_t *n, char **keep, size_t nkeep)
{
	size_t k = 0;

	for (size_t i = 0; i < *n; i++) {
		if (set_has(keep, nkeep, set[i]))
			set[k++] = set[i];
		else
			free(set[i]);
	}
	*n = k;
}

static void set_free(char **set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(set[i]);
	free(set);
}

/* ---- the watch --------------------------------------------------------- */

int awsb_watch_new(struct orch_provider *p, const struct orch_watch_opts *o,
		   const struct orch_watch_cb *cb, struct orch_watch **out,
		   struct cm_err *err)
{
	struct orch_watch *w = cm_xcalloc(1, sizeof(*w));
	int rc;

	w->p = p;
	w->ab = awsb_of(p);
	w->cb = *cb;
	/* the vault's pollSeconds: the owners' rescan_ms is the period of
	 * local rescans (rescanSeconds, the view's few seconds), far too
	 * often for a paged API listing */
	(void)o;
	w->poll_ms = w->ab->poll_seconds * 1000u;
	w->next_poll_ns = 0; /* the first poll_ (at start) is due now */
	/* a listing-only owner (the view: no ready) must not take messages
	 * from the queue: it could not acknowledge them */
	if (w->ab->queue_url && cb->ready) {
		rc = reader_start(w, err);
		if (rc) {
			free(w);
			return rc;
		}
	}
	*out = w;
	return 0;
}

int awsb_watch_fd(struct orch_watch *w)
{
	return w->rd ? w->rd->efd : -1;
}

int awsb_watch_timeout(struct orch_watch *w)
{
	uint64_t now = cm_now_ns();

	if (w->next_poll_ns <= now)
		return 0;
	return (int)((w->next_poll_ns - now + 999999) / 1000000);
}

static void report(struct orch_watch *w, const struct orch_recovery_point *rp,
		   int *first, struct cm_err *err)
{
	struct cm_err e;

	cm_err_clear(&e);
	if (w->cb.ready(w->cb.ctx, rp, &e) == 0) {
		set_add(&w->reported, &w->nreported, rp->path);
		return;
	}
	/* not recorded: reported again at the next poll */
	cm_warn("vault \"%s\": %s: %s", rp->vault, rp->name, e.msg);
	if (!*first) {
		*first = -(e.code ? e.code : EIO);
		*err = e;
	}
}

/* The listing: every recovery point the engine has not taken yet is
 * reported; changed() when the set of ARNs moved. */
static int poll_listing(struct orch_watch *w, struct cm_err *err)
{
	struct orch_rp_list l;
	char **arns;
	bool moved;
	int first = 0, rc;

	rc = awsb_list(w->ab, &l, err);
	if (rc)
		return rc;
	arns = cm_xcalloc(l.n + 1, sizeof(*arns));
	for (size_t i = 0; i < l.n; i++)
		arns[i] = cm_xstrdup(l.items[i].path);
	qsort(arns, l.n, sizeof(*arns), cmp_str);
	moved = l.n != w->nlisted;
	for (size_t i = 0; i < l.n && !moved; i++)
		moved = strcmp(arns[i], w->listed[i]) != 0;
	set_free(w->listed, w->nlisted);
	w->listed = arns;
	w->nlisted = l.n;
	if (moved)
		cm_info("vault \"%s\": %zu recovery point%s listed",
			w->ab->vault->name, l.n, l.n == 1 ? "" : "s");
	if (moved && w->cb.changed)
		w->cb.changed(w->cb.ctx);
	/* what left the vault (deleted once archived) is forgotten: the set
	 * stays the size of the vault */
	set_keep(w->reported, &w->nreported, w->listed, w->nlisted);
	for (size_t i = 0; i < l.n && w->cb.ready; i++)
		if (!set_has(w->reported, w->nreported, l.items[i].path))
			report(w, &l.items[i], &first, err);
	orch_rp_list_release(&l);
	return first;
}

/* One accepted message: described, reported, and deleted once the engine
 * has it. */
static void handle_pending(struct orch_watch *w, const struct pending *q)
{
	struct sqs_reader *rd = w->rd;
	struct orch_recovery_point rp;
	struct cm_err e;
	int rc;

	cm_err_clear(&e);
	rc = awsb_inspect_arn(w->ab, q->arn, &rp, &e);
	if (rc == -ENOENT || rc == -EAGAIN) {
		/* gone, or not (yet) COMPLETED: the poll takes it if it ever
		 * is, so the message has nothing more to say */
		cm_info("vault \"%s\": queue message %s: %s; deleted",
			rd->vault, q->msg_id, e.msg);
	} else if (rc) {
		cm_warn("vault \"%s\": queue message %s left in the queue: "
			"%s", rd->vault, q->msg_id, e.msg);
		return;
	} else {
		rc = w->cb.ready(w->cb.ctx, &rp, &e);
		if (rc == 0)
			set_add(&w->reported, &w->nreported, rp.path);
		if (rc == 0 && w->cb.changed &&
		    !set_has(w->listed, w->nlisted, rp.path))
			w->cb.changed(w->cb.ctx);
		orch_rp_release(&rp);
		if (rc) {
			cm_warn("vault \"%s\": queue message %s left in the "
				"queue: %s", rd->vault, q->msg_id, e.msg);
			return;
		}
	}
	cm_err_clear(&e);
	if (delete_message(rd, q->receipt, &e))
		cm_warn("vault \"%s\": queue message %s: %s", rd->vault,
			q->msg_id, e.msg);
	else
		cm_debug("vault \"%s\": queue message %s deleted", rd->vault,
			 q->msg_id);
}

/*
 * A listing that fails (the Backup API unreachable, throttled past its
 * retries, the vault missing) is logged - once until it changes - and
 * tried again within RELIST_MS; it does not fail the watch, whose queue
 * reader goes on: events still find recovery points meanwhile.
 */
static void poll_due(struct orch_watch *w)
{
	unsigned next = w->poll_ms;
	struct cm_err e;

	cm_err_clear(&e);
	if (poll_listing(w, &e) == 0) {
		if (w->list_err[0])
			cm_info("vault \"%s\": listed again", w->ab->vault->name);
		w->list_err[0] = '\0';
	} else {
		if (strcmp(e.msg, w->list_err) != 0)
			cm_error("%s", e.msg);
		snprintf(w->list_err, sizeof(w->list_err), "%s", e.msg);
		if (next > RELIST_MS)
			next = RELIST_MS;
	}
	w->next_poll_ns = cm_now_ns() + (uint64_t)next * 1000000;
}

int awsb_watch_poll(struct orch_watch *w, struct cm_err *err)
{
	struct pending *q = NULL, *rev = NULL;
	uint64_t n;

	(void)err;
	if (w->next_poll_ns <= cm_now_ns())
		poll_due(w);
	if (!w->rd)
		return 0;
	if (read(w->rd->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		cm_warn("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->rd->lock);
	q = w->rd->head;
	w->rd->head = NULL;
	pthread_mutex_unlock(&w->rd->lock);
	/* in the order received */
	while (q) {
		struct pending *next = q->next;

		q->next = rev;
		rev = q;
		q = next;
	}
	for (q = rev; q; q = q->next)
		handle_pending(w, q);
	pending_free(rev);
	return 0;
}

void awsb_watch_free(struct orch_watch *w)
{
	if (!w)
		return;
	if (w->rd) {
		pthread_mutex_lock(&w->rd->lock);
		w->rd->stop = true;
		pthread_mutex_unlock(&w->rd->lock);
		atomic_store(&w->rd->cancel, 1);
		pthread_join(w->rd->thread, NULL);
		reader_put(w->rd);
	}
	set_free(w->listed, w->nlisted);
	set_free(w->reported, w->nreported);
	free(w);
}
