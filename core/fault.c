/*
 * fault.c - see fault.h. The rules are parsed once; each rule keeps its own
 * atomic call counter.
 */
#include "fault.h"
#include "log.h"
#include "mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 16

struct rule {
	char site[64];
	unsigned long nth;
	bool and_after;
	unsigned long calls; /* atomic */
};

static struct rule rules[MAX_RULES];
static int nrules;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void parse(void)
{
	const char *env = getenv("VAULTFS_FAULT");
	char *copy, *save = NULL, *tok;

	if (!env || !*env)
		return;
	copy = cm_xstrdup(env);
	for (tok = strtok_r(copy, ",", &save); tok && nrules < MAX_RULES;
	     tok = strtok_r(NULL, ",", &save)) {
		char *at = strchr(tok, '@');
		struct rule *r = &rules[nrules];
		char *end;

		if (!at || (size_t)(at - tok) >= sizeof(r->site)) {
			cm_warn("VAULTFS_FAULT: ignoring malformed rule '%s'",
				tok);
			continue;
		}
		memcpy(r->site, tok, (size_t)(at - tok));
		r->site[at - tok] = '\0';
		r->nth = strtoul(at + 1, &end, 10);
		r->and_after = *end == '+';
		nrules++;
	}
	free(copy);
}

bool cm_fault(const char *site)
{
	pthread_once(&once, parse);
	for (int i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		unsigned long n;

		if (strcmp(r->site, site) != 0)
			continue;
		n = __atomic_add_fetch(&r->calls, 1, __ATOMIC_RELAXED);
		if (n == r->nth || (r->and_after && n > r->nth)) {
			cm_debug("fault injected at %s (call %lu)", site, n);
			return true;
		}
	}
	return false;
}
