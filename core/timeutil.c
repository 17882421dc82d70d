/*
 * timeutil.c - see timeutil.h.
 */
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

uint64_t cm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double cm_now_s(void)
{
	return (double)cm_now_ns() / 1e9;
}

void cm_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void cm_time_iso8601(time_t t, char *out, size_t n)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Digits s[0..n) as a number, or -1. */
static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (the
 * era arithmetic: 400-year cycles of 146097 days, years from March). */
static long days_from_civil(long y, int m, int d)
{
	long era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* "YYYY-MM-DDTHH:MM:SS" exactly, the journal's own form: without
 * strptime and timegm, which cost microseconds each (the index of finished
 * jobs holds several per job). NULL: not this form. */
static const char *parse_fixed(const char *s, time_t *t)
{
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	int h = digits(s + 11, 2), mi = digits(s + 14, 2);
	int sec = digits(s + 17, 2);

	if (y < 0 || s[4] != '-' || mo < 1 || mo > 12 || s[7] != '-' ||
	    d < 1 || d > 31 || s[10] != 'T' || h < 0 || h > 23 ||
	    s[13] != ':' || mi < 0 || mi > 59 || s[16] != ':' || sec < 0 ||
	    sec > 60)
		return NULL;
	*t = (time_t)days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
	     sec;
	return s + 19;
}

int cm_time_parse_iso8601(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;
	time_t fast;

	memset(&tm, 0, sizeof(tm));
	if (strnlen(s, 19) == 19 && (end = parse_fixed(s, &fast)) &&
	    (*end == 'Z' || *end == '\0' || *end == '.' || *end == '+')) {
		if (*end == '.') {
			end++;
			while (*end >= '0' && *end <= '9')
				end++;
		}
		if (*end != 'Z' && *end != '\0' &&
		    strcmp(end, "+00:00") != 0)
			return -EINVAL;
		*out = fast;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -EINVAL;
	if (*end == '.') {
		end++;
		while (*end >= '0' && *end <= '9')
			end++;
	}
	if (*end != 'Z' && *end != '\0' && strcmp(end, "+00:00") != 0)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

uint64_t cm_random(uint64_t n)
{
	uint64_t v = 0;

	if (n == 0)
		return 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = cm_now_ns() * 6364136223846793005ull;
	return v % n;
}
