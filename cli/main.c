/*
 * main.c - `vaultfs`, one executable with subcommands.
 *
 * Dispatches on the first argument to the table in this file; each
 * subcommand lives in its own cli/cmd_*.c and parses its own options.
 */
#include "commands.h"
#include "version.h"

#include <stdio.h>
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
	fprintf(f, "\nRun 'vaultfs COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("vaultfs %s\n", VAULTFS_VERSION);
		return 0;
	}
	for (const struct vf_command *c = vf_commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "vaultfs: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
