/*
 * restore_ebs_volume.c - the EBS restorer of aws-backup vaults, `volume`
 * method (ebs.method "volume", docs/aws.md "EBS"): the seed's way. The
 * snapshot is restored to a new volume in this instance's Availability
 * Zone, attached to this instance, and its block device handed to the
 * archiver as an image (probe, loop device, mounts, tar). The volume is a
 * disposable copy; release detaches and deletes it.
 *
 *   1. this instance's id and zone from IMDSv2 (aws_imds_get)
 *   2. the journal entry, kind "ebs-volume", ids {"snapshot", "token",
 *      "instance", "zone"}: BEFORE CreateVolume, so a volume that exists
 *      was journaled first
 *   3. CreateVolume (ebs.volumeType, ebs.iops, ebs.throughput, the config's
 *      tags, the security tag, and "vaultfs:token" = the token), the
 *      ClientToken = the token; the volume id is recorded at once
 *   4. DescribeVolumes until `available`; AttachVolume at a device name no
 *      block device mapping of the instance uses; DescribeVolumes until the
 *      attachment is `attached`
 *   5. the block device, matched to the volume id, never guessed: on Nitro
 *      the NVMe serial ("vol0abc...", the id without its dash), as udev's
 *      DEVROOT/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc... or
 *      /sys/block/nvme* /device/serial; on Xen (/sys/hypervisor/type) the
 *      device name given to AttachVolume, as /dev/xvdX or /dev/sdX, only
 *      if it appeared after the attach. DEVROOT is ebs.deviceRoot ("/dev";
 *      another root only for tests, where a helper plays the hypervisor).
 *      Nothing within ebs.deviceTimeoutSeconds: the restore fails and the
 *      volume goes.
 *
 * The token is the job id and a random suffix: a create retried by the AWS
 * layer (a lost answer) makes no second volume, while the next attempt of
 * the same job, after the previous volume was deleted, gets a new one
 * (EC2 keeps answering a used token with what it made, even once
 * deleted). The volume is also tagged with the token, so that a crash
 * between CreateVolume and recording its id still finds it
 * (DescribeVolumes by tag).
 *
 * Release (and release_stale after a crash): DetachVolume, DescribeVolumes
 * until `available` (DetachVolume Force=true once DETACH_TIMEOUT_S have
 * gone by), DeleteVolume (VolumeInUse retried with backoff). A volume gone
 * already counts as released.
 *
 * Test hook: VAULTFS_TEST_EBS_PAUSE_AT=STEP:SECONDS stops at STEP
 * ("journaled", "created", "attached") and says so on stderr, for the
 * kill -9 tests (docs/orchestrator.md).
 *
 * Threads: restores run at once in several jobs; the choice of a device
 * name and AttachVolume are serialised by one lock, so that two jobs do
 * not pick the same name.
 */
#include "aws_backup_int.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"
#include "xml.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define KIND "ebs-volume"
#define TOKEN_TAG "vaultfs:token"
#define AVAILABLE_TIMEOUT_S 600 /* a large volume from a snapshot */
#define ATTACH_TIMEOUT_S 300
#define DETACH_TIMEOUT_S 120    /* then DetachVolume Force=true */
#define DELETE_TIMEOUT_S 120    /* VolumeInUse retried this long */
#define POLL_MAX_MS 5000

static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;

struct vol_restored {
	struct aws_client *ec2;
	char *volume;
	char *instance;
	size_t idx; /* the journal entry */
};

/* ---- test hook --------------------------------------------------------- */

static void test_pause(const char *step)
{
	const char *env = getenv("VAULTFS_TEST_EBS_PAUSE_AT");
	size_t n = strlen(step);
	double secs;

	if (!env || strncmp(env, step, n) != 0 || env[n] != ':')
		return;
	secs = strtod(env + n + 1, NULL);
	if (secs <= 0)
		return;
	cm_warn("test: ebs volume paused at %s for %.1f s", step, secs);
	cm_sleep_ms((unsigned)(secs * 1000));
}

