// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * libftvm: a service's checkpoints of its own connections (see ftvm.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../kmod/uapi/ftvm.h"
#include "ftvm.h"
#include "nl.h"

static __thread struct ftvm_nl tls_nl = { .fd = -1 };
static __thread char tls_err[256];

static struct ftvm_nl *ftvm_nl(void)
{
	int err;

	if (tls_nl.fd >= 0)
		return &tls_nl;
	err = ftvm_nl_open(&tls_nl);
	if (err) {
		snprintf(tls_err, sizeof(tls_err), "ftvm.ko not available: %s",
			 strerror(-err));
		errno = -err;
		return NULL;
	}
	return &tls_nl;
}

static int ftvm_fail(struct ftvm_nl *nl, int err)
{
	snprintf(tls_err, sizeof(tls_err), "%s", nl->err[0] ? nl->err : strerror(-err));
	errno = -err;
	return -1;
}

const char *ftvm_strerror(void)
{
	return tls_err;
}

static int ftvm_ckpt_msg(struct ftvm_nl *nl, struct ftvm_msg *m, uint8_t cmd,
			 int fd, const void *blob, size_t len)
{
	int32_t sfd = fd;
	long nest;

	if (ftvm_msg_init(m, nl, cmd, 0))
		return -ENOMEM;
	nest = ftvm_msg_nest(m, FTVM_A_CKPT);
	if (nest < 0 || ftvm_msg_put(m, FTVM_A_CKPT_FD, &sfd, sizeof(sfd)) ||
	    (blob && ftvm_msg_put(m, FTVM_A_CKPT_BLOB, blob, len))) {
		ftvm_msg_free(m);
		return -ENOMEM;
	}
	ftvm_msg_nest_end(m, nest);
	return 0;
}

int ftvm_checkpoint(int fd, const void *blob, size_t len)
{
	struct ftvm_nl *nl = ftvm_nl();
	struct ftvm_msg m;
	int err;

	if (!nl)
		return -1;
	if (len > FTVM_BLOB_MAX) {
		snprintf(tls_err, sizeof(tls_err), "blob larger than %d bytes",
			 FTVM_BLOB_MAX);
		errno = EMSGSIZE;
		return -1;
	}
	err = ftvm_ckpt_msg(nl, &m, FTVM_CMD_CKPT_SET, fd, blob ? blob : "", len);
	if (err)
		return ftvm_fail(nl, err);
	err = ftvm_nl_talk(nl, &m, NULL, NULL);
	ftvm_msg_free(&m);
	return err ? ftvm_fail(nl, err) : 0;
}

struct ftvm_blob_out {
	void *buf;
	size_t cap;
	ssize_t len;
};

static int ftvm_blob_cb(const struct nlattr *attrs, size_t len, void *arg)
{
	struct ftvm_blob_out *out = arg;
	const struct nlattr *a, *b;
	long rem, rem2;

	ftvm_nla_for_each(a, attrs, len, rem) {
		if (ftvm_nla_type(a) != FTVM_A_CKPT)
			continue;
		ftvm_nla_for_each(b, ftvm_nla_data(a), ftvm_nla_len(a), rem2) {
			size_t n = ftvm_nla_len(b);

			if (ftvm_nla_type(b) != FTVM_A_CKPT_BLOB)
				continue;
			if (n > out->cap)
				return -EMSGSIZE;
			memcpy(out->buf, ftvm_nla_data(b), n);
			out->len = n;
		}
	}
	return 0;
}

ssize_t ftvm_restore_blob(int fd, void *buf, size_t len)
{
	struct ftvm_blob_out out = { .buf = buf, .cap = len, .len = -1 };
	struct ftvm_nl *nl = ftvm_nl();
	struct ftvm_msg m;
	int err;

	if (!nl)
		return -1;
	err = ftvm_ckpt_msg(nl, &m, FTVM_CMD_CKPT_GET, fd, NULL, 0);
	if (err)
		return ftvm_fail(nl, err);
	err = ftvm_nl_talk(nl, &m, ftvm_blob_cb, &out);
	ftvm_msg_free(&m);
	if (!err && out.len < 0)
		err = -ENOENT;
	return err ? ftvm_fail(nl, err) : out.len;
}
