/*
 * cmd_aws.c - `vaultfs aws whoami [--config F] [--profile P] [--json]`:
 * what vaultfs would use against AWS, resolved as every command resolves
 * it, and proved with one STS GetCallerIdentity: the account and ARN, where
 * the credentials came from, the region and where it came from, and the
 * endpoint of each service with its source (core/aws.h). For operators
 * checking a set-up before a run, and for tests.
 *
 * `vaultfs aws call SERVICE OPERATION [ARGS]` sends one request through
 * the same layer and prints the answer, so that an operator (or a test)
 * can see what vaultfs sees of a service:
 *   Query      ARGS are Name=Value parameters; the answer's elements are
 *              printed one a line as "Path.To.Element=text"
 *   JSON       ARGS is the body ('{"Limit": 5}'); the answer is printed
 *   REST-JSON  ARGS are METHOD PATH [BODY]; the answer is printed
 *
 * Exit status: 0, 1 when the identity cannot be had (the message names
 * why: "vaultfs: aws: sts: ExpiredToken: ..."), 2 for bad usage or config.
 */
#include "commands.h"
#include "usage.h"

#include "aws.h"
#include "buf.h"
#include "config.h"
#include "json.h"
#include "mem.h"
#include "xml.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "profile", required_argument, NULL, 'p' },
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs aws whoami [OPTIONS]\n"
		"       vaultfs aws call [OPTIONS] SERVICE OPERATION [ARGS]\n\n"
		"whoami: resolve credentials, region and endpoints as vaultfs "
		"does, then ask\nSTS GetCallerIdentity who they are.\n"
		"call: send one request and print the answer. ARGS: Name=Value "
		"parameters\n(Query: ec2, rds, sts), a JSON body (dynamodb, "
		"sqs, ssm), or METHOD PATH\n[BODY] (REST-JSON: backup, ebs).\n\n"
		"options:\n"
		"  -c, --config FILE  the configuration (region, endpoints; "
		"default: the\n                     embedded default)\n"
		"  -p, --profile NAME the AWS profile (default: AWS_PROFILE, "
		"else \"default\")\n"
		"  -j, --json         whoami: one JSON object instead of text\n"
		"  -h, --help         this help\n");
	vf_help_end(f, "aws");
}

/* One service's endpoint and its source, as a client would resolve it. */
static void endpoint_of(const char *name, const char *env, const char *host,
			const char *region, const struct orch_config *cfg,
			char **url, char *from, size_t fromlen)
{
	if (!strcmp(name, "s3") && cfg->endpoint) {
		*url = cm_xstrdup(cfg->endpoint);
		snprintf(from, fromlen, "config endpoint");
		return;
	}
	*url = aws_endpoint_resolve(name, env, host, region, cfg->endpoints,
				    cfg->nendpoints, from, fromlen);
}

static int whoami(const struct orch_config *cfg, const char *profile,
		  bool json)
{
	struct aws_client_opts o = {
	    .region = cfg->region,
	    .profile = profile,
	    .endpoints = cfg->endpoints,
	    .nendpoints = cfg->nendpoints,
	};
	struct aws_client *sts;
	struct aws_identity id = { 0 };
	struct aws_creds cr = { 0 };
	struct cm_json *root = NULL, *eps = NULL;
	struct cm_err err;
	char origin[96], creds[160];
	int rc;

	cm_err_clear(&err);
	sts = aws_client_new(&aws_sts, &o, &err);
	if (!sts) {
		fprintf(stderr, "vaultfs: aws: %s\n", err.msg);
		return 1;
	}
	rc = aws_caller_identity(sts, &id, &err);
	if (!rc)
		rc = aws_creds_get(aws_client_creds(sts), &cr, &err);
	if (rc) {
		fprintf(stderr, "vaultfs: aws: %s\n", err.msg);
		aws_identity_release(&id);
		aws_client_free(sts);
		return 1;
	}
	aws_creds_origin(aws_client_creds(sts), origin, sizeof(origin));
	/* "assume-role (profile prod)", "environment" */
	if (strcmp(origin, cr.source) != 0)
		snprintf(creds, sizeof(creds), "%s (%s)", cr.source, origin);
	else
		snprintf(creds, sizeof(creds), "%s", cr.source);
	if (json) {
		root = cm_json_new_object();
		cm_json_add_str(root, "account", id.account);
		cm_json_add_str(root, "arn", id.arn);
		cm_json_add_str(root, "userId", id.user_id);
		cm_json_add_str(root, "credentials", cr.source);
		cm_json_add_str(root, "credentialsFrom", origin);
		cm_json_add_str(root, "region", aws_client_region(sts));
		cm_json_add_str(root, "regionSource",
				aws_client_region_source(sts));
		eps = cm_json_add_object(root, "endpoints");
	} else {
		printf("account      %s\n", id.account);
		printf("arn          %s\n", id.arn);
		printf("user id      %s\n", id.user_id);
		printf("credentials  %s\n", creds);
		printf("region       %s (%s)\n", aws_client_region(sts),
		       aws_client_region_source(sts));
		printf("endpoints\n");
	}
	for (size_t i = 0;; i++) {
		const struct aws_service *s = aws_services[i];
		const char *name = s ? s->name : "s3";
		char from[64], *url;

		endpoint_of(name, s ? s->env : "S3", s ? s->host : "s3",
			    aws_client_region(sts), cfg, &url, from,
			    sizeof(from));
		if (json) {
			struct cm_json *e = cm_json_add_object(eps, name);

			cm_json_add_str(e, "url", url);
			cm_json_add_str(e, "source", from);
		} else {
			printf("  %-9s  %s (%s)\n", name, url, from);
		}
		free(url);
		if (!s)
			break;
	}
	if (json) {
		char *text = cm_json_print(root);

		fputs(text, stdout);
		free(text);
		cm_json_free(root);
	}
	aws_creds_release(&cr);
	aws_identity_release(&id);
	aws_client_free(sts);
	return 0;
}

