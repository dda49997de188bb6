/* SPDX-License-Identifier: GPL-2.0 */
/* KTAP output for the C tests, in the manner of kselftest.h. */
#ifndef FTVM_KTAP_H
#define FTVM_KTAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define KSFT_PASS	0
#define KSFT_FAIL	1
#define KSFT_SKIP	4

static unsigned int ktap_n, ktap_pass, ktap_fail, ktap_skip, ktap_plan;

static inline void ktap_print_header(unsigned int plan)
{
	ktap_plan = plan;
	printf("TAP version 13\n1..%u\n", plan);
	fflush(stdout);
}

__attribute__((format(printf, 1, 2)))
static inline void ktap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

__attribute__((format(printf, 2, 3)))
static inline void ktap_result(int ok, const char *fmt, ...)
{
	va_list ap;

	ktap_n++;
	if (ok)
		ktap_pass++;
	else
		ktap_fail++;
	printf("%sok %u ", ok ? "" : "not ", ktap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* A check not run here, for @why (kselftest's "# SKIP"). */
__attribute__((format(printf, 2, 3)))
static inline void ktap_result_skip(const char *why, const char *fmt, ...)
{
	va_list ap;

	ktap_n++;
	ktap_skip++;
	printf("ok %u ", ktap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", why);
	fflush(stdout);
}

static inline void ktap_skip_all(const char *why)
{
	printf("TAP version 13\n1..0 # SKIP %s\n", why);
	exit(KSFT_SKIP);
}

static inline int ktap_finish(void)
{
	printf("# Totals: pass:%u fail:%u skip:%u\n", ktap_pass, ktap_fail,
	       ktap_skip);
	if (ktap_n != ktap_plan)
		printf("# planned %u tests but ran %u\n", ktap_plan, ktap_n);
	fflush(stdout);
	return ktap_fail || ktap_n != ktap_plan ? KSFT_FAIL : KSFT_PASS;
}

#endif