/* ---- EC2 calls --------------------------------------------------------- */

static bool code_is(const struct cm_err *e, const char *code)
{
	char pat[96];

	snprintf(pat, sizeof(pat), "ec2: %s:", code);
	return strstr(e->msg, pat) != NULL;
}

/* A call whose answer says nothing more than success. */
static int ec2_do(struct aws_client *ec2, const char *action,
		  const char *const *params, size_t n, struct cm_err *err)
{
	struct cm_xml *ans = NULL;
	int rc = aws_query(ec2, action, params, n, &ans, err);

	cm_xml_free(ans);
	return rc;
}

/* Sleep for the next poll: 250 ms doubling to POLL_MAX_MS. */
static void poll_sleep(unsigned *ms)
{
	cm_sleep_ms(*ms);
	*ms = *ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : *ms * 2;
}

struct vol_state {
	char status[32];  /* creating, available, in-use, deleting, error */
	char attach[32];  /* attaching, attached, detaching, "" (none) */
	char instance[32];
	char device[32];
	bool gone;
};

static void copy_text(char *out, size_t n, const struct cm_xml *x,
		      const char *name)
{
	const char *t = cm_xml_child_text(x, name);

	snprintf(out, n, "%s", t ? t : "");
}

static void vol_state_of(const struct cm_xml *item, struct vol_state *st)
{
	const struct cm_xml *a;

	memset(st, 0, sizeof(*st));
	copy_text(st->status, sizeof(st->status), item, "status");
	a = cm_xml_child(cm_xml_child(item, "attachmentSet"), "item");
	if (a) {
		copy_text(st->attach, sizeof(st->attach), a, "status");
		copy_text(st->instance, sizeof(st->instance), a, "instanceId");
		copy_text(st->device, sizeof(st->device), a, "device");
	}
}

/* DescribeVolumes of one volume; st->gone when it no longer exists. */
static int describe(struct aws_client *ec2, const char *vol,
		    struct vol_state *st, struct cm_err *err)
{
	const char *params[] = { "VolumeId.1", vol };
	struct cm_xml *ans = NULL, *item;
	struct cm_err e;
	int rc;

	cm_err_clear(&e);
	rc = aws_query(ec2, "DescribeVolumes", params, 1, &ans, &e);
	if (rc == -ENOENT || (rc && code_is(&e, "InvalidVolume.NotFound"))) {
		memset(st, 0, sizeof(*st));
		st->gone = true;
		return 0;
	}
	if (rc) {
		*err = e;
		return rc;
	}
	item = cm_xml_child(cm_xml_child(ans, "volumeSet"), "item");
	if (!item) {
		memset(st, 0, sizeof(*st));
		st->gone = true;
	} else {
		vol_state_of(item, st);
		if (!strcmp(st->status, "deleting") ||
		    !strcmp(st->status, "deleted"))
			st->gone = true;
	}
	cm_xml_free(ans);
	return 0;
}

/* Poll until done(st) or the deadline; -ETIMEDOUT names `what`. */
static int wait_for(struct aws_client *ec2, const char *vol,
		    bool (*done)(const struct vol_state *), const char *what,
		    unsigned timeout_s, struct vol_state *st,
		    struct cm_err *err)
{
	double end = cm_now_s() + timeout_s;
	unsigned ms = 250;
	int rc;

	for (;;) {
		rc = describe(ec2, vol, st, err);
		if (rc)
			return rc;
		if (done(st))
			return 0;
		if (st->status[0] && !strcmp(st->status, "error"))
			return cm_err_set(err, EIO, "volume %s is in state "
					  "error", vol);
		if (cm_now_s() >= end)
			return cm_err_set(err, ETIMEDOUT, "volume %s: not %s "
					  "after %u s (state %s%s%s)", vol,
					  what, timeout_s,
					  st->gone ? "gone" : st->status,
					  st->attach[0] ? ", attachment " : "",
					  st->attach);
		poll_sleep(&ms);
	}
}

