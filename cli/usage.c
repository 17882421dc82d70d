/*
 * usage.c - see usage.h.
 */
#include "usage.h"
#include "url.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vusage(const char *cmd, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void vusage(const char *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "vaultfs: %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'vaultfs %s --help' for more information.\n",
		cmd);
}

int vf_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vusage(cmd, fmt, ap);
	va_end(ap);
	return VF_EXIT_USAGE;
}

/* The name of the long option whose val is `val`, else NULL. */
static const char *long_name(const struct option *longopts, int val)
{
	for (const struct option *o = longopts; o && o->name; o++)
		if (!o->flag && o->val == val)
			return o->name;
	return NULL;
}

int vf_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	      const struct option *longopts)
{
	/* ':' after the ordering flag: getopt tells a missing argument
	 * (':') from an unknown option ('?'), and says nothing itself */
	char spec[64];
	const char *word;
	size_t flag = (*shortopts == '+' || *shortopts == '-') ? 1 : 0;
	int c, before = optind;

	snprintf(spec, sizeof(spec), "%.*s:%s", (int)flag, shortopts,
		 shortopts + flag);
	opterr = 0;
	c = getopt_long(argc, argv, spec, longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	/* the word getopt stopped at: the one before optind, unless a
	 * short option cluster ("-qx") is still being read */
	word = optind > before && optind <= argc ? argv[optind - 1] : NULL;
	if (c == ':') {
		const char *name = long_name(longopts, optopt);

		if (word && !strncmp(word, "--", 2))
			vf_usage_error(cmd, "option '%s' needs an argument",
				       word);
		else if (optopt > 0 && optopt < 256)
			vf_usage_error(cmd, "option '-%c' needs an argument",
				       optopt);
		else
			vf_usage_error(cmd, "option '--%s' needs an argument",
				       name ? name : "?");
		return VF_OPT_BAD;
	}
	if (word && !strncmp(word, "--", 2)) {
		size_t len = strcspn(word, "=");
		const char *name = long_name(longopts, optopt);

		/* "--help=x": a known option given an argument it does
		 * not take; otherwise unknown (or an ambiguous prefix) */
		if (optopt && name && word[len] == '=')
			vf_usage_error(cmd, "option '--%s' takes no argument",
				       name);
		else
			vf_usage_error(cmd, "unknown option '%.*s'", (int)len,
				       word);
	} else if (optopt > 0 && optopt < 256) {
		vf_usage_error(cmd, "unknown option '-%c'", optopt);
	} else {
		vf_usage_error(cmd, "unknown option '%s'", word ? word : "?");
	}
	return VF_OPT_BAD;
}

int vf_operands(const char *cmd, int argc, char **argv, int first,
		const char *names)
{
	const char *p = names;
	int i = first;

	while (*p) {
		size_t len = strcspn(p, " ");
		bool optional = *p == '[';
		/* "ARGS..." or "[ARGS...]" */
		size_t end = optional && p[len - 1] == ']' ? len - 1 : len;
		bool more = end >= 3 && !strncmp(p + end - 3, "...", 3);

		if (i >= argc) {
			if (optional)
				return 0;
			return vf_usage_error(cmd, "missing %.*s", (int)len,
					      p);
		}
		if (more)
			return 0; /* any number more: nothing unexpected */
		i++;
		p += len;
		p += strspn(p, " ");
	}
	if (i < argc)
		return vf_usage_error(cmd, "unexpected argument '%s'",
				      argv[i]);
	return 0;
}

int vf_check_place(const char *cmd, const char *s)
{
	if (!cm_url_is_typo(s))
		return 0;
	return vf_usage_error(cmd, "'%s' is not an S3 URL (s3://BUCKET/KEY); "
			      "write './%s' for a local path", s, s);
}

int vf_parse_threads(const char *cmd, const char *arg, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || v == 0 || v > 256)
		return vf_usage_error(cmd, "--threads %s: a number from 1 to "
				      "256", arg);
	*out = (unsigned)v;
	return 0;
}

/*
 * How every --help ends: examples, then the exit statuses. One table, so
 * that the commands say the same things the same way (and the man page,
 * docs/man/, says them too).
 */