/* Leaves as "A.B.C=text", in document order, without the root's name. */
static void print_xml(const struct cm_xml *n, struct cm_buf *path)
{
	size_t len = path->len;

	for (struct cm_xml *c = cm_xml_child(n, NULL); c;
	     c = cm_xml_next(c, NULL)) {
		cm_buf_printf(path, "%s%s", len ? "." : "", cm_xml_name(c));
		if (cm_xml_child(c, NULL))
			print_xml(c, path);
		else
			printf("%s=%s\n", cm_buf_str(path), cm_xml_text(c));
		path->len = len;
		if (path->data)
			path->data[len] = '\0';
	}
}

static int call(const struct orch_config *cfg, const char *profile, int argc,
		char **argv)
{
	struct aws_client_opts o = {
	    .region = cfg->region,
	    .profile = profile,
	    .endpoints = cfg->endpoints,
	    .nendpoints = cfg->nendpoints,
	};
	const struct aws_service *svc;
	struct aws_client *c = NULL;
	struct cm_json *in = NULL, *out = NULL;
	struct cm_xml *x = NULL;
	const char **params = NULL;
	struct cm_err err;
	int rc = 2;

	cm_err_clear(&err);
	rc = vf_operands("aws call", argc, argv, 0, "SERVICE OPERATION "
			 "[ARGS...]");
	if (rc)
		return rc;
	rc = 2;
	svc = aws_service_find(argv[0]);
	if (!svc)
		return vf_usage_error("aws call", "unknown service '%s'",
				      argv[0]);
	if (svc->proto == AWS_PROTO_REST_JSON && argc < 3)
		return vf_usage_error("aws call", "missing METHOD PATH [BODY] "
				      "(%s speaks REST-JSON)", svc->name);
	c = aws_client_new(svc, &o, &err);
	if (!c)
		goto fail;
	if (svc->proto == AWS_PROTO_QUERY) {
		size_t n = (size_t)argc - 2;

		params = cm_xcalloc(2 * n + 1, sizeof(*params));
		for (size_t i = 0; i < n; i++) {
			char *eq = strchr(argv[2 + i], '=');

			if (!eq) {
				fprintf(stderr, "vaultfs: aws: \"%s\": "
						"expected Name=Value\n",
					argv[2 + i]);
				goto out;
			}
			*eq = '\0';
			params[2 * i] = argv[2 + i];
			params[2 * i + 1] = eq + 1;
		}
		rc = aws_query(c, argv[1], params, n, &x, &err);
	} else {
		const char *body = svc->proto == AWS_PROTO_REST_JSON
				       ? (argc > 4 ? argv[4] : NULL)
				       : (argc > 2 ? argv[2] : NULL);

		if (body && cm_json_parse(body, strlen(body), &in, &err)) {
			fprintf(stderr, "vaultfs: aws: the body: %s\n",
				err.msg);
			rc = 2;
			goto out;
		}
		if (svc->proto == AWS_PROTO_REST_JSON) {
			struct aws_rest_request r = {
			    .op = argv[1],
			    .method = argv[2],
			    .path = argv[3],
			    .json = in,
			};

			rc = aws_rest(c, &r, &out, NULL, &err);
		} else {
			rc = aws_json(c, argv[1], in, &out, &err);
		}
	}
	if (rc)
		goto fail;
	if (x) {
		struct cm_buf path;

		cm_buf_init(&path, 0);
		print_xml(x, &path);
		cm_buf_release(&path);
	} else if (out) {
		char *text = cm_json_print(out);

		fputs(text, stdout);
		free(text);
	}
	goto out;
fail:
	fprintf(stderr, "vaultfs: aws: %s\n", err.msg);
	rc = 1;
out:
	free(params);
	cm_xml_free(x);
	cm_json_free(in);
	cm_json_free(out);
	aws_client_free(c);
	return rc;
}

int cmd_aws(int argc, char **argv)
{
	const char *config = NULL, *profile = NULL;
	struct orch_config cfg;
	bool json = false;
	int c, rc;

	char cmd[16];

	optind = 1;
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 2)
		return vf_usage_error("aws", "missing the command (whoami or "
				      "call)");
	if (strcmp(argv[1], "whoami") != 0 && strcmp(argv[1], "call") != 0)
		return vf_usage_error("aws", "unknown command '%s' (whoami or "
				      "call)", argv[1]);
	argc--;
	argv++;
	snprintf(cmd, sizeof(cmd), "aws %s", argv[0]);
	/* "+": stop at the first operand, so that "-1" in a body stays */
	while ((c = vf_getopt(cmd, argc, argv, "+c:p:jh", long_opts)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'p':
			profile = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return VF_EXIT_USAGE;
		}
	}
	if (!strcmp(argv[0], "whoami") &&
	    (rc = vf_operands(cmd, argc, argv, optind, "")))
		return rc;
	rc = vf_load_config("aws", config, &cfg);
	if (rc)
		return rc;
	if (!strcmp(argv[0], "whoami"))
		rc = whoami(&cfg, profile, json);
	else
		rc = call(&cfg, profile, argc - optind, argv + optind);
	orch_config_release(&cfg);
	return rc;
}
