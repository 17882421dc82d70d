/*
 * aws_events.c - AWS Backup events read from SQS messages (see
 * aws_events.h).
 *
 * The checks run from the outside in, and the first one that decides
 * wins: a body that is not an EventBridge event of AWS Backup is malformed
 * or foreign before its detail is looked at, so that the reason logged is
 * the first thing wrong with it.
 */
#include "aws_events.h"
#include "json.h"
#include "mem.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_COMPLETED "COMPLETED"

static enum orch_aws_verdict verdict(struct orch_aws_event *ev,
				     enum orch_aws_verdict v,
				     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum orch_aws_verdict verdict(struct orch_aws_event *ev,
				     enum orch_aws_verdict v,
				     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ev->why, sizeof(ev->why), fmt, ap);
	va_end(ap);
	return v;
}

static char *dup_str(const struct cm_json *obj, const char *key)
{
	const char *s = cm_json_get_str(obj, key);

	return s ? cm_xstrdup(s) : NULL;
}

const char *orch_aws_vault_of_arn(const char *s)
{
	static const char mark[] = ":backup-vault:";
	const char *p;

	if (!s || strncmp(s, "arn:", 4) != 0)
		return NULL;
	p = strstr(s, mark);
	if (!p || !p[sizeof(mark) - 1])
		return NULL;
	return p + sizeof(mark) - 1;
}

static bool wanted_type(const struct orch_aws_event_filter *f,
			const char *type)
{
	for (size_t i = 0; i < f->ntypes; i++)
		if (strcmp(f->resource_types[i], type) == 0)
			return true;
	return false;
}

/*
 * A string member of detail that must be there: NULL (and the verdict in
 * ev->why) when it is missing or not a string.
 */
static const char *need_str(const struct cm_json *detail, const char *key,
			    struct orch_aws_event *ev)
{
	const struct cm_json *j = cm_json_get(detail, key);

	if (!j) {
		verdict(ev, ORCH_AWS_EVENT_MALFORMED, "detail.%s is missing",
			key);
		return NULL;
	}
	if (cm_json_type(j) != CM_JSON_STRING) {
		verdict(ev, ORCH_AWS_EVENT_MALFORMED,
			"detail.%s is %s, not a string", key,
			cm_json_type_name(cm_json_type(j)));
		return NULL;
	}
	return cm_json_str(j);
}

/* The recovery point's ARN: detail.recoveryPointArn, or the event's one
 * resource for a Recovery Point State Change. */
static const char *rp_arn(const struct cm_json *ev_json,
			  const struct cm_json *detail, bool rp_event)
{
	const char *s = cm_json_get_str(detail, "recoveryPointArn");
	const struct cm_json *res;

	if (s || !rp_event)
		return s;
	res = cm_json_get(ev_json, "resources");
	if (cm_json_type(res) != CM_JSON_ARRAY || cm_json_size(res) != 1)
		return NULL;
	return cm_json_str(cm_json_first(res));
}

static enum orch_aws_verdict read_event(const struct cm_json *root,
					const struct orch_aws_event_filter *f,
					struct orch_aws_event *ev)
{
	const struct cm_json *detail;
	const char *source, *dtype, *state, *vault, *type, *arn;
	bool rp_event;

	if (cm_json_type(root) != CM_JSON_OBJECT)
		return verdict(ev, ORCH_AWS_EVENT_MALFORMED,
			       "the body is %s, not an event object",
			       cm_json_type_name(cm_json_type(root)));
	ev->id = dup_str(root, "id");
	source = cm_json_get_str(root, "source");
	dtype = cm_json_get_str(root, "detail-type");
	if (!source || !dtype)
		return verdict(ev, ORCH_AWS_EVENT_MALFORMED,
			       "no \"%s\" string: not an EventBridge event",
			       source ? "detail-type" : "source");
	ev->detail_type = cm_xstrdup(dtype);
	if (strcmp(source, ORCH_AWS_EVENT_SOURCE) != 0)
		return verdict(ev, ORCH_AWS_EVENT_IGNORE,
			       "an event of %.64s, not of %s", source,
			       ORCH_AWS_EVENT_SOURCE);
	rp_event = strcmp(dtype, ORCH_AWS_EVENT_RP) == 0;
	if (!rp_event && strcmp(dtype, ORCH_AWS_EVENT_JOB) != 0)
		return verdict(ev, ORCH_AWS_EVENT_IGNORE,
			       "a \"%.64s\" event", dtype);
	detail = cm_json_get(root, "detail");
	if (cm_json_type(detail) != CM_JSON_OBJECT)
		return verdict(ev, ORCH_AWS_EVENT_MALFORMED,
			       "detail is %s, not an object",
			       detail ? cm_json_type_name(cm_json_type(detail))
				      : "missing");

