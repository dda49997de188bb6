/* SPDX-License-Identifier: LGPL-2.1 OR MIT */
/*
 * A minimal generic netlink client for the ftvm family, without libnl:
 * libftvm sits in services, which should not pull libnl in for two
 * requests.  Internal to libftvm and the ftvm tools.
 */
#ifndef FTVM_NL_H
#define FTVM_NL_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

struct ftvm_nl {
	int fd;
	uint16_t family;
	uint32_t seq;
	char err[256];		/* the kernel's extack message, if any */
	uint32_t err_off;	/* offset of the offending attribute, or 0 */
};

/* A request being built; buf is malloc()ed and grows. */
struct ftvm_msg {
	char *buf;
	size_t len, cap;
};

int ftvm_nl_open(struct ftvm_nl *nl);
void ftvm_nl_close(struct ftvm_nl *nl);

int ftvm_msg_init(struct ftvm_msg *m, struct ftvm_nl *nl, uint8_t cmd, uint16_t flags);
void ftvm_msg_free(struct ftvm_msg *m);
int ftvm_msg_put(struct ftvm_msg *m, uint16_t type, const void *data, size_t len);
/* Append raw, already aligned attributes. */
int ftvm_msg_append(struct ftvm_msg *m, const void *data, size_t len);
/* Returns the nest's offset for ftvm_msg_nest_end(), or -1. */
long ftvm_msg_nest(struct ftvm_msg *m, uint16_t type);
void ftvm_msg_nest_end(struct ftvm_msg *m, long off);

/*
 * Send @m and read replies until the ack (or the end of a dump); @cb is
 * called for every reply message with its attributes.  Returns 0 or a
 * negative errno; nl->err then holds the kernel's explanation.
 */
typedef int (*ftvm_nl_cb)(const struct nlattr *attrs, size_t len, void *arg);
int ftvm_nl_talk(struct ftvm_nl *nl, struct ftvm_msg *m, ftvm_nl_cb cb, void *arg);

#define ftvm_nla_for_each(a, head, len, rem)                                   \
	for (a = (const struct nlattr *)(head), rem = (long)(len);             \
	     rem >= (long)sizeof(*a) && a->nla_len >= sizeof(*a) &&            \
	     a->nla_len <= rem;                                                \
	     rem -= NLA_ALIGN(a->nla_len),                                     \
	     a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len)))

static inline const void *ftvm_nla_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static inline size_t ftvm_nla_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

static inline int ftvm_nla_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

#endif
