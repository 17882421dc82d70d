/*
 * progress.c - see progress.h.
 *
 * The display thread keeps a ring of (time, bytes) samples covering the
 * last five seconds; the rate is the slope across the ring, so it follows
 * changes without jumping at every part boundary. The line is redrawn with
 * "\r" and erased to its end with "\033[K" (only ever on a terminal). A
 * terminal that wants no escape sequences (TERM=dumb or unset, or
 * NO_COLOR set, https://no-color.org) gets the old line overwritten with
 * spaces instead: "\r" alone is understood everywhere.
 *
 * Threads: ->lock guards ->stopping and ->total; the thread sleeps on
 * ->wake with a 200 ms timeout, so stop() wakes it at once.
 */
#include "progress.h"
#include "mem.h"
#include "timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS	  200
#define RING	  25 /* samples: 5 s at 200 ms */
#define LABEL_MAX 28

struct sample {
	double t;
	uint64_t bytes;
};

struct vf_progress {
	char label[LABEL_MAX + 4];
	vf_progress_fn fn;
	void *ctx;
	double t0;
	struct sample ring[RING]; /* the display thread's only */
	unsigned nsamples;
	unsigned head;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;	/* protected by ->lock */
	uint64_t total; /* protected by ->lock */
	bool plain;	/* no escape sequences (vf_term_plain) */
	int last_len;	/* the drawer's: the previous line's length */
};

bool vf_term_plain(void)
{
	const char *term = getenv("TERM"), *no_color = getenv("NO_COLOR");

	return !term || !*term || !strcmp(term, "dumb") ||
	       (no_color && *no_color);
}

void vf_format_bytes(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = {"B",   "KiB", "MiB",
					    "GiB", "TiB", "PiB"};
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%llu B", (unsigned long long)n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

static void format_duration(double s, char *out, size_t len)
{
	unsigned long t = s < 0 ? 0 : (unsigned long)(s + 0.5);

	if (t >= 3600)
		snprintf(out, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(out, len, "%lu:%02lu", t / 60, t % 60);
}

static void draw(struct vf_progress *p, uint64_t bytes, uint64_t total,
		 double rate, bool final, double elapsed)
{
	char line[256], done[24], tot[24], r[24], eta[24];
	int n;

	vf_format_bytes(bytes, done, sizeof(done));
	vf_format_bytes((uint64_t)rate, r, sizeof(r));
	n = snprintf(line, sizeof(line), "\r%s  %s", p->label, done);
	if (total) {
		unsigned pct =
		    bytes >= total
			? 100
			: (unsigned)(100.0 * (double)bytes / (double)total);

		vf_format_bytes(total, tot, sizeof(tot));
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      " / %s  %3u%%", tot, pct);
	}
	n += snprintf(line + n, sizeof(line) - (size_t)n, "  %s/s", r);
	if (final) {
		format_duration(elapsed, eta, sizeof(eta));
		n += snprintf(line + n, sizeof(line) - (size_t)n, "  in %s",
			      eta);
	} else if (total && rate > 0 && bytes < total) {
		format_duration((double)(total - bytes) / rate, eta,
				sizeof(eta));
		n += snprintf(line + n, sizeof(line) - (size_t)n, "  ETA %s",
			      eta);
	}
	if (p->plain) {
		/* blank what is left of a longer previous line */
		int len = n, pad = p->last_len - n;

		if (pad > 0 && n + pad < (int)sizeof(line) - 2)
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      "%*s", pad, "");
		p->last_len = len;
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s",
			      final ? "\n" : "");
	} else {
		n += snprintf(line + n, sizeof(line) - (size_t)n, "\033[K%s",
			      final ? "\n" : "");
	}
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* a display only: nothing to do */
	}
}

static double slope(struct vf_progress *p)
{
	const struct sample *newest, *oldest;

	if (p->nsamples < 2)
		return 0;
	newest = &p->ring[(p->head + RING - 1) % RING];
	oldest = &p->ring[p->nsamples < RING ? 0 : p->head];
	if (newest->t <= oldest->t)
		return 0;
	return (double)(newest->bytes - oldest->bytes) /
	       (newest->t - oldest->t);
}

static void *run(void *arg)
{
	struct vf_progress *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		struct timespec ts;
		uint64_t bytes, total;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->wake, &p->lock, &ts);
		if (p->stopping)
			break;
		total = p->total;
		pthread_mutex_unlock(&p->lock);

		bytes = p->fn(p->ctx);
		p->ring[p->head] = (struct sample){cm_now_s(), bytes};
		p->head = (p->head + 1) % RING;
		if (p->nsamples < RING)
			p->nsamples++;
		draw(p, bytes, total, slope(p), false, 0);

		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct vf_progress *vf_progress_start(const char *label, uint64_t total,
				      vf_progress_fn fn, void *ctx, bool quiet)
{
	struct vf_progress *p;
	size_t len = strlen(label);

	if (quiet || !isatty(STDERR_FILENO))
		return NULL;
	p = cm_xcalloc(1, sizeof(*p));
	if (len > LABEL_MAX)
		snprintf(p->label, sizeof(p->label), "...%s",
			 label + len - (LABEL_MAX - 3));
	else
		snprintf(p->label, sizeof(p->label), "%s", label);
	p->fn = fn;
	p->ctx = ctx;
	p->total = total;
	p->plain = vf_term_plain();
	p->t0 = cm_now_s();
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (pthread_create(&p->thread, NULL, run, p) != 0) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->wake);
		free(p);
		return NULL; /* no display is no failure */
	}
	return p;
}

void vf_progress_set_total(struct vf_progress *p, uint64_t total)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->total = total;
	pthread_mutex_unlock(&p->lock);
}

void vf_progress_stop(struct vf_progress *p, bool ok)
{
	double elapsed;
	uint64_t bytes;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);

	bytes = p->fn(p->ctx);
	elapsed = cm_now_s() - p->t0;
	if (ok)
		draw(p, bytes, p->total,
		     elapsed > 0 ? (double)bytes / elapsed : 0, true, elapsed);
	else if (write(STDERR_FILENO, "\n", 1) < 0) {
		/* a display only */
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p);
}

void vf_progress_feed_fn(void *ctx, uint64_t done, uint64_t total)
{
	struct vf_progress_feed *f = ctx;

	atomic_store(&f->done, done);
	if (total && total != atomic_load(&f->total)) {
		atomic_store(&f->total, total);
		vf_progress_set_total(f->bar, total);
	}
}

uint64_t vf_progress_feed_now(void *ctx)
{
	struct vf_progress_feed *f = ctx;

	return atomic_load(&f->done);
}

static atomic_int *cancel_target;

static void on_cancel_signal(int sig)
{
	atomic_store(cancel_target, sig);
}

int vf_cancelled(const char *cmd, int sig, const char *what)
{
	const char *how = sig == SIGINT    ? "interrupted"
			  : sig == SIGTERM ? "terminated"
			  : sig == SIGHUP  ? "hangup"
					   : "stopped by a signal";

	fprintf(stderr, "vaultfs: %s: %s%s%s\n", cmd, how, what ? ": " : "",
		what ? what : "");
	return 128 + sig;
}

void vf_cancel_on_signals(atomic_int *flag)
{
	struct sigaction sa;

	cancel_target = flag;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cancel_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}
