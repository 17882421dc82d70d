/*
 * main.c - `vaultfs`, one executable with subcommands.
 *
 * Dispatches on the first argument to the table in this file; each
 * subcommand lives in its own cli/cmd_*.c and parses its own options.
 */
#include "commands.h"
#include "usage.h"
#include "version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct vf_command vf_commands[] = {
	{ "archive", "archive a directory, device or disk image now",
	  cmd_archive },
	{ "s3", "S3 object commands: cp, ls, rm, mb", cmd_s3 },
	{ "run", "the orchestrator: archive every recovery point (--once)",
	  cmd_run },
	{ "status", "the jobs of the journal: state, progress, result",
	  cmd_status },
	{ "bucket", "bucket setup: check the bucket, apply lifecycleRules",
	  cmd_bucket },
	{ "mount", "the orchestrator plus its FUSE view (vaults, archive)",
	  cmd_mount },
	{ "verify", "read an archive back, decode it, match its manifest",
	  cmd_verify },
	{ "restore", "restore an archive into a directory, file or device",
	  cmd_restore },
	{ "aws", "whoami: the AWS identity, region and endpoints in use",
	  cmd_aws },
	{ NULL, NULL, NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vaultfs COMMAND [ARGS...]\n"
		   "       vaultfs --help | --version\n\n"
		   "vaultfs turns backups into long-term archives in S3.\n\n"
		   "commands:\n");
	for (const struct vf_command *c = vf_commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'vaultfs help COMMAND' (or 'vaultfs COMMAND --help') "
		   "for a command's\noptions, examples and exit statuses; "
		   "'man vaultfs' for all of them.\n");
}

static const struct vf_command *find(const char *name)
{
	for (const struct vf_command *c = vf_commands; c->name; c++)
		if (!strcmp(name, c->name))
			return c;
	return NULL;
}

/* `vaultfs help [COMMAND [SUBCOMMAND]]`: the command's own --help, so
 * that there is one help text per command. */
static int help(int argc, char **argv)
{
	const struct vf_command *c;
	char **args;
	int rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	c = find(argv[1]);
	if (!c)
		return vf_usage_error("help", "unknown command '%s'", argv[1]);
	if (argc > 3)
		return vf_usage_error("help", "unexpected argument '%s'",
				      argv[3]);
	/* COMMAND [SUBCOMMAND] --help */
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (!args)
		return 1;
	for (int i = 1; i < argc; i++)
		args[i - 1] = argv[i];
	args[argc - 1] = (char *)"--help";
	rc = c->run(argc, args);
	free(args);
	return rc;
}

int main(int argc, char **argv)
{
	const struct vf_command *c;

	if (argc < 2) {
		fprintf(stderr, "vaultfs: missing the command\n"
				"Try 'vaultfs --help' for more information.\n");
		return VF_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "help"))
		return help(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("vaultfs %s\n", VAULTFS_VERSION);
		return 0;
	}
	c = find(argv[1]);
	if (c)
		return c->run(argc - 1, argv + 1);
	fprintf(stderr, "vaultfs: unknown %s '%s'\n"
			"Try 'vaultfs --help' for more information.\n",
		argv[1][0] == '-' ? "option" : "command", argv[1]);
	return VF_EXIT_USAGE;
}
