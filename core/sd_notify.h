/*
 * sd_notify.h - telling systemd how a Type=notify service is doing.
 *
 * The protocol (sd_notify(3)): one datagram of "KEY=VALUE\n" lines sent to
 * the AF_UNIX datagram socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name when it starts with '@'). READY=1 once the service does
 * its work, STATUS=free text for `systemctl status`, WATCHDOG=1 at least
 * every $WATCHDOG_USEC microseconds when the unit sets WatchdogSec=,
 * RELOADING=1 and STOPPING=1 around a reload and a stop.
 *
 * Written here rather than linked from libsystemd: the protocol is one
 * sendto(2), and a dependency on libsystemd would tie the binary to
 * systemd's library on machines that run vaultfs without systemd (where
 * $NOTIFY_SOCKET is unset and these calls do nothing).
 */
#ifndef VAULTFS_SD_NOTIFY_H
#define VAULTFS_SD_NOTIFY_H

#include <stdint.h>

/*
 * Send `state` ("READY=1", "STATUS=...\nWATCHDOG=1"...) to $NOTIFY_SOCKET.
 * 0 when sent or when there is no socket to send to; -errno when the
 * socket is named but cannot be reached (the caller logs it: the service
 * still works, systemd just does not hear of it).
 */
int cm_sd_notify(const char *state);

/* The watchdog interval systemd asks for ($WATCHDOG_USEC, for this process
 * when $WATCHDOG_PID names one), in microseconds; 0: none. */
uint64_t cm_sd_watchdog_usec(void);

#endif
