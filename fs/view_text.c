/*
 * view_text.c - what the view's files say, as pure functions of engine
 * snapshots and counters (see view.h): the daemon's status, the
 * Prometheus metrics, a recovery point's status and info.json, and the
 * parsing of what is written to a control file. No locks, no threads: the
 * unit tests call these directly.
 *
 * Formats are stable to parse: status files are "key: value" lines with
 * lower-case keys (a value may carry a human form after the number, as in
 * "archived: 1073741824 bytes (1.0 GiB)"); info.json is one JSON object.
 */
#include "view.h"

#include "buf.h"
#include "json.h"
#include "dest.h"
#include "mem.h"
#include "metrics.h"
#include "orch.h"
#include "timeutil.h"
#include "rp.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- control files ----------------------------------------------------- */

static const char *const control_words[] = {
    [VIEW_CTL_EXPORT] = "start",
    [VIEW_CTL_CANCEL] = "cancel",
};

/* What was written, quoted for a log line: printable ASCII as is, the rest
 * as \xNN, at most 40 bytes of input. */
static void quote(const char *p, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < 40 && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o +=
			    (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	if (n > 40 && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

int view_control_parse(enum view_control which, const char *data, size_t len,
		       struct cm_err *err)
{
	const char *word = control_words[which];
	size_t a = 0, b = len;
	char q[256];

	while (a < b && isspace((unsigned char)data[a]))
		a++;
	while (b > a && isspace((unsigned char)data[b - 1]))
		b--;
	if (a == b)
		return 0;
	if (b - a == strlen(word) && memcmp(data + a, word, b - a) == 0 &&
	    !memchr(data, '\0', len))
		return 0;
	quote(data, len, q, sizeof(q));
	return cm_err_set(err, EINVAL,
			  "unknown command \"%s\": write \"%s\" or touch the "
			  "file",
			  q, word);
}

/* ---- the daemon's status ----------------------------------------------- */

char *view_status_text(const struct orch_config *cfg,
		       const struct orch_snapshot *snap,
		       const struct view_stats *st, time_t now)
{
	struct cm_buf b;
	char h[32], when[32], *dest;

	cm_buf_init(&b, 0);
	cm_time_iso8601(st->started, when, sizeof(when));
	cm_buf_printf(&b, "started: %s\n", when);
	cm_buf_printf(&b, "uptime: %lld s\n",
		      (long long)(now > st->started ? now - st->started : 0));
	dest = orch_dest_describe(cfg);
	cm_buf_printf(&b, "destination: %s\n", dest);
	free(dest);
	cm_buf_printf(&b, "vaults: %zu\n", cfg->nvaults);
	cm_buf_printf(&b, "auto start: %s\n", cfg->auto_start ? "yes" : "no");
	cm_buf_printf(&b, "jobs: %zu\n", snap->n + snap->indexed);
	for (int s = 0; s < ORCH_JOB_NSTATES; s++)
		cm_buf_printf(&b, "%s: %zu\n",
			      orch_job_state_name((enum orch_job_state)s),
			      snap->by_state[s]);
	cm_buf_printf(&b, "running: %zu\n", snap->running);
	orch_format_bytes(orch_snapshot_archived(snap), h, sizeof(h));
	cm_buf_printf(&b, "archived: %llu bytes (%s)\n",
		      (unsigned long long)orch_snapshot_archived(snap), h);
	orch_format_bytes(snap->bytes_read, h, sizeof(h));
	cm_buf_printf(&b, "reading: %llu bytes (%s)\n",
		      (unsigned long long)snap->bytes_read, h);
	orch_format_bytes((uint64_t)snap->rate, h, sizeof(h));
	cm_buf_printf(&b, "rate: %.0f bytes/s (%s/s)\n", snap->rate, h);
	orch_format_bytes(st->bytes_written, h, sizeof(h));
	cm_buf_printf(&b, "archive view written: %llu bytes (%s)\n",
		      (unsigned long long)st->bytes_written, h);
	orch_format_bytes(st->bytes_read, h, sizeof(h));
	cm_buf_printf(&b, "archive view read: %llu bytes (%s)\n",
		      (unsigned long long)st->bytes_read, h);
	cm_buf_printf(&b, "archive view uploads open: %llu\n",
		      (unsigned long long)st->uploads_open);
	cm_buf_printf(&b,
		      "archive view memory: %llu bytes (limit %llu, peak "
		      "%llu, waits %llu, waiting %llu)\n",
		      (unsigned long long)st->memory_used,
		      (unsigned long long)st->memory_limit,
		      (unsigned long long)st->memory_peak,
		      (unsigned long long)st->memory_waits,
		      (unsigned long long)st->memory_waiting);
	return cm_buf_detach(&b);
}

/* ---- metrics ----------------------------------------------------------- */

char *view_metrics_text(const struct orch_config *cfg,
			const struct orch_snapshot *snap,
			const struct view_stats *st, time_t now)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	orch_metrics_put(&b, cfg, snap, st->started, now);
	orch_metric_u64(&b, "vaultfs_view_written_bytes_total", "counter",
			"Bytes written into archive objects through the view.",
			st->bytes_written);
	orch_metric_u64(&b, "vaultfs_view_read_bytes_total", "counter",
			"Bytes read from archive objects through the view.",
			st->bytes_read);
	orch_metric_u64(&b, "vaultfs_view_objects_written_total", "counter",
			"Objects completed through the view.",
			st->objects_written);
	orch_metric_u64(&b, "vaultfs_view_write_errors_total", "counter",
			"Writes of archive objects that failed or were "
			"refused.", st->write_errors);
	orch_metric_u64(&b, "vaultfs_view_control_errors_total", "counter",
			"Writes to control files rejected with EINVAL.",
			st->control_errors);
	orch_metric_u64(&b, "vaultfs_view_uploads_open", "gauge",
			"Archive objects being written now.", st->uploads_open);
	orch_metric_u64(&b, "vaultfs_view_memory_bytes", "gauge",
			"Read-ahead and part buffers of the view now.",
			st->memory_used);
	orch_metric_u64(&b, "vaultfs_view_memory_peak_bytes", "gauge",
			"The most read-ahead and part buffers held at once.",
			st->memory_peak);
	orch_metric_u64(&b, "vaultfs_view_memory_limit_bytes", "gauge",
			"view.memoryLimit.", st->memory_limit);
	orch_metric_u64(&b, "vaultfs_view_memory_waits_total", "counter",
			"Buffers that waited for memory.", st->memory_waits);
	orch_metric_u64(&b, "vaultfs_view_memory_waiting", "gauge",
			"Requests waiting for memory now.", st->memory_waiting);
	return cm_buf_detach(&b);
}

/* ---- README -------------------------------------------------------------- */

char *view_readme_text(void)
{
	return cm_xstrdup(
	    "This is a vaultfs mount (docs/view.md has the details).\n"
	    "status            the daemon: jobs by state, bytes archived, "
	    "rates\n"
	    "metrics           the same for Prometheus (text format 0.0.4)\n"
	    "vaults/VAULT/RP/  one recovery point of a configured vault:\n"
	    "  info.json       what it is: type, resource, size, tags, its "
	    "job\n"
	    "  status          its job: state, progress, result or error\n"
	    "  log             its job's log (and rejected control writes)\n"
	    "  export, cancel  touch one to archive it now, or to stop its "
	    "job\n"
	    "  files/          the archived tree, read-only\n"
	    "archive/STORE/    the destination: read archives (KEY.d/: the "
	    "tree of KEY), write new ones\n");
}

/* ---- a recovery point -------------------------------------------------- */

char *view_rp_status_text(const char *vault, const char *name,
			  const struct orch_job_info *ji, bool auto_start)
{
	if (ji)
		return orch_job_info_text(ji);
	return cm_xasprintf("recovery point: %s/%s\n"
			    "state: new\n"
			    "hint: %s\n",
			    vault, name,
			    auto_start ? "queued once complete (autoStart), "
					 "or now with `touch export`"
				       : "touch export to queue it "
					 "(autoStart is false)");
}

char *view_rp_info_json(const char *vault, const char *name,
			const struct cm_json *described,
			const struct orch_job_info *ji)
{
	struct cm_json *o, *job;
	char *text;

	if (described) {
		/* the provider's words (describe), vault and name first */
		o = cm_json_new_object();
		cm_json_add_str(o, "vault", vault);
		cm_json_add_str(o, "name", name);
		for (struct cm_json *m = cm_json_first(described); m;
		     m = cm_json_next(m))
			if (strcmp(cm_json_key(m), "vault") != 0 &&
			    strcmp(cm_json_key(m), "name") != 0)
				cm_json_add(o, cm_json_key(m),
					    cm_json_copy(m));
	} else {
		/* gone from the vault (deleted after archiving): what the
		 * job remembers */
		o = cm_json_new_object();
		cm_json_add_str(o, "vault", vault);
		cm_json_add_str(o, "name", name);
		cm_json_add_str(o, "resourceId", ji->resource_id);
		cm_json_add_u64(o, "size", ji->rp_size);
		cm_json_add_str(o, "path", ji->rp_path);
		cm_json_add_bool(o, "present", false);
	}
	if (ji) {
		job = cm_json_add_object(o, "job");
		cm_json_add_str(job, "id", ji->id);
		cm_json_add_str(job, "state", orch_job_state_name(ji->state));
		if (ji->result_url)
			cm_json_add_str(job, "archive", ji->result_url);
		if (ji->result_sha256)
			cm_json_add_str(job, "sha256", ji->result_sha256);
		if (ji->error)
			cm_json_add_str(job, "error", ji->error);
	}
	text = cm_json_print(o);
	cm_json_free(o);
	return text;
}
