/*
 * fault.h - fault injection for tests (curl's torture mode, in small).
 *
 * Code that performs an I/O or HTTP call asks cm_fault("site") first; when
 * the switch says so, it fails that call as if the outside world had. The
 * switch is the environment variable VAULTFS_FAULT, a comma-separated list:
 *
 *   site@N     the N-th call at `site` fails (1-based)
 *   site@N+    the N-th call and every later one fail
 *
 * e.g. VAULTFS_FAULT="s3.upload_part@3+" fails every part from the third on.
 * Sites in use are listed in docs/design.md. Without the variable the check
 * is one relaxed atomic load.
 */
#ifndef VAULTFS_FAULT_H
#define VAULTFS_FAULT_H

#include <stdbool.h>

bool cm_fault(const char *site);

#endif
