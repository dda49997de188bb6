// SPDX-License-Identifier: GPL-2.0
/*
 * Output commit: each service's mode ("commit strict|relaxed",
 * "ckpt-wait MS") pushed to ftvm.ko with FTVM_CMD_COMMIT_SET.
 *
 * In strict mode ftvm.ko holds what a VM sends for a session of the
 * service until a record of the session covering it is staged on another
 * live VM (Documentation/replication.rst).  ftd keeps the kernel's list
 * equal to its strict services: at start (strict leftovers of an ftd
 * killed with SIGKILL that the configuration no longer has are relaxed),
 * whenever a service changes or goes, and at a clean exit, when every
 * strict service is relaxed so that nothing stays held with no ftd to
 * re-protect the sessions.
 *
 * Main thread only (start, commands under ftd.lock, exit): one socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../libftvm/nl.h"
#include "ftd.h"

static struct ftvm_nl nl = { .fd = -1 };

static bool is_strict(const struct ftd_service *s)
{
	return s && s->commit == FTVM_COMMIT_STRICT;
}

static int commit_nl(void)
{
	int err;

	if (!ftd.have_module)
		return -ENOENT;
	if (nl.fd >= 0)
		return 0;
	err = ftvm_nl_open(&nl);
	nl.nomem_retries = FTD_NOMEM_RETRIES;
	return err;
}

/* A service's key as ftvm.ko names it. */
static void commit_key(const struct ftd_service *s, enum ftvm_commit_mode mode,
		       struct ftvm_commit *c)
{
	memset(c, 0, sizeof(*c));
	c->family = s->key.family == FTVM_FAMILY_V6 ? AF_INET6 : AF_INET;
	c->proto = s->key.proto;
	c->port = ntohs(s->key.port);
	memcpy(c->addr, s->key.vaddr, c->family == AF_INET6 ? 16 : 4);
	c->mode = (uint8_t)mode;
	c->ckpt_wait_ms = s->ckpt_wait_ms;
}

static void commit_strerror(int ret, char *err, size_t len)
{
	if (!err)
		return;
	if (!ftd.have_module)
		snprintf(err, len, "\"commit strict\" needs ftvm.ko, which is not loaded");
	else if (ret == -EOPNOTSUPP && !nl.err[0])
		snprintf(err, len, "ftvm.ko does not support output commit (an older module?)");
	else
		snprintf(err, len, "ftvm.ko: %s", nl.err[0] ? nl.err : strerror(-ret));
}

/* COMMIT_SET of @s's key with @mode; the reason in @err. */
static int commit_set(const struct ftd_service *s, enum ftvm_commit_mode mode,
		      char *err, size_t len)
{
	struct ftvm_commit c;
	int ret;

	nl.err[0] = 0;
	ret = commit_nl();
	if (!ret) {
		commit_key(s, mode, &c);
		ret = ftvm_commit_set(&nl, &c);
	}
	if (ret)
		commit_strerror(ret, err, len);
	return ret;
}

/* Relax @s's key in ftvm.ko; a failure is only logged. */
static void commit_relax(const struct ftd_service *s)
{
	char err[256];
	int ret = commit_set(s, FTVM_COMMIT_RELAXED, err, sizeof(err));

	if (!ret)
		ftd_log(LOG_INFO, "service %s: output commit relaxed", s->name);
	else if (ret != -ENOENT)
		ftd_log(LOG_WARN, "service %s: cannot relax output commit: %s",
			s->name, err);
}

int commit_update(const struct ftd_service *old, const struct ftd_service *new,
		  char *err, size_t len)
{
	bool same_key = old && new && !memcmp(&old->key, &new->key,
					      sizeof(old->key));

	if (is_strict(new) &&
	    (!is_strict(old) || !same_key || old->ckpt_wait_ms != new->ckpt_wait_ms)) {
		if (commit_set(new, FTVM_COMMIT_STRICT, err, len))
			return -1;
		ftd_log(LOG_INFO, "service %s: output commit strict (ckpt-wait %u ms)",
			new->name, new->ckpt_wait_ms);
	}
	if (is_strict(old) && (!is_strict(new) || !same_key))
		commit_relax(old);
	return 0;
}

static const struct ftd_service *strict_by_key(const struct ftvm_commit *k)
{
	for (int i = 0; i < FTVM_MAX_SERVICES; i++) {
		const struct ftd_service *s = &ftd.cfg.svcs[i];
		struct ftvm_commit c;

		if (!s->used || !is_strict(s))
			continue;
		commit_key(s, FTVM_COMMIT_STRICT, &c);
		if (c.family == k->family && c.proto == k->proto &&
		    c.port == k->port &&
		    !memcmp(c.addr, k->addr, c.family == AF_INET6 ? 16 : 4))
			return s;
	}
	return NULL;
}

/* A strict service in ftvm.ko that ftd does not have: relax it. */
static int relax_leftover(const struct ftvm_commit *k, void *arg)
{
	struct ftvm_commit *left = arg;
	char a[INET6_ADDRSTRLEN] = "?";

	if (strict_by_key(k))
		return 0;
	inet_ntop(k->family, k->addr, a, sizeof(a));
	ftd_log(LOG_INFO, "ftvm.ko has %s port %u strict, no strict service of ftd's: relaxing it",
		a, k->port);
	/* Not from inside the dump: collected, relaxed after it. */
	for (int i = 0; i < FTVM_COMMIT_SERVICES_MAX; i++) {
		if (!left[i].family) {
			left[i] = *k;
			left[i].mode = FTVM_COMMIT_RELAXED;
			break;
		}
	}
	return 0;
}