static const struct {
	const char *cmd;
	const char *examples;
	const char *status;
} help_ends[] = {
	{ "archive",
	  "  vaultfs archive /srv/data s3://backups/srv/2024-05-01/\n"
	  "  vaultfs archive --codec zstd disk.img disk.tar.zst\n"
	  "  vaultfs archive -q /etc - | tar -tzf -\n",
	  "0 archived whole; 1 failed; 2 usage error; 3 archived, "
	  "but\nsome items were left out or changed while read (the "
	  "manifest's \"skipped\",\n\"complete\": false); 130 "
	  "interrupted (SIGINT; 143 SIGTERM): nothing is left\nbehind.\n" },
	{ "verify",
	  "  vaultfs verify s3://backups/srv/2024-05-01/\n"
	  "  vaultfs verify --manifest m.json disk.tar.zst\n",
	  "0 whole and matching its manifest; 1 not (or it could not be "
	  "read);\n2 usage error; 130 interrupted.\n" },
	{ "restore",
	  "  vaultfs restore s3://backups/srv/.../backup.tar.gz /srv/restored\n"
	  "  vaultfs restore s3://backups/srv/.../ /tmp/r --path etc/fstab\n"
	  "  vaultfs restore --config /etc/vaultfs/config.json snap-0abc /tmp/r\n",
	  "0 everything restored exactly; 1 something was not (each named), "
	  "or the\narchive could not be read; 2 usage error; 130 "
	  "interrupted.\n" },
	{ "run",
	  "  vaultfs run --config /etc/vaultfs/config.json\n"
	  "  vaultfs run --config /etc/vaultfs/config.json --once\n",
	  "0 stopped by SIGTERM or SIGINT, or (--once) every job archived; "
	  "1 a job\nfailed or ended incomplete (--once), or the daemon "
	  "failed; 2 usage or\nconfiguration error.\n" },
	{ "status",
	  "  vaultfs status --config /etc/vaultfs/config.json\n"
	  "  vaultfs status --json | jq '.[] | select(.state == "
	  "\"failed\")'\n"
	  "  vaultfs status --check --since 24h || echo 'a job failed'\n",
	  "0 listed (--check: no job failed or ended incomplete within "
	  "--since);\n1 the journal could not be read (--check: one did); 2 "
	  "usage or\nconfiguration error.\n" },
	{ "s3",
	  "  vaultfs s3 cp disk.img s3://backups/images/disk.img\n"
	  "  vaultfs s3 ls s3://backups/srv/\n"
	  "  vaultfs s3 cp s3://backups/srv/backup.tar.gz - | tar -tzf -\n",
	  "0 done; 1 failed; 2 usage error; 130 interrupted (SIGINT;\n143 "
	  "SIGTERM): no upload left open, no partial file left.\n" },
	{ "bucket",
	  "  vaultfs bucket setup --config /etc/vaultfs/config.json "
	  "--dry-run\n"
	  "  vaultfs bucket setup --config /etc/vaultfs/config.json\n",
	  "0 the rule is in place (or printed); 1 failed; 2 usage error.\n" },
	{ "mount",
	  "  vaultfs mount /mnt/vaultfs --config /etc/vaultfs/config.json\n"
	  "  cat /mnt/vaultfs/status\n"
	  "  fusermount3 -u /mnt/vaultfs\n",
	  "0 mounted (in the background), or unmounted cleanly "
	  "(--foreground);\n1 failed; 2 usage or configuration error.\n" },
	{ "aws",
	  "  vaultfs aws whoami --profile backup\n"
	  "  vaultfs aws call sts GetCallerIdentity\n"
	  "  vaultfs aws call backup ListBackupVaults GET /backup-vaults/\n",
	  "0 answered; 1 failed (credentials, network, an AWS error); 2 "
	  "usage error.\n" },
};

void vf_help_end(FILE *f, const char *cmd)
{
	size_t len = strcspn(cmd, " "); /* "s3 cp": the s3 group's */

	for (size_t i = 0; i < sizeof(help_ends) / sizeof(help_ends[0]); i++) {
		if (strlen(help_ends[i].cmd) != len ||
		    strncmp(help_ends[i].cmd, cmd, len))
			continue;
		fprintf(f, "\nexamples:\n%s\nexit status: %s",
			help_ends[i].examples, help_ends[i].status);
		return;
	}
}
