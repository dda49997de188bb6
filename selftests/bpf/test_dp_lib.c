// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the data plane library without the kernel: Maglev table
 * population (balance, weights, disruption), service parsing.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "../../user/lib/steer.h"
#include "ktap.h"

#define M FTVM_MAGLEV_SIZE

static uint32_t t1[M], t2[M];

static void count(const uint32_t *t, unsigned int *c, size_t n)
{
	memset(c, 0, n * sizeof(*c));
	for (int i = 0; i < M; i++)
		if (t[i] < n)
			c[t[i]]++;
}

static void test_maglev(void)
{
	struct ftvm_dp_backend b[8];
	unsigned int c[16], lo = M, hi = 0, kept = 0, moved_to_removed = 0;
	int ok;

	for (int i = 0; i < 8; i++)
		b[i] = (struct ftvm_dp_backend){ (uint32_t)i + 1, 1 };
	ok = !ftvm_dp_maglev_build(b, 8, t1);
	count(t1, c, 16);
	for (int i = 1; i <= 8; i++) {
		lo = c[i] < lo ? c[i] : lo;
		hi = c[i] > hi ? c[i] : hi;
	}
	ktap_result(ok && c[0] == 0 && lo + 2 >= hi,
		    "maglev: 8 equal backends fill the table evenly (%u..%u slots)",
		    lo, hi);

	/* Remove backend 5: its slots move, few others do. */
	b[4] = b[7];
	ok = !ftvm_dp_maglev_build(b, 7, t2);
	for (int i = 0; i < M; i++) {
		if (t1[i] == 5)
			moved_to_removed++;
		else if (t1[i] == t2[i])
			kept++;
	}
	ktap_result(ok && kept * 100 >= (M - moved_to_removed) * 95,
		    "maglev: removing one of 8 backends keeps %u of %u other slots",
		    kept, M - moved_to_removed);

	b[0].weight = 3;
	ok = !ftvm_dp_maglev_build(b, 2, t1);
	count(t1, c, 16);
	ktap_result(ok && c[1] > 2 * c[2] && c[1] < 4 * c[2],
		    "maglev: weight 3 against 1 takes about three quarters (%u/%u)",
		    c[1], c[2]);

	ok = !ftvm_dp_maglev_build(b, 0, t1);
	count(t1, c, 16);
	ktap_result(ok && c[0] == M, "maglev: no backends leaves the row empty");

	b[1].placement = b[0].placement;
	ktap_result(ftvm_dp_maglev_build(b, 2, t1) == -EINVAL,
		    "maglev: a placement given twice is refused");
	b[1].placement = 0;
	ktap_result(ftvm_dp_maglev_build(b, 2, t1) == -EINVAL,
		    "maglev: placement 0 is refused");
}

static void test_parse(void)
{
	static const struct {
		const char *s;
		int ok;
		const char *back;
	} cases[] = {
		{ "198.18.0.10:80/tcp", 1, "198.18.0.10:80/tcp" },
		{ "198.18.0.10:53/udp", 1, "198.18.0.10:53/udp" },
		{ "[2001:db8::1]:443/tcp", 1, "[2001:db8::1]:443/tcp" },
		{ "198.18.0.10:0/tcp", 0, NULL },
		{ "198.18.0.10:65536/tcp", 0, NULL },
		{ "198.18.0.10:-1/tcp", 0, NULL },
		{ "198.18.0.10:80/sctp", 0, NULL },
		{ "198.18.0.10:80", 0, NULL },
		{ "198.18.0.256:80/tcp", 0, NULL },
		{ "2001:db8::1:80/tcp", 0, NULL },
		{ "[2001:db8::1]80/tcp", 0, NULL },
		{ "[198.18.0.1]:80/tcp", 0, NULL },
		{ "host:80/tcp", 0, NULL },
		{ "", 0, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ftvm_service_key k;
		char buf[80] = "";
		int err = ftvm_dp_service_parse(cases[i].s, &k);
		int ok = cases[i].ok ? !err : err == -EINVAL;

		if (!err)
			ftvm_dp_service_format(&k, buf, sizeof(buf));
		if (cases[i].ok && strcmp(buf, cases[i].back))
			ok = 0;
		ktap_result(ok, "parse \"%s\": %s%s%s", cases[i].s,
			    err ? "refused: " : "ok ", err ? ftvm_dp_errmsg() : buf,
			    "");
	}
}

int main(void)
{
	ktap_print_header(6 + 14);
	test_maglev();
	test_parse();
	return ktap_finish();
}
