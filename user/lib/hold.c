// SPDX-License-Identifier: GPL-2.0
/* The ingress hold's counters: see hold.h. */
#include <errno.h>
#include <string.h>

#include "../../kmod/uapi/ftvm.h"
#include "hold.h"
#include "json_print.h"

int ftnl_hold_parse(const struct nlattr *nest, struct ftnl_hold *h)
{
	struct nlattr *a[FTVM_A_HOLD_MAX + 1];
	uint64_t *u64s[] = {
		[FTVM_A_HOLD_HELD] = &h->held,
		[FTVM_A_HOLD_RELEASED] = &h->released,
		[FTVM_A_HOLD_EXPIRED] = &h->expired,
		[FTVM_A_HOLD_OVERFLOW] = &h->overflow,
		[FTVM_A_HOLD_DEV_GONE] = &h->dev_gone,
	};

	memset(h, 0, sizeof(*h));
	if (nla_parse_nested(a, FTVM_A_HOLD_MAX, (struct nlattr *)nest, NULL))
		return -EINVAL;
	if (a[FTVM_A_HOLD_ARMED_MS])
		h->armed_ms = nla_get_u32(a[FTVM_A_HOLD_ARMED_MS]);
	if (a[FTVM_A_HOLD_QUEUED])
		h->queued = nla_get_u32(a[FTVM_A_HOLD_QUEUED]);
	for (size_t i = 0; i < sizeof(u64s) / sizeof(u64s[0]); i++)
		if (u64s[i] && a[i])
			*u64s[i] = nla_get_u64(a[i]);
	return 0;
}

void ftnl_hold_print(const struct ftnl_hold *h, bool text)
{
	enum output_type t = text ? PRINT_ANY : PRINT_JSON;

	open_json_object("hold");
	if (text && h->armed_ms)
		print_uint(PRINT_FP, NULL, "\n    hold: armed for %u ms,", h->armed_ms);
	else if (text)
		print_string(PRINT_FP, NULL, "%s", "\n    hold: not armed,");
	print_uint(PRINT_JSON, "armed_ms", NULL, h->armed_ms);
	print_uint(t, "queued", " queued %u", h->queued);
	print_u64(t, "held", ", held %llu", h->held);
	print_u64(t, "released", ", released %llu", h->released);
	print_u64(t, "expired", ", expired %llu", h->expired);
	print_u64(t, "overflow", ", overflow %llu", h->overflow);
	print_u64(t, "dev_gone", ", device gone %llu", h->dev_gone);
	close_json_object();
}