static bool is_available(const struct vol_state *st)
{
	return st->gone || (!strcmp(st->status, "available") && !st->attach[0]);
}

static bool is_attached(const struct vol_state *st)
{
	return !strcmp(st->attach, "attached");
}

static bool is_ready(const struct vol_state *st)
{
	return !strcmp(st->status, "available") || st->gone;
}

/* The volumes tagged with `token` (a create whose id was never recorded),
 * NULL-ended, into *out. */
static int find_by_token(struct aws_client *ec2, const char *token,
			 char ***out, struct cm_err *err)
{
	const char *params[] = { "Filter.1.Name", "tag:" TOKEN_TAG,
				 "Filter.1.Value.1", token };
	struct cm_xml *ans = NULL;
	size_t n = 0;
	char **ids;
	int rc;

	*out = NULL;
	rc = aws_query(ec2, "DescribeVolumes", params, 2, &ans, err);
	if (rc)
		return rc;
	for (struct cm_xml *it = cm_xml_child(cm_xml_child(ans, "volumeSet"),
					      "item");
	     it; it = cm_xml_next(it, "item"))
		n++;
	ids = cm_xcalloc(n + 1, sizeof(*ids));
	n = 0;
	for (struct cm_xml *it = cm_xml_child(cm_xml_child(ans, "volumeSet"),
					      "item");
	     it; it = cm_xml_next(it, "item")) {
		const char *id = cm_xml_child_text(it, "volumeId");

		if (id && *id)
			ids[n++] = cm_xstrdup(id);
	}
	cm_xml_free(ans);
	*out = ids;
	return 0;
}

/* DetachVolume. InstanceId is optional for a volume attached once, but
 * the API wants it for Multi-Attach, and we know it. */
static int detach(struct aws_client *ec2, const char *vol,
		  const char *instance, bool force, struct cm_err *err)
{
	const char *params[6] = { "VolumeId", vol };
	size_t n = 1;

	if (instance[0]) {
		params[2 * n] = "InstanceId";
		params[2 * n + 1] = instance;
		n++;
	}
	if (force) {
		params[2 * n] = "Force";
		params[2 * n + 1] = "true";
		n++;
	}
	return ec2_do(ec2, "DetachVolume", params, n, err);
}

/*
 * Detach (forced once DETACH_TIMEOUT_S have passed), wait for available,
 * delete (VolumeInUse retried). 0 once the volume is gone.
 */
static int volume_drop(struct aws_client *ec2, const char *vol,
		       struct cm_err *err)
{
	const char *del[] = { "VolumeId", vol };
	struct vol_state st;
	struct cm_err e;
	unsigned ms = 250;
	char instance[sizeof(st.instance)];
	double end;
	int rc;

	rc = describe(ec2, vol, &st, err);
	if (rc || st.gone)
		return rc;
	snprintf(instance, sizeof(instance), "%s", st.instance);
	if (st.attach[0] && strcmp(st.attach, "detaching") != 0) {
		cm_err_clear(&e);
		rc = detach(ec2, vol, instance, false, &e);
		/* not attached (any more): IncorrectState */
		if (rc && !code_is(&e, "IncorrectState") &&
		    !code_is(&e, "InvalidAttachment.NotFound") &&
		    !code_is(&e, "InvalidVolume.NotFound")) {
			*err = e;
			return cm_err_prefix(err, "volume %s: detach", vol);
		}
		cm_info("ebs: volume %s: detaching from %s", vol, st.instance);
	}
	rc = wait_for(ec2, vol, is_available, "detached", DETACH_TIMEOUT_S,
		      &st, err);
	if (rc == -ETIMEDOUT) {
		/* the instance did not let go (a mount we cannot see) */
		cm_warn("%s; detaching it by force", err->msg);
		cm_err_clear(err);
		rc = detach(ec2, vol, instance, true, err);
		if (rc == 0)
			rc = wait_for(ec2, vol, is_available, "detached",
				      DETACH_TIMEOUT_S, &st, err);
	}
	if (rc)
		return rc;
	if (st.gone)
		return 0;
	end = cm_now_s() + DELETE_TIMEOUT_S;
	for (;;) {
		cm_err_clear(&e);
		rc = ec2_do(ec2, "DeleteVolume", del, 1, &e);
		if (rc == 0 || code_is(&e, "InvalidVolume.NotFound"))
			break;
		if (!code_is(&e, "VolumeInUse") || cm_now_s() >= end) {
			*err = e;
			return cm_err_prefix(err, "volume %s: delete", vol);
		}
		poll_sleep(&ms);
	}
	cm_info("ebs: volume %s deleted", vol);
	return 0;
}