static void relax_leftovers(void)
{
	struct ftvm_commit left[FTVM_COMMIT_SERVICES_MAX] = {};
	int ret;

	ret = ftvm_commit_get(&nl, relax_leftover, left);
	if (ret) {
		/* An older module: no leftovers; a strict service says so. */
		if (ret != -EOPNOTSUPP)
			ftd_log(LOG_WARN, "output commit dump: %s",
				nl.err[0] ? nl.err : strerror(-ret));
		return;
	}
	for (int i = 0; i < FTVM_COMMIT_SERVICES_MAX && left[i].family; i++) {
		ret = ftvm_commit_set(&nl, &left[i]);
		if (ret)
			ftd_log(LOG_WARN, "relaxing a leftover output commit: %s",
				nl.err[0] ? nl.err : strerror(-ret));
	}
}

int commit_check(void)
{
	for (int i = 0; i < FTVM_MAX_SERVICES; i++) {
		const struct ftd_service *s = &ftd.cfg.svcs[i];

		if (s->used && is_strict(s) && !ftd.have_module) {
			ftd_log(LOG_ERR, "service %s: \"commit strict\" needs ftvm.ko, which is not loaded (load it, or make the service \"commit relaxed\")",
				s->name);
			return -ENOENT;
		}
	}
	return 0;
}

int commit_start(void)
{
	char err[256];
	int ret;

	if (ftd.have_module) {
		ret = commit_nl();
		if (ret) {
			ftd_log(LOG_ERR, "output commit: ftvm.ko: %s", strerror(-ret));
			return ret;
		}
		relax_leftovers();
	}
	for (int i = 0; i < FTVM_MAX_SERVICES; i++) {
		const struct ftd_service *s = &ftd.cfg.svcs[i];

		if (!s->used || !is_strict(s))
			continue;
		ret = commit_set(s, FTVM_COMMIT_STRICT, err, sizeof(err));
		if (ret) {
			ftd_log(LOG_ERR, "service %s: %s", s->name, err);
			return ret;
		}
		ftd_log(LOG_INFO, "service %s: output commit strict (ckpt-wait %u ms)",
			s->name, s->ckpt_wait_ms);
	}
	return 0;
}

void commit_stop(void)
{
	if (nl.fd < 0)
		return;
	for (int i = 0; i < FTVM_MAX_SERVICES; i++) {
		const struct ftd_service *s = &ftd.cfg.svcs[i];

		if (s->used && is_strict(s))
			commit_relax(s);
	}
	ftvm_nl_close(&nl);
}

int commit_counters(const struct ftd_service *s, struct ftvm_commit *out,
		    char *err, size_t len)
{
	struct ftvm_commit c;
	int ret;

	nl.err[0] = 0;
	ret = commit_nl();
	if (!ret) {
		commit_key(s, FTVM_COMMIT_STRICT, &c);
		ret = ftvm_commit_find(&nl, &c, out);
	}
	if (ret == -ENOENT && ftd.have_module)
		snprintf(err, len, "not strict in ftvm.ko");
	else if (ret)
		commit_strerror(ret, err, len);
	return ret;
}

/* ---- ftvm.ko's view of the strict sessions ---------------------------- */

/* A session as ftvm.ko names it (flow_tuple()), and its figure. */
struct commit_seen {
	struct ftvm_tuple t;
	int64_t staged_ms;
};

static int seen_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct commit_seen *)a)->t,
		      &((const struct commit_seen *)b)->t,
		      sizeof(struct ftvm_tuple));
}

static int view_add(const struct ftvm_commit_sess *cs, void *arg)
{
	struct commit_view *cv = arg;
	struct commit_seen *e;

	if (cs->t.proto != IPPROTO_TCP)
		return 0;
	if (cv->n == cv->cap) {
		size_t cap = cv->cap ? 2 * cv->cap : 256;

		e = realloc(cv->v, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		cv->v = e;
		cv->cap = cap;
	}
	cv->v[cv->n++] = (struct commit_seen){ .t = cs->t,
					       .staged_ms = cs->staged_ms };
	return 0;
}

int commit_view_load(struct commit_view *cv)
{
	int ret;

	memset(cv, 0, sizeof(*cv));
	ret = commit_nl();
	if (!ret)
		ret = ftvm_commit_sessions(&nl, view_add, cv);
	if (ret) {
		commit_view_free(cv);
		return ret;
	}
	if (cv->n)
		qsort(cv->v, cv->n, sizeof(*cv->v), seen_cmp);
	return 0;
}

int64_t commit_view_staged_ms(const struct commit_view *cv,
			      const struct ftvm_flow *f)
{
	struct commit_seen k;
	const struct commit_seen *e;

	if (!cv->n)
		return -1;
	flow_tuple(f, &k.t);
	e = bsearch(&k, cv->v, cv->n, sizeof(*cv->v), seen_cmp);
	/* A table resize may have shown a session twice: any copy will do. */
	return e ? e->staged_ms : -1;
}

void commit_view_free(struct commit_view *cv)
{
	free(cv->v);
	memset(cv, 0, sizeof(*cv));
}
