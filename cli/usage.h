/*
 * usage.h - usage errors and option parsing, the same for every command.
 *
 * A usage error is two lines on stderr and exit status 2:
 *
 *   vaultfs: archive: missing DEST
 *   Try 'vaultfs archive --help' for more information.
 *
 * never the whole help (which buries the reason) and never getopt's own
 * message (which names neither vaultfs nor the command). Every command
 * parses with vf_getopt() and reports with vf_usage_error(), so the shape
 * is decided here once.
 */
#ifndef VAULTFS_USAGE_H
#define VAULTFS_USAGE_H

#include <getopt.h>
#include <stdio.h>

/* The exit status of a usage error. */
#define VF_EXIT_USAGE 2

/*
 * What vf_getopt() returns for an unknown option, a missing or unexpected
 * argument, after printing the error: the caller returns VF_EXIT_USAGE.
 */
#define VF_OPT_BAD '?'

/*
 * getopt_long() with this project's messages: `cmd` names the command in
 * them ("archive", "s3 cp"). shortopts as getopt_long's (a leading '+'
 * stops at the first operand). Returns as getopt_long does, except that
 * every error is printed here and returned as VF_OPT_BAD.
 */
int vf_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	      const struct option *longopts);

/* Print "vaultfs: CMD: MESSAGE" and the line pointing at --help; returns
 * VF_EXIT_USAGE. */
int vf_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Check the operands left after the options, argv[first..argc), against
 * `names`, a space-separated list of what the command takes ("SRC DEST");
 * a name in brackets is optional ("[URL]"), and one ending in "..." takes
 * any number more. Returns 0, or VF_EXIT_USAGE after naming the first
 * missing operand or the first unexpected one.
 */
int vf_operands(const char *cmd, int argc, char **argv, int first,
		const char *names);

/*
 * A place operand (DEST, a URL, --manifest): a mistyped S3 URL such as
 * "s3:/bucket/key" is a usage error naming it (url.h), not a directory
 * named "s3:". NULL is fine. 0 or VF_EXIT_USAGE.
 */
int vf_check_place(const char *cmd, const char *s);

/* --threads N of the commands that read archives (restore, verify): N
 * from 1 to 256 into *out, or VF_EXIT_USAGE after saying so. */
int vf_parse_threads(const char *cmd, const char *arg, unsigned *out);

/* The end of every --help: two or three examples and the exit statuses
 * of `cmd` ("archive"; "s3 cp" ends as "s3" does). */
void vf_help_end(FILE *f, const char *cmd);

#endif