/* ---- the device -------------------------------------------------------- */

/* The NVMe serial of a volume: its id without the dash. */
static void nvme_serial(const char *vol, char *out, size_t n)
{
	snprintf(out, n, "vol%s", vol + 4);
}

static bool is_blockdev(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISBLK(sb.st_mode);
}

/* /sys/block/nvme*: the one whose device/serial is `serial`. */
static char *sysfs_nvme(const char *serial)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	char *found = NULL;

	if (!d)
		return NULL;
	while (!found && (de = readdir(d))) {
		char path[PATH_MAX], buf[64];
		FILE *f;

		if (strncmp(de->d_name, "nvme", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/device/serial",
			 de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			size_t l = strlen(buf);

			while (l && isspace((unsigned char)buf[l - 1]))
				buf[--l] = '\0';
			if (!strcmp(buf, serial))
				found = cm_xasprintf("/dev/%s", de->d_name);
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

static bool on_xen(void)
{
	char buf[16] = "";
	FILE *f = fopen("/sys/hypervisor/type", "re");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strncmp(buf, "xen", 3) == 0;
}

/* Xen's names for AttachVolume's "/dev/sdf": /dev/xvdf, /dev/sdf. */
static void xen_names(const char *root, const char *device, char *xvd,
		      char *sd, size_t n)
{
	const char *leaf = strrchr(device, '/');

	leaf = leaf ? leaf + 1 : device;
	if (!strncmp(leaf, "sd", 2))
		snprintf(xvd, n, "%s/xvd%s", root, leaf + 2);
	else
		snprintf(xvd, n, "%s/%s", root, leaf);
	snprintf(sd, n, "%s/%s", root, leaf);
}

/* The volume's block device, or NULL (yet). `xen_before`: the Xen names
 * that existed before the attach (not ours). */
static char *find_device(const char *root, const char *vol,
			 const char *device, bool xen, const bool xen_before[2])
{
	char serial[32], path[PATH_MAX], xvd[PATH_MAX], sd[PATH_MAX];
	char *real;

	nvme_serial(vol, serial, sizeof(serial));
	snprintf(path, sizeof(path),
		 "%s/disk/by-id/nvme-Amazon_Elastic_Block_Store_%s", root,
		 serial);
	if (is_blockdev(path) && (real = realpath(path, NULL)))
		return real;
	if (!strcmp(root, "/dev") && (real = sysfs_nvme(serial)))
		return real;
	if (!xen)
		return NULL;
	xen_names(root, device, xvd, sd, sizeof(xvd));
	if (!xen_before[0] && is_blockdev(xvd))
		return cm_xstrdup(xvd);
	if (!xen_before[1] && is_blockdev(sd))
		return cm_xstrdup(sd);
	return NULL;
}

/* ---- create and attach ------------------------------------------------- */

/* The device names the instance's block device mappings use. */
static int used_devices(struct aws_client *ec2, const char *instance,
			char used[26], struct cm_err *err)
{
	const char *params[] = { "InstanceId.1", instance };
	struct cm_xml *ans = NULL, *inst;
	int rc;

	memset(used, 0, 26);
	rc = aws_query(ec2, "DescribeInstances", params, 1, &ans, err);
	if (rc)
		return cm_err_prefix(err, "instance %s", instance);
	inst = cm_xml_child(cm_xml_child(cm_xml_child(cm_xml_child(
		ans, "reservationSet"), "item"), "instancesSet"), "item");
	if (!inst) {
		cm_xml_free(ans);
		return cm_err_set(err, ENOENT, "instance %s: not described "
				  "(is IMDS this instance's?)", instance);
	}
	for (struct cm_xml *m = cm_xml_child(cm_xml_child(inst,
				"blockDeviceMapping"), "item");
	     m; m = cm_xml_next(m, "item")) {
		const char *d = cm_xml_child_text(m, "deviceName");
		size_t l = d ? strlen(d) : 0;

		/* /dev/sdf, /dev/xvdf, xvdf: the last letter counts */
		if (l && d[l - 1] >= 'a' && d[l - 1] <= 'z')
			used[d[l - 1] - 'a'] = 1;
	}
	cm_xml_free(ans);
	return 0;
}

/* AttachVolume at the first free name of /dev/sdf .. /dev/sdp (the range
 * EC2 recommends for EBS volumes); the name into device. On Xen (`root`
 * given), which of its two names existed right before the call goes into
 * xen_before: those are some other disk's. */
static int attach(struct aws_client *ec2, const char *vol,
		  const char *instance, const char *root, char device[16],
		  bool xen_before[2], struct cm_err *err)
{
	char used[26];
	int rc = 0;

	pthread_mutex_lock(&attach_lock);
	rc = used_devices(ec2, instance, used, err);
	for (char l = 'f'; rc == 0; l++) {
		const char *params[] = { "VolumeId", vol, "InstanceId",
					 instance, "Device", device };

		if (l > 'p') {
			rc = cm_err_set(err, ENOSPC, "instance %s: no free "
					"device name from /dev/sdf to /dev/sdp",
					instance);
			break;
		}
		if (used[l - 'a'])
			continue;
		snprintf(device, 16, "/dev/sd%c", l);
		if (root) {
			char xvd[PATH_MAX], sd[PATH_MAX];

			xen_names(root, device, xvd, sd, sizeof(xvd));
			xen_before[0] = is_blockdev(xvd);
			xen_before[1] = is_blockdev(sd);
		}
		cm_err_clear(err);
		rc = ec2_do(ec2, "AttachVolume", params, 3, err);
		/* taken meanwhile by someone else: the next one */
		if (rc && strstr(err->msg, "already in use")) {
			rc = 0;
			continue;
		}
		break;
	}
	pthread_mutex_unlock(&attach_lock);
	return rc ? cm_err_prefix(err, "volume %s: attach", vol) : 0;
}

/* ebs-volume's "vaultfs:token" and the config's tags on the volume. */
static void tag_params(const struct orch_config *cfg, const char *token,
		       const char ***params, size_t *n, char ***owned,
		       size_t *nowned)
{
	size_t k = 1;

#define PUSH(a, b)                                                         \
	do {                                                               \
		(*params)[2 * *n] = (a);                                   \
		(*params)[2 * *n + 1] = (b);                               \
		(*n)++;                                                    \
	} while (0)
#define OWN(s) ((*owned)[(*nowned)++] = (s))

	PUSH("TagSpecification.1.ResourceType", "volume");
	PUSH(OWN(cm_xasprintf("TagSpecification.1.Tag.%zu.Key", k)),
	     TOKEN_TAG);
	PUSH(OWN(cm_xasprintf("TagSpecification.1.Tag.%zu.Value", k)),
	     token);
	k++;
	for (size_t i = 0; i < cfg->ntags; i++, k++) {
		PUSH(OWN(cm_xasprintf("TagSpecification.1.Tag.%zu.Key", k)),
		     cfg->tags[i].key);
		PUSH(OWN(cm_xasprintf("TagSpecification.1.Tag.%zu.Value", k)),
		     cfg->tags[i].value);
	}
	if (cfg->has_security_tag) {
		PUSH(OWN(cm_xasprintf("TagSpecification.1.Tag.%zu.Key", k)),
		     cfg->security_tag.key);
		PUSH(OWN(cm_xasprintf("TagSpecification.1.Tag.%zu.Value", k)),
		     cfg->security_tag.value);
	}
#undef PUSH
#undef OWN
}

/* CreateVolume; the volume id into *vol. */
static int create(struct aws_client *ec2, const struct orch_config *cfg,
		  const char *snap, const char *zone, const char *token,
		  char **vol, struct cm_err *err)
{
	size_t cap = 2 * (8 + 2 * (cfg->ntags + 2)), n = 0, nowned = 0;
	const char **params = cm_xcalloc(cap, sizeof(*params));
	char **owned = cm_xcalloc(cap, sizeof(*owned));
	char iops[16], tput[16];
	struct cm_xml *ans = NULL;
	const char *id;
	int rc;

	params[n * 2] = "SnapshotId", params[n * 2 + 1] = snap, n++;
	params[n * 2] = "AvailabilityZone", params[n * 2 + 1] = zone, n++;
	params[n * 2] = "VolumeType";
	params[n * 2 + 1] = cfg->ebs_volume_type, n++;
	params[n * 2] = "ClientToken", params[n * 2 + 1] = token, n++;
	if (cfg->ebs_iops) {
		snprintf(iops, sizeof(iops), "%u", cfg->ebs_iops);
		params[n * 2] = "Iops", params[n * 2 + 1] = iops, n++;
	}
	if (cfg->ebs_throughput) {
		snprintf(tput, sizeof(tput), "%u", cfg->ebs_throughput);
		params[n * 2] = "Throughput", params[n * 2 + 1] = tput, n++;
	}
	tag_params(cfg, token, &params, &n, &owned, &nowned);
	rc = aws_query(ec2, "CreateVolume", params, n, &ans, err);
	id = rc ? NULL : cm_xml_child_text(ans, "volumeId");
	if (!rc && (!id || strncmp(id, "vol-", 4) != 0))
		rc = cm_err_set(err, EIO, "CreateVolume from %s answered no "
				"volume id", snap);
	if (!rc)
		*vol = cm_xstrdup(id);
	cm_xml_free(ans);
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(params);
	return rc;
}

static struct aws_client *ec2_client(struct orch_provider *p,
				     struct cm_err *err)
{
	struct aws_backup *ab = awsb_of(p);
	struct aws_client_opts o = { 0 };

	o.region = ab->region;
	o.endpoints = p->cfg->endpoints;
	o.nendpoints = p->cfg->nendpoints;
	o.creds = ab->creds;
	return aws_client_new(&aws_ec2, &o, err);
}

/* This instance's id and zone from IMDSv2. */
static int whoami(struct aws_client *ec2, char **instance, char **zone,
		  struct cm_err *err)
{
	struct aws_creds_provider *cp = aws_client_creds(ec2);
	int rc;

	*zone = NULL;
	rc = aws_imds_get(cp, "/latest/meta-data/instance-id", instance, err);
	if (rc == 0)
		rc = aws_imds_get(cp, "/latest/meta-data/placement/"
				  "availability-zone", zone, err);
	if (rc) {
		free(*instance);
		*instance = NULL;
		return cm_err_prefix(err, "ebs.method volume needs this EC2 "
				     "instance's id and zone");
	}
	return 0;
}

/*
 * Once created: wait for `available`, attach, wait for `attached`, and
 * find the volume's block device (steps 4 and 5 above) into *dev.
 */
static int attach_device(struct aws_client *ec2,
			 const struct orch_config *cfg,
			 const struct vol_restored *vr, char **dev,
			 struct cm_err *err)
{
	const char *root = cfg->ebs_device_root;
	bool xen, xen_before[2] = { false, false };
	char device[16] = "", serial[32];
	struct vol_state st;
	double end;
	int rc;

	*dev = NULL;
	rc = wait_for(ec2, vr->volume, is_ready, "available",
		      AVAILABLE_TIMEOUT_S, &st, err);
	if (rc == 0 && st.gone)
		rc = cm_err_set(err, EIO, "volume %s went away while it was "
				"being created", vr->volume);
	if (rc)
		return rc;
	xen = strcmp(root, "/dev") == 0 && on_xen();
	rc = attach(ec2, vr->volume, vr->instance, xen ? root : NULL, device,
		    xen_before, err);
	if (rc == 0)
		rc = wait_for(ec2, vr->volume, is_attached, "attached",
			      ATTACH_TIMEOUT_S, &st, err);
	if (rc)
		return rc;
	cm_info("ebs: volume %s attached to %s as %s", vr->volume,
		vr->instance, device);
	test_pause("attached");

	end = cm_now_s() + cfg->ebs_device_timeout_seconds;
	while (!(*dev = find_device(root, vr->volume, device, xen,
				    xen_before)) &&
	       cm_now_s() < end)
		cm_sleep_ms(100);
	if (*dev)
		return 0;
	nvme_serial(vr->volume, serial, sizeof(serial));
	return cm_err_set(err, ENODEV, "volume %s is attached as %s, but no "
			  "block device matches it after %u s (no %s/disk/"
			  "by-id/nvme-Amazon_Elastic_Block_Store_%s, no NVMe "
			  "device with serial %s%s)", vr->volume, device,
			  cfg->ebs_device_timeout_seconds, root, serial,
			  serial, xen ? ", no new Xen device of that name" : "");
}

static int vol_restore(struct orch_provider *p,
		       const struct orch_recovery_point *rp,
		       const struct orch_res_journal *rj,
		       struct orch_restored *out, struct cm_err *err)
{
	const struct orch_config *cfg = p->cfg;
	struct vol_restored *vr = NULL;
	struct orch_res_ids ids = { 0 };
	struct cm_json *j;
	struct aws_client *ec2;
	char snap[64], token[64], *zone = NULL, *dev = NULL;
	char *instance = NULL;
	uint32_t rnd = 0;
	size_t idx;
	int rc;

	rc = awsb_ebs_snapshot_id(rp, snap, sizeof(snap), err);
	if (rc)
		return rc;
	ec2 = ec2_client(p, err);
	if (!ec2)
		return -(err->code ? err->code : EINVAL);
	rc = whoami(ec2, &instance, &zone, err);
	if (rc)
		goto fail_client;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)getpid() ^ (uint32_t)(cm_now_s() * 1e6);
	/* ClientToken: at most 64 ASCII characters */
	snprintf(token, sizeof(token), "%.40s-%08" PRIx32,
		 rj->job_id ? rj->job_id : "vaultfs", rnd);

	j = cm_json_new_object();
	cm_json_add_str(j, "snapshot", snap);
	cm_json_add_str(j, "token", token);
	cm_json_add_str(j, "instance", instance);
	cm_json_add_str(j, "zone", zone);
	ids.json = j;
	rc = rj->add(rj->ctx, KIND, &ids, &idx, err);
	cm_json_free(j);
	if (rc)
		goto fail_client;
	test_pause("journaled");

	vr = cm_xcalloc(1, sizeof(*vr));
	vr->ec2 = ec2;
	vr->instance = instance;
	vr->idx = idx;
	instance = NULL;
	rc = create(ec2, cfg, snap, zone, token, &vr->volume, err);
	if (rc) {
		cm_err_prefix(err, "CreateVolume from %s in %s", snap, zone);
		goto fail_journaled;
	}
	j = cm_json_new_object();
	cm_json_add_str(j, "volume", vr->volume);
	ids.json = j;
	rc = rj->created(rj->ctx, idx, &ids, err);
	cm_json_free(j);
	if (rc)
		goto fail_journaled;
	cm_info("ebs: %s: volume %s (%s) created in %s", snap, vr->volume,
		cfg->ebs_volume_type, zone);
	test_pause("created");

	rc = attach_device(ec2, cfg, vr, &dev, err);
	if (rc)
		goto fail_journaled;
	out->fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (out->fd < 0) {
		rc = cm_err_set(err, errno, "%s (volume %s): %s", dev,
				vr->volume, strerror(errno));
		goto fail_journaled;
	}
	cm_info("ebs: volume %s is %s", vr->volume, dev);
	out->path = dev;
	out->mode = ARC_MODE_AUTO;
	out->manifest = cm_json_new_object();
	cm_json_add_str(out->manifest, "method", "ebs-volume");
	cm_json_add_str(out->manifest, "snapshotId", snap);
	cm_json_add_str(out->manifest, "volumeId", vr->volume);
	cm_json_add_str(out->manifest, "volumeType", cfg->ebs_volume_type);
	out->priv = vr;
	free(zone);
	return 0;

fail_journaled: {
	struct cm_err e;
	char **found = NULL;

	free(dev);
	cm_err_clear(&e);
	/* a create whose answer was lost still made it: by its tag */
	if (!vr->volume && find_by_token(ec2, token, &found, &e) == 0 &&
	    found[0])
		vr->volume = cm_xstrdup(found[0]);
	for (size_t i = 0; found && found[i]; i++)
		free(found[i]);
	free(found);
	if (vr->volume && volume_drop(ec2, vr->volume, &e) != 0) {
		cm_warn("ebs: %s (left recorded for the next start)", e.msg);
	} else if (rj->released(rj->ctx, idx, &e)) {
		cm_warn("%s", e.msg);
	}
	free(vr->volume);
	free(vr->instance);
	free(vr);
}
fail_client:
	cm_err_prefix(err, "%s", rp->path);
	aws_client_free(ec2);
	free(instance);
	free(zone);
	return rc;
}

static void vol_release(struct orch_provider *p,
			const struct orch_res_journal *rj,
			struct orch_restored *r)
{
	struct vol_restored *vr = r->priv;
	struct cm_err e;

	(void)p;
	if (!vr)
		return;
	/* the archiver has unmounted and detached what it put on it */
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	cm_err_clear(&e);
	if (volume_drop(vr->ec2, vr->volume, &e) != 0)
		cm_warn("ebs: %s (left recorded for the next start)", e.msg);
	else if (rj->released(rj->ctx, vr->idx, &e))
		cm_warn("%s", e.msg);
	aws_client_free(vr->ec2);
	free(vr->volume);
	free(vr->instance);
	free(vr);
	r->priv = NULL;
}

/* After a crash: the recorded volume, or the ones its token tags. */
static int vol_release_stale(struct orch_provider *p,
			     const struct orch_resource *res,
			     struct cm_err *err)
{
	const char *vol = cm_json_get_str(res->ids, "volume");
	const char *token = cm_json_get_str(res->ids, "token");
	struct aws_client *ec2;
	char **found = NULL;
	int rc = 0;

	if (!vol && !token)
		return 0; /* never made */
	ec2 = ec2_client(p, err);
	if (!ec2)
		return -(err->code ? err->code : EINVAL);
	if (vol) {
		rc = volume_drop(ec2, vol, err);
		if (rc == 0)
			cm_info("ebs: volume %s released (left by an earlier "
				"run)", vol);
	} else {
		rc = find_by_token(ec2, token, &found, err);
		for (size_t i = 0; rc == 0 && found[i]; i++) {
			rc = volume_drop(ec2, found[i], err);
			if (rc == 0)
				cm_info("ebs: volume %s released (left by an "
					"earlier run)", found[i]);
		}
		for (size_t i = 0; found && found[i]; i++)
			free(found[i]);
		free(found);
	}
	aws_client_free(ec2);
	return rc;
}

static const struct orch_provider_ops vol_ops = {
	.name = "aws-backup EBS volume",
	.restore = vol_restore,
	.release = vol_release,
	.release_stale = vol_release_stale,
};

static const char *const vol_kinds[] = { KIND, NULL };

const struct orch_aws_restorer orch_ebs_volume_restorer = {
	.ops = &vol_ops,
	.kinds = vol_kinds,
};
