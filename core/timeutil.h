/*
 * timeutil.h - clocks and time formatting.
 */
#ifndef VAULTFS_TIMEUTIL_H
#define VAULTFS_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Monotonic clock in nanoseconds / seconds (for rates and timeouts). */
uint64_t cm_now_ns(void);
double cm_now_s(void);
/* Sleep, resuming after signals, for `ms` milliseconds. */
void cm_sleep_ms(unsigned ms);
/* "2026-11-26T20:45:16Z" into out (at least 21 bytes). */
void cm_time_iso8601(time_t t, char *out, size_t n);
/* Parse "YYYY-MM-DDTHH:MM:SS[.fff]Z" (UTC); 0 or -EINVAL. */
int cm_time_parse_iso8601(const char *s, time_t *out);
/* Uniform random in [0, n): thread-safe, seeded from the kernel. */
uint64_t cm_random(uint64_t n);

#endif