	/* a backup job says "state", a recovery point "status" */
	state = need_str(detail, rp_event ? "status" : "state", ev);
	if (!state)
		return ORCH_AWS_EVENT_MALFORMED;
	ev->state = cm_xstrdup(state);

	vault = cm_json_get_str(detail, "backupVaultName");
	if (!vault)
		vault = orch_aws_vault_of_arn(cm_json_get_str(detail,
							       "backupVaultArn"));
	if (!vault)
		return verdict(ev, ORCH_AWS_EVENT_MALFORMED,
			       "neither detail.backupVaultName nor a "
			       "detail.backupVaultArn names the vault");
	ev->vault = cm_xstrdup(vault);
	ev->resource_arn = dup_str(detail, "resourceArn");

	/* optional: without it, DescribeRecoveryPoint's type decides */
	type = cm_json_get_str(detail, "resourceType");
	ev->resource_type = type ? cm_xstrdup(type) : NULL;

	if (strcmp(vault, f->vault) != 0)
		return verdict(ev, ORCH_AWS_EVENT_IGNORE,
			       "for backup vault \"%.64s\", not \"%.64s\"",
			       vault, f->vault);
	if (strcmp(state, STATE_COMPLETED) != 0)
		return verdict(ev, ORCH_AWS_EVENT_IGNORE, "%s %.32s, not %s",
			       rp_event ? "status" : "state", state,
			       STATE_COMPLETED);
	if (type && !wanted_type(f, type))
		return verdict(ev, ORCH_AWS_EVENT_IGNORE,
			       "resource type \"%.32s\" is not archived from "
			       "this vault", type);

	/* only now: an event we would act on must say what to act on */
	arn = rp_arn(root, detail, rp_event);
	if (!arn || strncmp(arn, "arn:", 4) != 0)
		return verdict(ev, ORCH_AWS_EVENT_MALFORMED,
			       "no recovery point ARN (detail."
			       "recoveryPointArn%s)",
			       rp_event ? " or one entry in resources" : "");
	ev->recovery_point_arn = cm_xstrdup(arn);
	ev->why[0] = '\0';
	return ORCH_AWS_EVENT_ACCEPT;
}

enum orch_aws_verdict orch_aws_event_parse(const char *body, size_t len,
					   const struct orch_aws_event_filter *f,
					   struct orch_aws_event *ev)
{
	struct cm_json *root = NULL, *inner = NULL;
	const struct cm_json *event;
	enum orch_aws_verdict v;
	const char *type, *msg;
	struct cm_err e;

	memset(ev, 0, sizeof(*ev));
	cm_err_clear(&e);
	if (cm_json_parse(body, len, &root, &e))
		return verdict(ev, ORCH_AWS_EVENT_MALFORMED,
			       "the body is not JSON: %s", e.msg);
	event = root;
	/* a queue subscribed to an SNS topic gets the event as a string */
	type = cm_json_get_str(root, "Type");
	msg = cm_json_get_str(root, "Message");
	if (type && strcmp(type, "Notification") == 0 && msg &&
	    !cm_json_get(root, "source")) {
		if (cm_json_parse(msg, strlen(msg), &inner, &e)) {
			cm_json_free(root);
			return verdict(ev, ORCH_AWS_EVENT_MALFORMED,
				       "the SNS notification's Message is not "
				       "JSON: %s", e.msg);
		}
		event = inner;
	}
	v = read_event(event, f, ev);
	cm_json_free(inner);
	cm_json_free(root);
	return v;
}

void orch_aws_event_release(struct orch_aws_event *ev)
{
	free(ev->id);
	free(ev->detail_type);
	free(ev->vault);
	free(ev->state);
	free(ev->resource_type);
	free(ev->resource_arn);
	free(ev->recovery_point_arn);
	memset(ev, 0, sizeof(*ev));
}
